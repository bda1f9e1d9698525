// Sparsa: translation unit of decode over a KV cache, of Quest and of top-k's key scores (the DECODE, DECODE_MMA,
// DECODE_MMA8, QUEST, QUEST8, DECODE_SCORES and DECODE_SCORES8 rows of sparsa_kernels.def; sparsa_decode_merge,
// sparsa_gather_pages, sparsa_quest_topk and sparsa_decode_topk_choose, defined in full by their headers), compiled
// by kernels-cuda/build-fatbin.sh into the image sparsa_decode_quest.fatbin. One unit because sparsa_quest.cuh and
// sparsa_decode_scores.cuh build on sparsa_decode.cuh (and so define its kernels too).
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
#include "sparsa_decode_scores.cuh"

#define SPARSA_KERNEL_DECODE(NAME, T, D) SPARSA_DECODE_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_MMA(NAME, T, D) SPARSA_DECODE_MMA_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_MMA8(NAME, QS, T, D) SPARSA_DECODE_MMA8_NAMED(NAME, QS, T, D)
#define SPARSA_KERNEL_QUEST(NAME, T, D) SPARSA_QUEST_NAMED(NAME, T, D)
#define SPARSA_KERNEL_QUEST8(NAME, QS, D) SPARSA_QUEST8_NAMED(NAME, QS, D)
#define SPARSA_KERNEL_DECODE_SCORES(NAME, T, D) SPARSA_DECODE_SCORES_NAMED(NAME, T, D)
#define SPARSA_KERNEL_DECODE_SCORES8(NAME, QS, D) SPARSA_DECODE_SCORES8_NAMED(NAME, QS, D)
#include "sparsa_kernel_rows.cuh"
