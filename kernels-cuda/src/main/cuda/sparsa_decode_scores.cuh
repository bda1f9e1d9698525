// Sparsa: top-k decode's key scores on the device.
//
//  sparsa_decode_key_scores_<f32|f16|bf16>_d<D>: for each (sequence b, KV head g) and each of its candidate keys,
//      the score max_x sum_c q_x[c] * k[c] over the group's query vectors x (query heads g*G .. g*G+G-1, rows 0 .. R-1).
//  sparsa_decode_key_scores_e4m3_<f16|bf16|e4m3>_d<D>: the same over an e4m3 cache (codes × K's scale per KV head)
//      with a query of the named type (e4m3: codes × its head's scale).
//
// Every score has the bits of DecodeSelector.plainScorer's keyScores: the values as the host reads them (a 16-bit
// value widened exactly; an e4m3 code times its scale, rounded to f32 once), each product rounded, then added in
// channel order, rounded (no fused multiply-add), the maximum over the vectors NaN-sticky as Math.max. So the choice
// made from them (sparsa_decode_topk_choose) is the host's, ties included. The entry points are rows of
// sparsa_kernels.def (families DECODE_SCORES and DECODE_SCORES8), expanded in sparsa_decode_quest.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include "sparsa_decode.cuh"

namespace sparsa {

// One CTA of KEYS threads per turn of KEYS keys of one (b, g): the turn's key rows are copied into shared memory as
// f32 (row stride D + 1: a thread per key reads its own row without bank conflicts), each thread scores one key. The
// group's query vectors stay in shared memory as f32 for the whole CTA ([X][D], X = G * R).
constexpr int DEC_SCORE_KEYS = 128;

// A development variant (dev-fatbin.sh decode DIR with EXTRA=-DSPARSA_DECODE_SCORES_BATCHED_LOADS=1), built and not
// yet run on a GPU: each thread issues all its loads of a turn before converting and storing any, so that a turn
// waits for memory once (the committed kernel's loop waits once per 16-byte word; Nsight Compute found it
// latency-bound). The same values land in the same places: the scores keep their bits.
#ifndef SPARSA_DECODE_SCORES_BATCHED_LOADS
#define SPARSA_DECODE_SCORES_BATCHED_LOADS 0
#endif

// An element of a 16-byte word of stored keys (or query) as the f32 value the host reads; scale: an e4m3 code's.
template <typename T> __device__ __forceinline__ float decScoreValue(T x, float scale);
template <> __device__ __forceinline__ float decScoreValue<float>(float x, float) { return x; }
template <> __device__ __forceinline__ float decScoreValue<__half>(__half x, float) { return __half2float(x); }
template <> __device__ __forceinline__ float decScoreValue<__nv_bfloat16>(__nv_bfloat16 x, float) {
    return __bfloat162float(x);
}
template <> __device__ __forceinline__ float decScoreValue<uint8_t>(uint8_t x, float scale) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)x, __NV_E4M3);
    return __fmul_rn(__half2float(*reinterpret_cast<const __half*>(&h)), scale);
}

// units[4e] = the first candidate key of unit e = b * Hkv + g, units[4e + 1] = how many (0: the unit is not scored);
// scores[e * width + i] = the score of key units[2e] + i. meta and S: a dense decode call's (lengths, block tables,
// strides). sc: the e4m3 scales (q per query head, k per KV head), null for 16- and 32-bit caches.
template <typename T, int D, typename QT>
__device__ void decKeyScores(const QT* q, const T* k, float* scores, const int* meta, const int* units,
                             const DecodeScalars S, int width, const DecScales* sc) {
    extern __shared__ float smem[];
    constexpr int KEYS = DEC_SCORE_KEYS;
    constexpr int VEC = 16 / (int)sizeof(T);  // elements per 16-byte load
    constexpr int KSTR = D + 1;
    const int tid = threadIdx.x;
    const int e = blockIdx.y, b = e / (int)S.kvHeads, g = e % (int)S.kvHeads;
    const int from = units[4 * e], n = units[4 * e + 1];
    if (n <= 0 || (int)blockIdx.x * KEYS >= n) return;
    const int G = (int)S.group, R = (int)S.rows, X = G * R;
    float* sq = smem;           // [X][D]
    float* sk = smem + X * D;   // [KEYS][KSTR]
    for (int idx = tid; idx < X * D; idx += KEYS) {
        const int x = idx / D, c = idx - x * D, hh = x / R, r = x - hh * R;
        const QT v = q[(long long)b * S.qsb + (long long)(g * G + hh) * S.qsh + (long long)r * S.qss + c];
        sq[idx] = decScoreValue<QT>(v, sizeof(QT) == 1 ? sc->q[g * G + hh] : 1.f);
    }
    const float kScale = sizeof(T) == 1 ? sc->k[g] : 1.f;
    const int* table = meta + S.oTables + (long long)b * S.tableWidth;
    const int pageMask = (1 << S.pageShift) - 1;
    for (int t0 = blockIdx.x * KEYS; t0 < n; t0 += gridDim.x * KEYS) {
        __syncthreads();  // the previous turn's rows are read (and, before the first, Q is staged)
#if SPARSA_DECODE_SCORES_BATCHED_LOADS
        {
            // the thread's loads of a turn issued eight at a time before any of them is converted and stored: a
            // turn waits for memory D / VEC / 8 times instead of once per 16-byte word (eight words in flight keep
            // the registers within the kernel's budget at every head dim)
            constexpr int WORDS = D / VEC, BATCH = WORDS < 8 ? WORDS : 8;
#pragma unroll 1
            for (int r0 = 0; r0 < WORDS; r0 += BATCH) {
                uint4 words[BATCH];
#pragma unroll
                for (int r = 0; r < BATCH; r++) {
                    const int idx = tid + (r0 + r) * KEYS, i = idx / WORDS, w = idx - i * WORDS;
                    words[r] = make_uint4(0u, 0u, 0u, 0u);
                    if (t0 + i < n) {
                        const int key = from + t0 + i;
                        const T* row = S.paged ? k + (long long)table[key >> S.pageShift] * S.ksb + (long long)g * S.ksh
                                                         + (long long)(key & pageMask) * S.kss
                                               : k + (long long)b * S.ksb + (long long)g * S.ksh + (long long)key * S.kss;
                        words[r] = *reinterpret_cast<const uint4*>(row + w * VEC);
                    }
                }
#pragma unroll
                for (int r = 0; r < BATCH; r++) {
                    const int idx = tid + (r0 + r) * KEYS, i = idx / WORDS, w = idx - i * WORDS;
                    const T* el = reinterpret_cast<const T*>(&words[r]);
#pragma unroll
                    for (int u = 0; u < VEC; u++) sk[i * KSTR + w * VEC + u] = decScoreValue<T>(el[u], kScale);
                }
            }
        }
#else
        for (int idx = tid; idx < KEYS * (D / VEC); idx += KEYS) {
            const int i = idx / (D / VEC), w = idx - i * (D / VEC);
            if (t0 + i < n) {
                const int key = from + t0 + i;
                const T* row = S.paged ? k + (long long)table[key >> S.pageShift] * S.ksb + (long long)g * S.ksh
                                                 + (long long)(key & pageMask) * S.kss
                                       : k + (long long)b * S.ksb + (long long)g * S.ksh + (long long)key * S.kss;
                const uint4 word = *reinterpret_cast<const uint4*>(row + w * VEC);
                const T* el = reinterpret_cast<const T*>(&word);
#pragma unroll
                for (int u = 0; u < VEC; u++) sk[i * KSTR + w * VEC + u] = decScoreValue<T>(el[u], kScale);
            }
        }
#endif
        __syncthreads();
        const int i = t0 + tid;
        if (i < n) {
            const float* kr = sk + tid * KSTR;
            float best = -INFINITY;
            // four vectors at once: four independent chains of adds, each still in channel order
            for (int x0 = 0; x0 < X; x0 += 4) {
                float s[4] = {0.f, 0.f, 0.f, 0.f};
                const int xs = min(4, X - x0);
#pragma unroll 8
                for (int c = 0; c < D; c++) {
                    const float kc = kr[c];
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        if (j < xs) s[j] = __fadd_rn(s[j], __fmul_rn(sq[(x0 + j) * D + c], kc));
                }
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (j < xs && (s[j] != s[j] || s[j] > best)) best = best != best ? best : s[j];  // Math.max: NaN sticks
            }
            scores[(long long)e * width + i] = best;
        }
    }
}

}  // namespace sparsa

#define SPARSA_DECODE_SCORES_NAMED(NAME, T, D)                                                                         \
    extern "C" __global__ void __launch_bounds__(sparsa::DEC_SCORE_KEYS) NAME(                                         \
        const T* q, const T* k, float* scores, const int* meta, const int* units, const sparsa::DecodeScalars s,      \
        int width) {                                                                                                   \
        sparsa::decKeyScores<T, D, T>(q, k, scores, meta, units, s, width, nullptr);                                   \
    }

#define SPARSA_DECODE_SCORES8_NAMED(NAME, QS, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(sparsa::DEC_SCORE_KEYS) NAME(                                         \
        const QS* q, const uint8_t* k, float* scores, const int* meta, const int* units,                               \
        const sparsa::DecodeScalars s, int width, const sparsa::DecScales sc) {                                        \
        sparsa::decKeyScores<uint8_t, D, QS>(q, k, scores, meta, units, s, width, &sc);                                \
    }
