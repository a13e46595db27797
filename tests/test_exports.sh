#!/bin/sh
# libstrata exports exactly the STRATA_API functions of strata.h: nothing internal leaks.
set -u
lib=${1:?usage: test_exports.sh LIBSTRATA.so SOURCE_ROOT}
root=${2:?}
want=$(grep -o 'STRATA_API [^(]*(' "$root/include/strata/strata.h" | grep -o 'strata_[a-z0-9_]*($' | tr -d '(' | sort -u)
have=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' | sed 's/@.*//' | sort -u)
if [ "$want" != "$have" ]; then
	echo "exported symbols differ from strata.h's STRATA_API list (run scripts/gen_symbol_map.sh):"
	printf '%s\n' "$want" >/tmp/strata-want.$$
	printf '%s\n' "$have" | diff /tmp/strata-want.$$ - 
	rm -f /tmp/strata-want.$$
	echo "0 passed, 1 failed"
	exit 1
fi
echo "$(printf '%s\n' "$have" | wc -l) symbols exported, as declared"
echo "1 passed, 0 failed"
