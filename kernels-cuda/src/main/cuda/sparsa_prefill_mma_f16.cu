// Sparsa: translation unit of the mma.sync prefill kernels for f16 (sparsa_tc_f16_*, sparsa_tcg_f16_*), compiled
// by kernels-cuda/build-fatbin.sh into the image sparsa_prefill_mma_f16.fatbin. Its rows of sparsa_kernels.def are
// the TC and TCG rows whose element type is __half; sparsa_kernel_rows.cuh (end of file) turns
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
#define SPARSA_ROWS_OF___half(ROW) ROW
#define SPARSA_ROWS_OF___nv_bfloat16(ROW)
#define SPARSA_KERNEL_TC(NAME, T, D, DV, ROWS) SPARSA_ROWS_OF_##T(SPARSA_TC_NAMED(NAME, T, D, DV, ROWS))
#define SPARSA_KERNEL_TCG(NAME, T, D, DV) SPARSA_ROWS_OF_##T(SPARSA_TCG_NAMED(NAME, T, D, DV))
#include "sparsa_kernel_rows.cuh"
