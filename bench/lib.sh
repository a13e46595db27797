# Sourced by the bench scripts that compare runs: reading a `NAME: key=value` line of a run's
# output, and the median of numbers over the rounds.
value() { sed -n "s/^$1: $2=//p" "$3" | head -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# collect NAME KEY PREFIX: the median of KEY over the files $out/PREFIX1 .. $out/PREFIX$rounds.
collect() { for r in $(seq 1 "$rounds"); do value "$1" "$2" "$out/$3$r"; done | median; }
# blas_note: says which BLAS Debian's PyTorch takes its GEMMs from (whatever libblas.so.3 points at)
# and warns when it is the reference BLAS (package libblas3), several times slower than OpenBLAS,
# which would flatter Strata.
blas_note() {
	blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
	echo "PyTorch's BLAS: ${blas:-unknown}"
	case $blas in
	*/blas/libblas.so*) echo "warning: libblas.so.3 is the reference BLAS; install libopenblas0-pthread for a fair comparison" >&2 ;;
	esac
}
