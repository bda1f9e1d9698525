// Sparsa: DeepSeek Sparse Attention's lightning indexer (LightningIndexer) estimated on the device, written
// straight into a device plan.
//
// One kernel of its own, queued per chunk of row groups before sparsa_tq_rank and sparsa_tq_emit of
// sparsa_topk_estimate.cuh (no sinks, no window, a slice being a batch entry: one layout per batch entry, shared
// by every attention head):
//   sparsa_li_scores  per group of TQ_ROWS consecutive query rows of one batch entry: the index scores
//                     I(t, s) = sum_j w[t, j] * ReLU(q[t, j] . k[s]) of the keys each row may see, TQ_KEYS keys
//                     at a time loaded once into shared memory, as order keys (tkOrder) into a scratch row per
//                     query row, the layout sparsa_tq_rank reads.
//
// The canonical arithmetic, shared bit for bit with the Java twin (LightningIndexer.select: KeyPanels.dots and
// Vectors.addWeightedRelu): every dot product one chain of f32 fused multiply-adds over the channels in ascending
// order from 0 (the inputs read as f32 exactly); the score 0, then for each indexer head j in ascending order
// score = fma(w[t, j], max(0, dot_j), score) with Java's Math.max (NaN stays NaN, -0 becomes +0). Explicit
// __fmaf_rn: the compiler may not contract or reorder them.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_estimate.cuh"
#include "sparsa_plan.cuh"
#include "sparsa_topk_estimate.cuh"

namespace sparsa {

// Java's Math.max(0f, x): NaN stays NaN, -0 and negatives become +0.
__device__ __forceinline__ float liRelu(float x) {
    return x != x ? x : (x > 0.0f ? x : 0.0f);
}

// Element i of a tensor of dtype kind, as f32 (exactly).
__device__ __forceinline__ float liLoad(const void* p, int kind, long long i) {
    return kind == OUT_BF16 ? estLoad<__nv_bfloat16>(p, i) : kind == OUT_F16 ? estLoad<__half>(p, i) : estLoad<float>(p, i);
}

// The index scores of TQ_ROWS consecutive query rows of batch entry b (a row group) against the keys the last
// of them may see, TQ_KEYS keys at a time loaded once into shared memory as f32. Thread t scores keys t % TQ_COLS
// and t % TQ_COLS + TQ_COLS of the tile for the TQ_ROWS / 2 rows of half t / TQ_COLS: per indexer head one fma
// chain over the channels, then the weighted ReLU added to the row's score. The queries of hc heads at a time
// live in shared memory (all of them, loaded once, when hc >= heads).
template <typename T>
__device__ __forceinline__ void liScores(const void* q, long long qsb, long long qsh, long long qss, const void* kx,
                                         long long ksb, long long kss, const void* w, int wKind, long long wsb,
                                         long long wss, long long wsh, int heads, int hc, int dim, int nq, int nk,
                                         int causal, int queryOffset, long long item0, int groups, unsigned* scratch) {
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const long long item = item0 + blockIdx.x;
    const int b = (int)(item / groups);
    const int r0 = (int)(item % groups) * TQ_ROWS;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int ks = dim | 1;  // an odd stride: the lanes' keys fall in distinct banks
    float* ws = reinterpret_cast<float*>(tkSmem);      // [heads][TQ_ROWS]
    float* qt = ws + (long long)heads * TQ_ROWS;       // [hc][dim][TQ_ROWS]
    float* kt = qt + (long long)hc * dim * TQ_ROWS;    // [TQ_KEYS][ks]
    const int rows = min(TQ_ROWS, nq - r0);
    const long long pLast = (long long)r0 + rows - 1 + queryOffset;
    const long long lastKey = causal ? min((long long)nk - 1, pLast) : (long long)nk - 1;
    const int nMax = lastKey < 0 ? 0 : (int)(lastKey + 1);
    if (nMax == 0) return;
    for (int i = tid; i < heads * TQ_ROWS; i += nt) {
        const int j = i / TQ_ROWS;
        const int rr = i % TQ_ROWS;
        ws[i] = rr < rows ? liLoad(w, wKind, (long long)b * wsb + (long long)(r0 + rr) * wss + (long long)j * wsh) : 0.0f;
    }
    const long long qbase = (long long)b * qsb;
    const int perHead = dim * TQ_ROWS;
    auto loadQueries = [&](int j0) {
        const int n = min(hc, heads - j0);
        for (int i = tid; i < n * perHead; i += nt) {
            const int jj = i / perHead;
            const int rem = i % perHead;
            const int c = rem / TQ_ROWS;
            const int rr = rem % TQ_ROWS;
            qt[i] = rr < rows ? estLoad<T>(q, qbase + (long long)(j0 + jj) * qsh + (long long)(r0 + rr) * qss + c) : 0.0f;
        }
    };
    const bool once = hc >= heads;
    if (once) loadQueries(0);
    const long long kbase = (long long)b * ksb;
    constexpr int VEC = 16 / (int)sizeof(T);
    const bool vec = tkVec<T>(kx, kbase, kss, dim);
    const int col = tid % TQ_COLS;
    const int half = tid / TQ_COLS;
    int nRow[TQ_HALF];
    tqRowKeys(nRow, half, r0, rows, nk, causal, queryOffset);
    unsigned* outRow = scratch + (blockIdx.x * (long long)TQ_ROWS + half * TQ_HALF) * nk;
    for (int key0 = 0; key0 < nMax; key0 += TQ_KEYS) {
        // the key tile's load and the fma chains below are tqScores's, kept as copies: as shared helpers they
        // changed this kernel's compiled code (kernels-cuda/NOTES.md)
        __syncthreads();
        if (vec) {
            const int per = dim / VEC;
            const int per2 = (per + 1) & ~1;
            for (int i = tid; i < TQ_KEYS * per2; i += nt) {
                const int j = (i >> 1) % TQ_KEYS;
                const int piece = (i / (2 * TQ_KEYS)) * 2 + (i & 1);
                if (piece >= per) continue;
                const int c = piece * VEC;
                uint4 v = make_uint4(0u, 0u, 0u, 0u);
                if (key0 + j < nMax) {
                    v = *reinterpret_cast<const uint4*>(static_cast<const T*>(kx) + kbase + (long long)(key0 + j) * kss
                                                        + c);
                }
#pragma unroll
                for (int u = 0; u < VEC; u++) kt[j * ks + c + u] = tkElement<T>(v, u);
            }
        } else {
            for (int i = tid; i < TQ_KEYS * dim; i += nt) {
                const int j = i % TQ_KEYS;
                const int c = i / TQ_KEYS;
                kt[j * ks + c] = key0 + j < nMax ? estLoad<T>(kx, kbase + (long long)(key0 + j) * kss + c) : 0.0f;
            }
        }
        __syncthreads();
        float sc[TQ_HALF], sc2[TQ_HALF];
#pragma unroll
        for (int i = 0; i < TQ_HALF; i++) sc[i] = sc2[i] = 0.0f;
        const float* kr = kt + col * ks;
        const float* kr2 = kt + (col + TQ_COLS) * ks;
        for (int j0 = 0; j0 < heads; j0 += hc) {
            if (!once) {
                if (j0 > 0) __syncthreads();  // every thread done with the previous heads' queries
                loadQueries(j0);
                __syncthreads();
            }
            const int n = min(hc, heads - j0);
            for (int jj = 0; jj < n; jj++) {
                float acc[TQ_HALF], acc2[TQ_HALF];
#pragma unroll
                for (int i = 0; i < TQ_HALF; i++) acc[i] = acc2[i] = 0.0f;
                const float* qr = qt + (long long)jj * perHead + half * TQ_HALF;
#pragma unroll 4
                for (int c = 0; c < dim; c++) {
                    const float kv = kr[c];
                    const float kv2 = kr2[c];
                    const float4 qa = *reinterpret_cast<const float4*>(qr + c * TQ_ROWS);
                    const float4 qb = *reinterpret_cast<const float4*>(qr + c * TQ_ROWS + 4);
                    const float qv[TQ_HALF] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
#pragma unroll
                    for (int i = 0; i < TQ_HALF; i++) {
                        acc[i] = __fmaf_rn(qv[i], kv, acc[i]);
                        acc2[i] = __fmaf_rn(qv[i], kv2, acc2[i]);
                    }
                }
                const float* wr = ws + (j0 + jj) * TQ_ROWS + half * TQ_HALF;
#pragma unroll
                for (int i = 0; i < TQ_HALF; i++) {
                    sc[i] = __fmaf_rn(wr[i], liRelu(acc[i]), sc[i]);
                    sc2[i] = __fmaf_rn(wr[i], liRelu(acc2[i]), sc2[i]);
                }
            }
        }
        tqStoreOrderKeys(outRow, nk, key0, col, nRow, sc, sc2);
    }
}

}  // namespace sparsa

// Grid (row groups of this chunk), TQ_THREADS threads; dynamic shared memory: (heads * TQ_ROWS + hc * dim * TQ_ROWS
// + TQ_KEYS * (dim | 1)) floats. Row group g of the chunk is item item0 + g (batch entry item / groups, rows from
// (item % groups) * TQ_ROWS, groups = ceil(nq / TQ_ROWS)); its rows' order keys go to scratch[(g * TQ_ROWS + i) * nk
// + key] for the keys row i may see. The indexer's queries [B, heads, nq, dim] and keys [B, 1, nk, dim] by element
// strides (channels contiguous), of one dtype (kind); its weights [B, 1, nq, heads] by element strides, of dtype
// wKind.
extern "C" __global__ void __launch_bounds__(128) sparsa_li_scores(const void* q, long long qsb, long long qsh,
                                                                   long long qss, const void* kx, int kind,
                                                                   long long ksb, long long kss, const void* w,
                                                                   int wKind, long long wsb, long long wss,
                                                                   long long wsh, int heads, int hc, int dim, int nq,
                                                                   int nk, int causal, int queryOffset,
                                                                   long long item0, int groups, unsigned* scratch) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        liScores<__nv_bfloat16>(q, qsb, qsh, qss, kx, ksb, kss, w, wKind, wsb, wss, wsh, heads, hc, dim, nq, nk, causal,
                                queryOffset, item0, groups, scratch);
    } else if (kind == OUT_F16) {
        liScores<__half>(q, qsb, qsh, qss, kx, ksb, kss, w, wKind, wsb, wss, wsh, heads, hc, dim, nq, nk, causal,
                         queryOffset, item0, groups, scratch);
    } else {
        liScores<float>(q, qsb, qsh, qss, kx, ksb, kss, w, wKind, wsb, wss, wsh, heads, hc, dim, nq, nk, causal,
                        queryOffset, item0, groups, scratch);
    }
}
