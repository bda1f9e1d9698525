// Sparsa: translation unit of the mma.sync prefill kernels for bf16 (sparsa_tc_bf16_*, sparsa_tcg_bf16_*), compiled
// by kernels-cuda/build-fatbin.sh into the image sparsa_prefill_mma_bf16.fatbin. Its rows of sparsa_kernels.def are
// the TC and TCG rows whose element type is __nv_bfloat16; sparsa_kernel_rows.cuh (end of file) turns
// every other row into nothing. The kernel body is in sparsa_prefill_mma.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"
#include "sparsa_prefill_mma.cuh"

// the unit's element type: a row's T selects it (SPARSA_ROWS_OF_<T>(ROW) is the row or nothing)
#define SPARSA_ROWS_OF___nv_bfloat16(ROW) ROW
#define SPARSA_ROWS_OF___half(ROW)
#ifdef SPARSA_DEV_BF16_D128
// experiments only (kernels-cuda/bench/dev-fatbin.sh): instead of the table's rows, the benchmark's kernels (bf16, D = 128)
SPARSA_TC_NAMED(sparsa_tc_bf16_d128_r64, __nv_bfloat16, 128, 128, 64)
SPARSA_TC_NAMED(sparsa_tc_bf16_d128_r128, __nv_bfloat16, 128, 128, 128)
SPARSA_TCG_NAMED(sparsa_tcg_bf16_d128_r64, __nv_bfloat16, 128, 128)
#else
#define SPARSA_KERNEL_TC(NAME, T, D, DV, ROWS) SPARSA_ROWS_OF_##T(SPARSA_TC_NAMED(NAME, T, D, DV, ROWS))
#define SPARSA_KERNEL_TCG(NAME, T, D, DV) SPARSA_ROWS_OF_##T(SPARSA_TCG_NAMED(NAME, T, D, DV))
#endif
#include "sparsa_kernel_rows.cuh"
