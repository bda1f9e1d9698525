// Sparsa: translation unit of the selections estimated on the device (sparsa_est_*, sparsa_vs_*, sparsa_tk_*,
// sparsa_tq_*, sparsa_li_*: kernels without template arguments, ONE rows of sparsa_kernels.def, defined in
// full by their headers), compiled by kernels-cuda/build-fatbin.sh into the image sparsa_estimators.fatbin.
// One unit because the top-k and indexer estimators build on sparsa_estimate.cuh (and so define its kernels too).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_estimate.cuh"
#include "sparsa_vs_estimate.cuh"
#include "sparsa_topk_estimate.cuh"
#include "sparsa_indexer_estimate.cuh"

#include "sparsa_kernel_rows.cuh"
