#!/bin/sh
# Issue 14's accuracy proofs, full trainings on MNIST (hours on a 2-core CPU; run them on a quiet
# machine): models/mnist_cnn_augmented.yaml with seeds 1, 2 and 3 (the mean test accuracy must
# reach 99.45%), models/mnist_best.yaml with seed 1 (99.6% in under an hour), then `strata bench
# --profile` of mnist_best (the share of each layer). Prints one line per training with its test
# accuracy and wall time, and the mean of the three seeds; logs and weights under OUT.
# Usage: bench/train_issue14.sh [--strata build/src/strata] [--out DIR] [--seeds "1 2 3"] [--skip-best]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
strata=$root/build/src/strata
out=$root/runs/issue14
seeds="1 2 3"
best=1
while [ $# -gt 0 ]; do
	case $1 in
	--strata) strata=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--seeds) seeds=$2; shift 2 ;;
	--skip-best) best=0; shift ;;
	*) echo "usage: $0 [--strata PATH] [--out DIR] [--seeds \"1 2 3\"] [--skip-best]" >&2; exit 2 ;;
	esac
done
mkdir -p "$out"
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

# train MODEL SEED: one training to the model's epochs; prints its line, the accuracy on stdout's last word.
train() {
	name=$1_seed$2
	start=$(date +%s)
	"$strata" train "$root/models/$1.yaml" --seed "$2" --save "$out/$name.stw" >"$out/$name.txt" 2>&1
	seconds=$(($(date +%s) - start))
	acc=$(sed -n 's/^Test accuracy: //p' "$out/$name.txt")
	epochs=$(awk -F, 'END { print $1 }' "$out/$name.csv")
	echo "$1 seed $2: test accuracy $acc after $epochs epochs in $seconds s" >&2
	echo "$acc"
}

sum=0
n=0
for seed in $seeds; do
	acc=$(train mnist_cnn_augmented "$seed")
	sum=$(awk -v s="$sum" -v a="$acc" 'BEGIN { print s + a }')
	n=$((n + 1))
done
[ "$n" -eq 0 ] || awk -v s="$sum" -v n="$n" 'BEGIN { printf "mnist_cnn_augmented: mean test accuracy %.4f over %d seeds\n", s / n, n }'
if [ "$best" -eq 1 ]; then
	train mnist_best 1 >/dev/null
	"$strata" bench "$root/models/mnist_best.yaml" --no-cold --profile >"$out/mnist_best.profile.txt" 2>&1
	grep "(layer total)" "$out/mnist_best.profile.txt" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /%$/) print "  " $1, $i }' | sort -k2 -g -r | head -12
fi
