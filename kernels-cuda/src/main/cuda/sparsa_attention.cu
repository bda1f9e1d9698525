// Sparsa: the one translation unit of the CUDA kernels (kernels-cuda/build-fatbin.sh compiles it into
// the one fatbin the Java side loads). It holds no device code of its own: it includes the headers, one
// per concern, and instantiates every kernel from the table sparsa_kernels.def.
//
//   sparsa_plan.cuh            the device plan's format and the call's scalars (DevicePlanFormat's twin)
//   sparsa_convert.cuh         element conversion: bf16/f16 packing, output stores by kind
//   sparsa_mma.cuh             mma.sync m16n8k16, ldmatrix, cp.async
//   sparsa_softmax.cuh         masks and the online softmax's pieces (log2-domain exponent)
//   sparsa_prefill_mma.cuh     prefill on tensor cores, mma.sync (sparsa_tc_*, sparsa_tcg_*)
//   sparsa_prefill_wgmma.cuh   prefill on Hopper tensor cores, wgmma (sparsa_wg_*, sm_90a only)
//   sparsa_prefill_f32.cuh     exact f32 prefill on CUDA cores (sparsa_f32_*)
//   sparsa_prefill_merge.cuh   LSE merge of the prefill's multi-tile rows (sparsa_merge)
//   sparsa_decode.cuh          decode over a KV cache, its merge, the page gather (sparsa_decode_*, sparsa_gather_pages)
//   sparsa_quest.cuh           Quest's page bounds and page choice (sparsa_quest_*)
//   sparsa_estimate.cuh        block selection estimated on the device (sparsa_est_*)
//   sparsa_vs_estimate.cuh     vertical-slash selection and its plan estimated on the device (sparsa_vs_*)
//   sparsa_topk_estimate.cuh   top-k per query tile and per query row estimated on the device (sparsa_tk_*, sparsa_tq_*)
//   sparsa_kernels.def         the table: every kernel's family, name and template arguments
//
// The kernels without template arguments (SPARSA_KERNEL_ONE rows) are defined in full by their headers;
// the others are instantiated below, one entry point per row.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"
#include "sparsa_prefill_mma.cuh"
#include "sparsa_prefill_wgmma.cuh"
#include "sparsa_prefill_f32.cuh"
#include "sparsa_prefill_merge.cuh"
#include "sparsa_decode.cuh"
#include "sparsa_quest.cuh"
#include "sparsa_estimate.cuh"
#include "sparsa_vs_estimate.cuh"
#include "sparsa_topk_estimate.cuh"
#include "sparsa_indexer_estimate.cuh"

#define SPARSA_KERNEL_WG(NAME, T, D) SPARSA_WG_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE(NAME, T, D) SPARSA_DECODE_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_MMA(NAME, T, D) SPARSA_DECODE_MMA_NAMED(NAME, T, D)
#define SPARSA_KERNEL_QUEST(NAME, T, D) SPARSA_QUEST_NAMED(NAME, T, D)
#define SPARSA_KERNEL_ONE(NAME, HEADER)
#ifdef SPARSA_DEV_BF16_D128
// experiments only (kernels-cuda/bench/dev-fatbin.sh): of the prefill kernels, the benchmark's (bf16, D = 128)
#define SPARSA_KERNEL_TC(NAME, T, D, DV, ROWS)
#define SPARSA_KERNEL_TCG(NAME, T, D, DV)
#define SPARSA_KERNEL_F32(NAME, D, DV)
SPARSA_TC_NAMED(sparsa_tc_bf16_d128_r64, __nv_bfloat16, 128, 128, 64)
SPARSA_TC_NAMED(sparsa_tc_bf16_d128_r128, __nv_bfloat16, 128, 128, 128)
SPARSA_TCG_NAMED(sparsa_tcg_bf16_d128_r64, __nv_bfloat16, 128, 128)
#else
#define SPARSA_KERNEL_TC(NAME, T, D, DV, ROWS) SPARSA_TC_NAMED(NAME, T, D, DV, ROWS)
#define SPARSA_KERNEL_TCG(NAME, T, D, DV) SPARSA_TCG_NAMED(NAME, T, D, DV)
#define SPARSA_KERNEL_F32(NAME, D, DV) SPARSA_F32_NAMED(NAME, D, DV)
#endif
#include "sparsa_kernels.def"
