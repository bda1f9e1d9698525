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

// One CTA of KEYS threads takes turns of KEYS keys of one (b, g); each thread scores one key of a turn. The turn's
// key rows are copied as stored (cp.async, 16 bytes a copy, coalesced) into a ring of STAGES slots in shared memory,
// row stride ROW + 16 bytes, so that the next turn's rows arrive while this one is scored and a thread reading its
// own row 16 bytes at a time meets no bank conflict (eight rows of a quarter warp fall in eight different 16-byte
// bank groups). The group's query vectors stay in shared memory as f32, channel-major ([D][XP], XP = X rounded up to
// 4, the padding zero), so that one 16-byte broadcast load gives four vectors' values of a channel.
// Development images may change the turn and the ring (dev-fatbin.sh decode DIR with EXTRA='-DSPARSA_DECODE_SCORE_KEYS=64
// -DSPARSA_DECODE_SCORE_STAGES=1', run with -Dsparsa.cuda.scoreKeys=64 -Dsparsa.cuda.scoreStages=1): smaller CTAs
// with one slot each fit more warps on an SM (two slots of 128 rows of 272 bytes allow three CTAs, 12 warps).
#ifndef SPARSA_DECODE_SCORE_KEYS
#define SPARSA_DECODE_SCORE_KEYS 128
#endif
#ifndef SPARSA_DECODE_SCORE_STAGES
#define SPARSA_DECODE_SCORE_STAGES 0  // 0: the rule below
#endif
constexpr int DEC_SCORE_KEYS = SPARSA_DECODE_SCORE_KEYS;

// Slots of a scoring CTA's ring for rows of ROW bytes: two while both fit in 100 KiB, else one (then the other CTAs
// on the SM hide the copies). CudaDecodeTopK.stages mirrors this rule.
__host__ __device__ constexpr int decScoreStages(int rowBytes) {
    return SPARSA_DECODE_SCORE_STAGES > 0 ? SPARSA_DECODE_SCORE_STAGES
                                          : 2 * DEC_SCORE_KEYS * (rowBytes + 16) <= 100 * 1024 ? 2 : 1;
}

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
// scores[e * width + i] = the score of key units[4e] + i. meta and S: a dense decode call's (lengths, block tables,
// strides). sc: the e4m3 scales (q per query head, k per KV head), null for 16- and 32-bit caches.
template <typename T, int D, typename QT>
__device__ void decKeyScores(const QT* q, const T* k, float* scores, const int* meta, const int* units,
                             const DecodeScalars S, int width, const DecScales* sc) {
    extern __shared__ __align__(16) unsigned char smem8[];
    constexpr int KEYS = DEC_SCORE_KEYS;
    constexpr int VEC = 16 / (int)sizeof(T);      // elements per 16-byte word
    constexpr int WORDS = D / VEC;                // words per key row
    constexpr int ROW = D * (int)sizeof(T), RSTR = ROW + 16;
    constexpr int STAGES = decScoreStages(ROW);
    constexpr int UNROLL = WORDS < 16 ? WORDS : 16;  // words of a row in flight (all of them took 255 registers)
    const int tid = threadIdx.x;
    const int e = blockIdx.y, b = e / (int)S.kvHeads, g = e % (int)S.kvHeads;
    const int from = units[4 * e], n = units[4 * e + 1];
    if (n <= 0 || (int)blockIdx.x * KEYS >= n) return;
    const int G = (int)S.group, R = (int)S.rows, X = G * R, XP = (X + 3) & ~3;
    float* sq = reinterpret_cast<float*>(smem8);          // [D][XP]
    unsigned char* ring = smem8 + 4 * D * XP;             // [STAGES][KEYS][RSTR]
    for (int idx = tid; idx < XP * D; idx += KEYS) {
        const int c = idx / XP, x = idx - c * XP;
        float v = 0.f;
        if (x < X) {
            const int hh = x / R, r = x - hh * R;
            v = decScoreValue<QT>(q[(long long)b * S.qsb + (long long)(g * G + hh) * S.qsh + (long long)r * S.qss + c],
                                  sizeof(QT) == 1 ? sc->q[g * G + hh] : 1.f);
        }
        sq[idx] = v;
    }
    const float kScale = sizeof(T) == 1 ? sc->k[g] : 1.f;
    const int* table = meta + S.oTables + (long long)b * S.tableWidth;
    const int pageMask = (1 << S.pageShift) - 1;
    const int step = gridDim.x * KEYS;
    // queues the copies of the rows of the turn from key t0 into slot s (rows past n are not copied nor scored)
    auto issue = [&](int s, int t0) {
        unsigned char* slot = ring + s * KEYS * RSTR;
        for (int idx = tid; idx < KEYS * WORDS; idx += KEYS) {
            const int i = idx / WORDS, w = idx - i * WORDS;
            if (t0 + i < n) {
                const int key = from + t0 + i;
                const T* row = S.paged ? k + (long long)table[key >> S.pageShift] * S.ksb + (long long)g * S.ksh
                                                 + (long long)(key & pageMask) * S.kss
                                       : k + (long long)b * S.ksb + (long long)g * S.ksh + (long long)key * S.kss;
                cpAsync16(slot + i * RSTR + w * 16, row + w * VEC, true);
            }
        }
        cpAsyncCommit();
    };
    int t0 = blockIdx.x * KEYS;
    issue(0, t0);
    for (int turn = 0; t0 < n; turn++, t0 += step) {
        if (STAGES == 2) {
            issue((turn + 1) & 1, t0 + step);  // an empty group past the last turn keeps the count uniform
            cpAsyncWait<1>();
        } else {
            cpAsyncWait<0>();
        }
        __syncthreads();  // the turn's rows (and, before the first, Q) are in shared memory
        const int i = t0 + tid;
        if (i < n) {
            const unsigned char* kr = ring + (STAGES == 2 ? (turn & 1) : 0) * KEYS * RSTR + tid * RSTR;
            float best = -INFINITY;
            // four vectors at once: four independent chains of adds, each in channel order
            for (int x0 = 0; x0 < X; x0 += 4) {
                float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma unroll UNROLL
                for (int w = 0; w < WORDS; w++) {
                    const uint4 word = *reinterpret_cast<const uint4*>(kr + w * 16);
                    const T* el = reinterpret_cast<const T*>(&word);
#pragma unroll
                    for (int u = 0; u < VEC; u++) {
                        const float kc = decScoreValue<T>(el[u], kScale);
                        const float4 qv = *reinterpret_cast<const float4*>(sq + (w * VEC + u) * XP + x0);
                        s0 = __fadd_rn(s0, __fmul_rn(qv.x, kc));
                        s1 = __fadd_rn(s1, __fmul_rn(qv.y, kc));
                        s2 = __fadd_rn(s2, __fmul_rn(qv.z, kc));
                        s3 = __fadd_rn(s3, __fmul_rn(qv.w, kc));
                    }
                }
                const float s[4] = {s0, s1, s2, s3};
                const int xs = min(4, X - x0);
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (j < xs && (s[j] != s[j] || s[j] > best)) best = best != best ? best : s[j];  // Math.max: NaN sticks
            }
            scores[(long long)e * width + i] = best;
        }
        if (STAGES == 1) {
            __syncthreads();  // the slot is read before the next turn's copies overwrite it
            if (t0 + step < n) issue(0, t0 + step);
        } else {
            __syncthreads();  // this slot is read before the turn after next refills it
        }
    }
}

}  // namespace sparsa

#define SPARSA_DECODE_SCORES_NAMED(NAME, T, D)                                                                         \
    extern "C" __global__ void __launch_bounds__(sparsa::DEC_SCORE_KEYS) NAME(                                         \
        const T* q, const T* k, float* scores, const int* meta, const int* units, const sparsa::DecodeScalars s,      \
        int width) {                                                                                                   \
        sparsa::gridDependencyWait();                                                                                  \
        sparsa::decKeyScores<T, D, T>(q, k, scores, meta, units, s, width, nullptr);                                   \
    }

#define SPARSA_DECODE_SCORES8_NAMED(NAME, QS, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(sparsa::DEC_SCORE_KEYS) NAME(                                         \
        const QS* q, const uint8_t* k, float* scores, const int* meta, const int* units,                               \
        const sparsa::DecodeScalars s, int width, const sparsa::DecScales sc) {                                        \
        sparsa::gridDependencyWait();                                                                                  \
        sparsa::decKeyScores<uint8_t, D, QS>(q, k, scores, meta, units, s, width, &sc);                                \
    }
