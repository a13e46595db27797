# Sourced by the bench scripts that compare runs: reading a `NAME: key=value` line of a run's
# output, and the median of numbers over the rounds.
value() { sed -n "s/^$1: $2=//p" "$3" | head -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# collect NAME KEY PREFIX: the median of KEY over the files $out/PREFIX1 .. $out/PREFIX$rounds.
collect() { for r in $(seq 1 "$rounds"); do value "$1" "$2" "$out/$3$r"; done | median; }
