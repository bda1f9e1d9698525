"""Three calls of PyTorch's SDPA on one decode shape, for a profiler to attach to (decode-ncu.sh): q [B, 32, 1, 128],
k and v [B, 8, N, 128], bf16 random values, enable_gqa. Usage: python3 torch_sdpa_once.py B N"""
import sys

if len(sys.argv) != 3 or not all(a.isdigit() and int(a) > 0 for a in sys.argv[1:]):
    sys.stderr.write("torch_sdpa_once.py: expected two positive integers B N; usage: torch_sdpa_once.py B N\n")
    sys.exit(2)
b, n = int(sys.argv[1]), int(sys.argv[2])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

q = torch.rand(b, 32, 1, 128, device="cuda", dtype=torch.bfloat16) * 2 - 1
k = torch.rand(b, 8, n, 128, device="cuda", dtype=torch.bfloat16) * 2 - 1
v = torch.rand(b, 8, n, 128, device="cuda", dtype=torch.bfloat16) * 2 - 1
for _ in range(3):
    F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
torch.cuda.synchronize()
