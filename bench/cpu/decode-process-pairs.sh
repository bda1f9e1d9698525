#!/usr/bin/env bash
# Two builds, or two settings of one build, of `sparsa decode --json`, each run in a fresh JVM: pairs of
# processes, the side that runs first alternating from pair to pair, then every row's medians, the median
# ratio of its GB/s (B over A) and the pairs in which B was faster (process_pairs.py). Separate processes
# keep out what a comparison inside one JVM cannot: which build is loaded, warmed up and allocates its
# caches first (docs/PERFORMANCE.md, "Cache rows on 64-byte boundaries in heap arrays").
# Usage: bench/cpu/decode-process-pairs.sh [--pairs N] [--out DIR] A B [decode flags ...]
#   A, B   a jar, or a jar and JVM options joined by commas, e.g.
#          bench/target/benchmarks.jar,-Dsparsa.tensor.alignHostArrays=false
#   --pairs  pairs of processes (default 8); --out  an empty or new folder for the JSON (default a new
#            one under /tmp); decode flags default to --backend cpu --cold
# Java: $JAVA_HOME/bin/java (default /usr/lib/jvm/temurin-25-jdk-amd64), with the flags of ./sparsa flags.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pairs=8
out=""
while [ $# -gt 0 ]; do
  case $1 in
    --pairs) pairs=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    *) break ;;
  esac
done
fail() { echo "decode-process-pairs.sh: $*" >&2; exit 2; }
[[ $pairs =~ ^[1-9][0-9]*$ ]] || fail "--pairs must be a positive integer, got '$pairs'"
[ $# -ge 2 ] || fail "needs two sides A and B (a jar, or jar,JVM-OPTION,...)"
side_a=$1
side_b=$2
shift 2
decode_flags=("$@")
[ ${#decode_flags[@]} -gt 0 ] || decode_flags=(--backend cpu --cold)
for side in "$side_a" "$side_b"; do
  [ -r "${side%%,*}" ] || fail "no readable jar '${side%%,*}'"
done
if [ -z "$out" ]; then
  out=$(mktemp -d /tmp/decode-pairs.XXXXXX)
elif [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  fail "--out $out is not empty"
fi
mkdir -p "$out"
java=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
[ -x "$java" ] || fail "no java at $java (set JAVA_HOME to a JDK 25)"
mapfile -t flags < <("$root/sparsa" flags)

run() { # run SIDE-LETTER SPEC PAIR
  local jar=${2%%,*} opts=()
  [ "$2" != "$jar" ] && IFS=, read -r -a opts <<< "${2#*,}"
  echo "$(date -u +%H:%M:%S) pair $3 of $pairs: $1 ($2)" >&2
  "$java" "${flags[@]}" ${opts[@]+"${opts[@]}"} -cp "$jar" dev.sparsa.cli.SparsaCli decode --json \
    "${decode_flags[@]}" > "$out/p$3-$1.json.part" 2> "$out/p$3-$1.err" ||
    { echo "decode-process-pairs.sh: side $1 failed in pair $3; see $out/p$3-$1.err" >&2; exit 1; }
  mv "$out/p$3-$1.json.part" "$out/p$3-$1.json"
}
for ((i = 1; i <= pairs; i++)); do
  if ((i % 2)); then run A "$side_a" "$i"; run B "$side_b" "$i"; else run B "$side_b" "$i"; run A "$side_a" "$i"; fi
done
echo "JSON in $out" >&2
python3 "$here/process_pairs.py" "$out"
