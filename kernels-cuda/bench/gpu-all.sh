#!/usr/bin/env bash
# Everything the CUDA backend is checked with on the GPU machine, in one call (see runners.sh for how
# Java starts): the GPU tests (kernel tests and the conformance suite), compute-sanitizer, the
# benchmark against PyTorch, and the CLI demo's CUDA rows.
# Logs go to $OUT (or /tmp): gpu-tests.log, sanitize.log, bench.log, demo.json, demo.err.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== GPU tests (tag gpu)"
gpu_tests > "$out/gpu-tests.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$out/gpu-tests.log" | grep -E ':: FAILED|tests (found|successful|failed|aborted|skipped)' | head -30
echo "aborted or skipped (refused) cases:"; sed 's/\x1b\[[0-9;]*m//g' "$out/gpu-tests.log" | grep -cE ':: (ABORTED|SKIPPED)'
echo "== sanitizer"
bash "$here/sanitize.sh" > "$out/sanitize.log" 2>&1; echo "sanitize exit $?"; grep -E 'SUMMARY|Invalid|canary' "$out/sanitize.log" | head -12
echo "== benchmark"
bash "$here/gpu-bench.sh" --iters 20 > "$out/bench.log" 2>&1; grep -vE 'WARN|create_block_mask' "$out/bench.log"
echo "== demo (cuda)"
java_main dev.sparsa.cli.SparsaCli demo --json --backend cuda --dtypes f32,f16,bf16 > "$out/demo.json" 2> "$out/demo.err"
echo "demo exit $?"
python3 - "$out/demo.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
worst = {}
for r in d["rows"]:
    worst[r["dtype"]] = max(worst.get(r["dtype"], 0), r["relErrVsOracle"])
    print(f'{r["backend"]} {r["dtype"]:5s} {r["pattern"][:48]:48s} density {r["density"]:.4f} {r["millis"]:8.2f} ms err {r["relErrVsOracle"]:.2e}')
print("worst relErrVsOracle per dtype:", {k: f"{v:.2e}" for k, v in worst.items()})
PY
