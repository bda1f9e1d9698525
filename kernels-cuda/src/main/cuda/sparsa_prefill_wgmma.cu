// Sparsa: translation unit of the wgmma prefill kernels (sparsa_wg_*; their bodies exist for sm_90a only,
// elsewhere a stub that traps), compiled by kernels-cuda/build-fatbin.sh into the image
// sparsa_prefill_wgmma.fatbin: the WG and WG8 rows of sparsa_kernels.def. The kernel body is in sparsa_prefill_wgmma.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"
#include "sparsa_prefill_wgmma.cuh"

#define SPARSA_KERNEL_WG(NAME, T, D) SPARSA_WG_NAMED(NAME, T, D)
#define SPARSA_KERNEL_WG8(NAME, D) SPARSA_WG8_NAMED(NAME, D)
#include "sparsa_kernel_rows.cuh"
