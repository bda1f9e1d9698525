#!/usr/bin/env bash
# Sparsa against ONNX Runtime Java's attention (OnnxRuntimeComparison), two passes; in each pass every
# (N, mask) is one JMH run timing ONNX Runtime and then Sparsa on the same inputs, so the two share
# the machine's state. Writes one JSON per run into the folder given (default: onnxruntime-runs),
# then prints the table of docs/PERFORMANCE.md: bench/summarize-onnxruntime.py DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-onnxruntime-runs}
mkdir -p "$out"
java=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
for pass in 1 2; do
  for n in 1024 2048 4096 8192; do
    for mask in dense causal window; do
      echo "pass $pass, N $n, $mask, $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
      "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -jar bench/target/benchmarks.jar \
        OnnxRuntimeComparison -p n=$n -p mask=$mask -f 1 -wi 2 -i 4 -w 2 -r 2 \
        -rf json -rff "$out/p$pass-n$n-$mask.json" > "$out/p$pass-n$n-$mask.log" 2>&1
    done
  done
done
bench/summarize-onnxruntime.py "$out"
