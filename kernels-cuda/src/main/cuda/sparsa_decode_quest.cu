// Sparsa: translation unit of decode over a KV cache and of Quest (the DECODE, DECODE_MMA, DECODE_MMA8, QUEST and QUEST8 rows of
// sparsa_kernels.def; sparsa_decode_merge, sparsa_gather_pages and sparsa_quest_topk, defined in full by
// their headers), compiled by kernels-cuda/build-fatbin.sh into the image sparsa_decode_quest.fatbin. One
// unit because sparsa_quest.cuh builds on sparsa_decode.cuh (and so defines its kernels too).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"
#include "sparsa_decode.cuh"
#include "sparsa_quest.cuh"

#define SPARSA_KERNEL_DECODE(NAME, T, D) SPARSA_DECODE_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_MMA(NAME, T, D) SPARSA_DECODE_MMA_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_MMA8(NAME, QS, T, D) SPARSA_DECODE_MMA8_NAMED(NAME, QS, T, D)
#define SPARSA_KERNEL_QUEST(NAME, T, D) SPARSA_QUEST_NAMED(NAME, T, D)
#define SPARSA_KERNEL_QUEST8(NAME, QS, D) SPARSA_QUEST8_NAMED(NAME, QS, D)
#include "sparsa_kernel_rows.cuh"
