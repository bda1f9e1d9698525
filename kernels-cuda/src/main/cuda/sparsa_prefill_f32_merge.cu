// Sparsa: translation unit of the exact f32 prefill kernels (sparsa_f32_*, the F32 rows of sparsa_kernels.def)
// and of the LSE merge of the prefill's multi-tile rows (sparsa_merge, defined in full by its header),
// compiled by kernels-cuda/build-fatbin.sh into the image sparsa_prefill_f32_merge.fatbin.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_convert.cuh"
#include "sparsa_prefill_f32.cuh"
#include "sparsa_prefill_merge.cuh"

#define SPARSA_KERNEL_F32(NAME, D, DV) SPARSA_F32_NAMED(NAME, D, DV)
#include "sparsa_kernel_rows.cuh"
