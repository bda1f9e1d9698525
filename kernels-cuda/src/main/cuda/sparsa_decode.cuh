// Sparsa: decode against a KV cache.
//
//  sparsa_decode_<f32|f16|bf16>_d<D>: one CTA per work item (sequence b, KV head g, a tile of up to 16 of the
//      group's (query head, row) pairs, a chunk of the keys in visiting order). Head packing: the group's
//      query heads and the step's rows share one read of the keys. Keys in tiles of KT (64, or 32 for rows of
//      256 bytes or more) staged through shared memory with cp.async, two stages; K/V rows are read from a contiguous
//      cache [B, Hkv, capacity, D] or from pages [P, Hkv, pageSize, D] through the block table. Scores and the
//      online softmax in f32 on CUDA cores (decode is bound by memory). A work item writes the output directly
//      when it is its pairs' only chunk, else a normalized f32 partial and its LSE to scratch; with a counter
//      buffer, the last chunk of a merge tile to finish then merges the tile (decMergeIfLast), so that a split
//      step is one launch.
//  sparsa_decode_<f16|bf16>_d<64|128>_mma: the same work items on tensor cores (DecMma below).
//  sparsa_decode_e4m3_<f16|bf16|e4m3>_d<64|128>_mma: the same for caches of e4m3 codes with a scale per KV head, read
//      by an f16, bf16 or e4m3 query (e4m3: on bf16 tensor cores): each warp widens its tile's codes in shared memory.
//  sparsa_decode_merge: the chunks of each (pair tile, pair) merged through their LSEs, in a fixed order (the
//      default; the merge folded into the decode kernels, decMergeIfLast, has the same arithmetic).
//  sparsa_gather_pages: a sequence's rows of a paged pool copied into a contiguous tensor.
// Quest's page bounds and page choice, which read the same metadata, are in sparsa_quest.cuh; top-k's key scores in
// sparsa_decode_scores.cuh, its choice in sparsa_quest.cuh.
//
// The metadata (ints, written by dev.sparsa.cuda.CudaDecode.plan): lengths[B]; block tables [B][width] when paged;
// the span table (offsets[B*Hkv+1], starts, ends, maxDelta) for spans (sparse 1); the lists per (b, g), Quest's pages
// (sparse 2) or top-k's keys (sparse 3), written on the device; work items (DI_* fields); merge tiles (DM_* fields).
// Key k is admitted for a row at position p iff k <= p and p - k <= maxDelta of its span (dense and lists: every
// listed key, or every key of [0, L), with no band).
//
// The templated kernels' entry points are defined by SPARSA_DECODE_NAMED and SPARSA_DECODE_MMA_NAMED; their
// instantiations are rows of sparsa_kernels.def, expanded in sparsa_decode_quest.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include "sparsa_plan.cuh"
#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"

namespace sparsa {

// Called by every kernel of this unit (decode, merge, Quest, top-k) before it touches anything the kernel before it
// writes: as the first statement, except in the tensor-core decode kernels, which first stage their work item and Q
// while the choice still runs (dev.sparsa.cuda.DependentLaunch lets them start early only after a choice kernel,
// which writes neither). When a CUDA graph runs a kernel as a programmatic dependent of the kernel before it
// (dev.sparsa.cuda.CudaGraph), the kernel may start while that one still runs; griddepcontrol.wait returns once it
// has ended and its writes are visible. In any other launch it returns at once.
__device__ __forceinline__ void gridDependencyWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel of such a graph launch before this CTA exits; its CTAs then wait in gridDependencyWait. The
// choice kernels call it first: the decode's CTAs then start on the SMs the choice leaves idle. (Called by the
// decode kernel after its key loop, it made the dense step at batch 1 x 8k 3 % slower; docs/PERFORMANCE.md.)
__device__ __forceinline__ void gridDependentsMayLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

enum DecodeItem { DI_B = 0, DI_G = 1, DI_PAIR0 = 2, DI_PAIRS = 3, DI_V0 = 4, DI_V1 = 5, DI_SPAN = 6, DI_SPAN_OFF = 7,
                  DI_SCRATCH = 8, DI_MERGE = 9, DI_STRIDE = 10 };
enum DecodeMerge { DM_B = 0, DM_G = 1, DM_PAIR0 = 2, DM_PAIRS = 3, DM_CHUNKS = 4, DM_SCRATCH = 5, DM_STRIDE = 6 };

// All fields 8 bytes wide so that the host fills a long[] in this order.
struct DecodeScalars {
    long long qsb, qsh, qss;    // q [B, Hq, R, D]
    long long ksb, ksh, kss;    // K storage: [B, Hkv, cap, D] or pages [P, Hkv, pageSize, D]
    long long vsb, vsh, vss;
    long long osb, osh, oss;
    long long lsb, lsh, lss;
    long long group, rows, outKind, paged, pageShift, tableWidth, sparse, kvHeads, batch;
    long long oTables, oSpanOffsets, oSpanStarts, oSpanEnds, oSpanDelta, oItems, oMerges, oLists, listWidth;
    double scale, softCap;
};

template <typename T> struct DecCfg {
    static constexpr int THREADS = 128;
    static constexpr int MMAX = 16;  // (head, row) pairs per work item
};

template <typename T, int D> struct DecTile {
    // keys per tile: 32 once a row is 256 bytes, so that four CTAs (16 warps) share an SM and hide the
    // latency of each tile's chain of barriers (64 keys of 256-byte rows allowed only two)
    static constexpr int KT = (int)sizeof(T) * D >= 256 ? 32 : 64;
    static constexpr int PARTS = DecCfg<T>::THREADS / KT;          // threads per key in the score pass
    static constexpr int VEC = 16 / (int)sizeof(T);                // elements per 16-byte copy
    static constexpr int STR = D + VEC;                            // smem row stride (elements): 16-byte pad
    static constexpr int PS = KT + 4;                              // smem stride of the probabilities
    static constexpr size_t SMEM = sizeof(T) * (size_t)(2 * 2 * KT * STR)                  // K, V, two stages
                                   + sizeof(float) * (size_t)(DecCfg<T>::MMAX * (D + 4))    // q (f32)
                                   + sizeof(float) * (size_t)(PARTS * DecCfg<T>::MMAX * KT) // partial scores
                                   + sizeof(float) * (size_t)(DecCfg<T>::MMAX * PS)         // probabilities
                                   + sizeof(float) * DecCfg<T>::MMAX                        // rescale factors
                                   + sizeof(int) * (size_t)(2 * 2 * KT);                    // key positions, bands
};

__device__ __forceinline__ float decToFloat(float x) { return x; }
__device__ __forceinline__ float decToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float decToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

// The key position of visit index v in (b, g)'s order, advancing a span cursor (sparse), and its band.
struct SpanCursor {
    int span, off;
};

// Advances a span cursor by n visit indices (every thread, the same arithmetic).
__device__ __forceinline__ void decAdvance(const int* starts, const int* ends, SpanCursor& cur, int n) {
    while (n > 0) {
        int room = ends[cur.span] - starts[cur.span] - cur.off;
        if (n < room) {
            cur.off += n;
            n = 0;
        } else {
            n -= room;
            cur.span++;
            cur.off = 0;
        }
    }
}

// Writes the key positions and bands of a tile's slots: visit indices vBase .. vBase + count - 1 of (b, g).
// Dense: the position is the visit index. Spans (sparse == 1): thread 0 walks the spans from the cursor.
// Page lists (sparse == 2): visit index v is slot v mod P of the (v / P)-th listed page. Key lists (sparse == 3): the
// v-th listed key.
template <typename T, int D>
__device__ __forceinline__ void decFillKeys(const int* meta, const DecodeScalars& S, int e, int vBase, int count,
                                            SpanCursor& cur, int* kpos, int* kband, int tid) {
    using C = DecTile<T, D>;
    if (S.sparse != 1) {
        const int* list = meta + S.oLists + (long long)e * S.listWidth;
        const int mask = (1 << S.pageShift) - 1;
        for (int j = tid; j < C::KT; j += DecCfg<T>::THREADS) {
            int v = vBase + j;
            int k = -1;
            if (j < count)
                k = S.sparse == 0 ? v : S.sparse == 3 ? list[v] : (list[v >> S.pageShift] << S.pageShift) + (v & mask);
            kpos[j] = k;
            kband[j] = 0x7fffffff;
        }
        return;
    }
    const int* starts = meta + S.oSpanStarts;
    const int* ends = meta + S.oSpanEnds;
    const int* delta = meta + S.oSpanDelta;
    if (tid == 0) {
        SpanCursor w = cur;
        for (int j = 0; j < C::KT; j++) {
            if (j < count) {
                kpos[j] = starts[w.span] + w.off;
                kband[j] = delta[w.span];
                decAdvance(starts, ends, w, 1);
            } else {
                kpos[j] = -1;
                kband[j] = 0;
            }
        }
    }
    decAdvance(starts, ends, cur, count);
}

// Queues the copies of a tile's K and V rows (rows of slots past the count are zero-filled).
template <typename T, int D>
__device__ __forceinline__ void decLoadTile(T* sK, T* sV, const int* kpos, const T* kBase, const T* vBase,
                                            const int* table, const DecodeScalars& S, int tid) {
    using C = DecTile<T, D>;
    constexpr int VPR = D / C::VEC;  // 16-byte vectors per row
    for (int idx = tid; idx < C::KT * VPR; idx += DecCfg<T>::THREADS) {
        int j = idx / VPR, c = idx - j * VPR;
        int k = kpos[j];
        bool ok = k >= 0;
        long long kr = 0, vr = 0;
        if (ok) {
            if (S.paged) {
                int page = table[k >> S.pageShift];
                int slot = k & ((1 << S.pageShift) - 1);
                kr = (long long)page * S.ksb + (long long)slot * S.kss;
                vr = (long long)page * S.vsb + (long long)slot * S.vss;
            } else {
                kr = (long long)k * S.kss;
                vr = (long long)k * S.vss;
            }
        }
        cpAsync16(sK + j * C::STR + c * C::VEC, kBase + kr + c * C::VEC, ok);
        cpAsync16(sV + j * C::STR + c * C::VEC, vBase + vr + c * C::VEC, ok);
    }
}

template <typename T, int D>
__device__ void decodeKernel(const T* q, const T* kStore, const T* vStore, void* out, float* lse, float* scratchO,
                             float* scratchLse, int* mergeCounts, const int* meta, const DecodeScalars S) {
    using C = DecTile<T, D>;
    constexpr int NT = DecCfg<T>::THREADS, MMAX = DecCfg<T>::MMAX, KT = C::KT, PARTS = C::PARTS;
    extern __shared__ __align__(16) unsigned char smemRaw[];
    T* sK = reinterpret_cast<T*>(smemRaw);
    T* sV = sK + 2 * KT * C::STR;
    float* sQ = reinterpret_cast<float*>(sV + 2 * KT * C::STR);
    float* sS = sQ + MMAX * (D + 4);
    float* sP = sS + PARTS * MMAX * KT;
    float* sAlpha = sP + MMAX * C::PS;
    int* sKpos = reinterpret_cast<int*>(sAlpha + MMAX);
    int* sBand = sKpos + 2 * KT;

    const int tid = threadIdx.x;
    const int* I = meta + S.oItems + (long long)blockIdx.x * DI_STRIDE;
    const int b = I[DI_B], g = I[DI_G], pair0 = I[DI_PAIR0], M = I[DI_PAIRS];
    const int v0 = I[DI_V0], v1 = I[DI_V1], scratch = I[DI_SCRATCH];
    const int length = meta[b];
    const int e = b * (int)S.kvHeads + g;
    const int R = (int)S.rows, G = (int)S.group;
    const int* table = S.paged ? meta + S.oTables + (long long)b * S.tableWidth : nullptr;
    const T* kBase = kStore + (S.paged ? (long long)g * S.ksh : (long long)b * S.ksb + (long long)g * S.ksh);
    const T* vBase = vStore + (S.paged ? (long long)g * S.vsh : (long long)b * S.vsb + (long long)g * S.vsh);

    // the pairs' query rows, as f32
    for (int idx = tid; idx < M * D; idx += NT) {
        int i = idx / D, d = idx - i * D;
        int x = pair0 + i, hh = x / R, r = x - hh * R;
        int h = g * G + hh;
        sQ[i * (D + 4) + d] = decToFloat(q[(long long)b * S.qsb + (long long)h * S.qsh + (long long)r * S.qss + d]);
    }
    SpanCursor cur{I[DI_SPAN], I[DI_SPAN_OFF]};
    const int total = v1 - v0;
    const int tiles = (total + KT - 1) / KT;
    if (tiles > 0) {
        decFillKeys<T, D>(meta, S, e, v0, min(KT, total), cur, sKpos, sBand, tid);
        __syncthreads();
        decLoadTile<T, D>(sK, sV, sKpos, kBase, vBase, table, S, tid);
    }
    cpAsyncCommit();

    // online-softmax state: PV thread layout (column per thread), rows replicated
    constexpr int COLS = D >= NT ? D / NT : 1;
    const bool pvActive = tid < (D >= NT ? NT : D);
    float acc[MMAX][COLS];
#pragma unroll
    for (int i = 0; i < MMAX; i++)
#pragma unroll
        for (int c = 0; c < COLS; c++) acc[i][c] = 0.f;
    // softmax thread layout: row sr = tid / 8, 8 lanes per row
    const int sr = tid >> 3, sl = tid & 7;
    float mRow = -INFINITY, lRow = 0.f;
    const float scale = (float)S.scale, cap = (float)S.softCap;
    long long rowPos = 0;
    if (sr < M) {
        int r = (pair0 + sr) % R;
        rowPos = (long long)length - R + r;
    }

    for (int t = 0; t < tiles; t++) {
        const int st = t & 1;
        if (t + 1 < tiles) {
            int cnt = min(KT, total - (t + 1) * KT);
            decFillKeys<T, D>(meta, S, e, v0 + (t + 1) * KT, cnt, cur, sKpos + (st ^ 1) * KT, sBand + (st ^ 1) * KT,
                              tid);
            __syncthreads();
            decLoadTile<T, D>(sK + (st ^ 1) * KT * C::STR, sV + (st ^ 1) * KT * C::STR, sKpos + (st ^ 1) * KT, kBase,
                              vBase, table, S, tid);
            cpAsyncCommit();
            cpAsyncWait<1>();
        } else {
            cpAsyncWait<0>();
        }
        __syncthreads();
        const T* tK = sK + st * KT * C::STR;
        const T* tV = sV + st * KT * C::STR;
        const int* kp = sKpos + st * KT;
        const int* kb = sBand + st * KT;

        // scores: thread (key j, part p) sums D / PARTS channels for every pair
        {
            const int j = tid % KT, p = tid / KT;
            constexpr int CH = D / PARTS;
            float s[MMAX];
#pragma unroll
            for (int i = 0; i < MMAX; i++) s[i] = 0.f;
            const T* kr = tK + j * C::STR + p * CH;
#pragma unroll 2
            for (int c = 0; c < CH; c += C::VEC) {
                float kv[C::VEC];
                if constexpr (sizeof(T) == 4) {
                    float4 w = *reinterpret_cast<const float4*>(kr + c);
                    kv[0] = w.x; kv[1] = w.y; kv[2] = w.z; kv[3] = w.w;
                } else {
                    uint4 w = *reinterpret_cast<const uint4*>(kr + c);
                    const T* e = reinterpret_cast<const T*>(&w);
#pragma unroll
                    for (int u = 0; u < C::VEC; u++) kv[u] = decToFloat(e[u]);
                }
#pragma unroll
                for (int i = 0; i < MMAX; i++) {
                    if (i < M) {
                        const float* qr = sQ + i * (D + 4) + p * CH + c;
#pragma unroll
                        for (int u = 0; u < C::VEC; u += 4) {
                            float4 qq = *reinterpret_cast<const float4*>(qr + u);
                            s[i] = fmaf(qq.x, kv[u], s[i]);
                            s[i] = fmaf(qq.y, kv[u + 1], s[i]);
                            s[i] = fmaf(qq.z, kv[u + 2], s[i]);
                            s[i] = fmaf(qq.w, kv[u + 3], s[i]);
                        }
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < MMAX; i++)
                if (i < M) sS[(p * MMAX + i) * KT + j] = s[i];
        }
        __syncthreads();

        // online softmax: 8 lanes per pair, KT / 8 keys each; lanes of unused pairs run along with -inf
        {
            constexpr int PER = KT / 8;
            const bool live = sr < M;
            float x[PER];
            float mx = -INFINITY;
#pragma unroll
            for (int u = 0; u < PER; u++) {
                int j = sl * PER + u;
                float s = 0.f;
                if (live) {
#pragma unroll
                    for (int p = 0; p < PARTS; p++) s += sS[(p * MMAX + sr) * KT + j];
                }
                s *= scale;
                if (cap > 0.f) s = cap * tanhf(s / cap);
                int k = kp[j];
                long long delta = rowPos - (long long)k;
                bool ok = live && k >= 0 && delta >= 0 && delta <= (long long)kb[j];
                x[u] = ok ? s : -INFINITY;
                mx = fmaxf(mx, x[u]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
            float nm = fmaxf(mRow, mx);
            float u0 = nm == -INFINITY ? 0.f : nm;
            float alpha = expf(mRow - u0);
            float sum = 0.f;
#pragma unroll
            for (int u = 0; u < PER; u++) {
                float pr = expf(x[u] - u0);
                if (live) sP[sr * C::PS + sl * PER + u] = pr;
                sum += pr;
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            sum += __shfl_xor_sync(0xffffffffu, sum, 4);
            lRow = lRow * alpha + sum;
            mRow = nm;
            if (live && sl == 0) sAlpha[sr] = alpha;
        }
        __syncthreads();

        // O = alpha * O + P V: each thread owns COLS columns for every pair
        if (pvActive) {
#pragma unroll
            for (int i = 0; i < MMAX; i++) {
                if (i < M) {
                    float a = sAlpha[i];
#pragma unroll
                    for (int c = 0; c < COLS; c++) acc[i][c] *= a;
                }
            }
            for (int j = 0; j < KT; j += 4) {
                float vv[4][COLS];
#pragma unroll
                for (int u = 0; u < 4; u++)
#pragma unroll
                    for (int c = 0; c < COLS; c++) vv[u][c] = decToFloat(tV[(j + u) * C::STR + tid + c * NT]);
#pragma unroll
                for (int i = 0; i < MMAX; i++) {
                    if (i < M) {
                        float4 pp = *reinterpret_cast<const float4*>(sP + i * C::PS + j);
#pragma unroll
                        for (int c = 0; c < COLS; c++) {
                            acc[i][c] = fmaf(pp.x, vv[0][c], acc[i][c]);
                            acc[i][c] = fmaf(pp.y, vv[1][c], acc[i][c]);
                            acc[i][c] = fmaf(pp.z, vv[2][c], acc[i][c]);
                            acc[i][c] = fmaf(pp.w, vv[3][c], acc[i][c]);
                        }
                    }
                }
            }
        }
        __syncthreads();
    }
    cpAsyncWait<0>();

    // the pairs' (m, l) to shared memory for the column threads
    float* sM = sS;             // reuse: [MMAX] maxima, then [MMAX] sums
    float* sL = sS + MMAX;
    __syncthreads();
    if (sr < M && sl == 0) {
        sM[sr] = mRow;
        sL[sr] = lRow;
    }
    __syncthreads();
    if (pvActive) {
#pragma unroll
        for (int i = 0; i < MMAX; i++) {
            if (i >= M) break;
            float l = sL[i];
            // a NaN sum means a NaN or +inf score: the pair is NaN, not empty
            float inv = l != l ? l : (l > 0.f ? 1.f / l : 0.f);
            int x = pair0 + i, hh = x / R, r = x - hh * R;
            int h = g * G + hh;
            if (scratch < 0) {
                long long ob = (long long)b * S.osb + (long long)h * S.osh + (long long)r * S.oss;
#pragma unroll
                for (int c = 0; c < COLS; c++) storeOut1(out, ob + tid + c * NT, (int)S.outKind, acc[i][c] * inv);
            } else {
#pragma unroll
                for (int c = 0; c < COLS; c++) scratchO[(long long)(scratch + i) * D + tid + c * NT] = acc[i][c] * inv;
            }
        }
    }
    if (tid < M) {
        float l = sL[tid];
        float lv = l != l ? l : (l > 0.f ? sM[tid] + logf(l) : -INFINITY);
        int x = pair0 + tid, hh = x / R, r = x - hh * R;
        int h = g * G + hh;
        if (scratch < 0) {
            if (lse) lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = lv;
        } else {
            scratchLse[scratch + tid] = lv;
        }
    }
    if (scratch >= 0 && mergeCounts) decMergeIfLast(scratchO, scratchLse, out, lse, mergeCounts, meta, S, D, I, NT / 32);
}

// ---------------------------------------------------------------- the merge of a tile's chunks
//
// The merge of merge tile `tile`'s chunks, in two parts with sparsa_decode_merge's arithmetic. decMergeWeights: one
// warp finds pair i's max LSE over the chunks and the sum of exp(lse_c - max) (every lane gets both).
// decMergeColumn: one thread sums column d of pair i over the chunks in a fixed order (four running sums, sixteen
// chunks' loads in flight) and stores it. The arithmetic per column does not depend on which threads run it, so
// the merge kernel and the merge folded into the decode kernels give the same bits. Loads bypass L1 (__ldcg):
// other CTAs wrote the partials.
__device__ __forceinline__ void decMergeWeights(const float* scratchLse, const int* T0, int i, int lane, float& mxOut,
                                                float& totalOut) {
    const int M = T0[DM_PAIRS], chunks = T0[DM_CHUNKS], base = T0[DM_SCRATCH];
    float mx = -INFINITY;
    bool nan = false;
    for (int c = lane; c < chunks; c += 32) {
        const float w = __ldcg(scratchLse + base + c * M + i);
        nan = nan || w != w;
        mx = fmaxf(mx, w);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    // fmaxf drops NaN: a chunk whose LSE is NaN (a NaN or +inf score) makes the pair NaN, never empty
    if (__any_sync(0xffffffffu, nan)) mx = __int_as_float(0x7fc00000);
    float total = 0.f;
    if (mx != -INFINITY)
        for (int c = lane; c < chunks; c += 32) total += expf(__ldcg(scratchLse + base + c * M + i) - mx);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) total += __shfl_xor_sync(0xffffffffu, total, off);
    mxOut = mx;
    totalOut = total;
}

__device__ __forceinline__ void decMergeColumn(const float* scratchO, const float* scratchLse, void* out,
                                               const DecodeScalars& S, const int* T0, int valueDim, int i, int d,
                                               float mx, float total) {
    const int M = T0[DM_PAIRS], chunks = T0[DM_CHUNKS], base = T0[DM_SCRATCH];
    const int R = (int)S.rows, G = (int)S.group;
    const int x = T0[DM_PAIR0] + i, hh = x / R, r = x - hh * R;
    const int b = T0[DM_B], h = T0[DM_G] * G + hh;
    float a = 0.f;
    if (mx != -INFINITY) {
        float a1 = 0.f, a2 = 0.f, a3 = 0.f;
        int c = 0;
        for (; c + 16 <= chunks; c += 16) {
            float o[16], w[16];
#pragma unroll
            for (int u = 0; u < 16; u++) {
                const long long e = base + (long long)(c + u) * M + i;
                o[u] = __ldcg(scratchO + e * valueDim + d);
                w[u] = __ldcg(scratchLse + e);
            }
#pragma unroll
            for (int u = 0; u < 16; u += 4) {
                a = fmaf(expf(w[u] - mx), o[u], a);
                a1 = fmaf(expf(w[u + 1] - mx), o[u + 1], a1);
                a2 = fmaf(expf(w[u + 2] - mx), o[u + 2], a2);
                a3 = fmaf(expf(w[u + 3] - mx), o[u + 3], a3);
            }
        }
        for (; c + 4 <= chunks; c += 4) {
            const long long e = base + (long long)c * M + i;
            const float o0 = __ldcg(scratchO + e * valueDim + d), o1 = __ldcg(scratchO + (e + M) * valueDim + d);
            const float o2 = __ldcg(scratchO + (e + 2 * M) * valueDim + d);
            const float o3 = __ldcg(scratchO + (e + 3 * M) * valueDim + d);
            a = fmaf(expf(__ldcg(scratchLse + e) - mx), o0, a);
            a1 = fmaf(expf(__ldcg(scratchLse + e + M) - mx), o1, a1);
            a2 = fmaf(expf(__ldcg(scratchLse + e + 2 * M) - mx), o2, a2);
            a3 = fmaf(expf(__ldcg(scratchLse + e + 3 * M) - mx), o3, a3);
        }
        for (; c < chunks; c++) {
            const long long e = base + (long long)c * M + i;
            a = fmaf(expf(__ldcg(scratchLse + e) - mx), __ldcg(scratchO + e * valueDim + d), a);
        }
        a = ((a + a1) + (a2 + a3)) / total;
    }
    storeOut1(out, (long long)b * S.osb + (long long)h * S.osh + (long long)r * S.oss + d, (int)S.outKind, a);
}

// Called by every thread of a decode CTA after it wrote its partial (scratch >= 0) when the call has merge counters:
// the CTA takes a ticket on its merge tile's counter; the last of the tile's chunks to arrive resets the counter to
// zero (ready for the next launch: a graph replays unchanged) and merges the tile: a warp per pair for the weights,
// then a thread per (pair, column). The fences
// publish this CTA's partial before its ticket and order the last CTA's reads after all tickets.
__device__ __forceinline__ void decMergeIfLast(const float* scratchO, const float* scratchLse, void* out, float* lse,
                                           int* mergeCounts, const int* meta, const DecodeScalars& S, int valueDim,
                                           const int* item, int warps) {
    __shared__ int sLast;
    __threadfence();
    __syncthreads();
    const int tile = item[DI_MERGE];
    if (threadIdx.x == 0) {
        const int chunks = meta[S.oMerges + (long long)tile * DM_STRIDE + DM_CHUNKS];
        const int ticket = atomicAdd(mergeCounts + tile, 1);
        sLast = ticket == chunks - 1;
        if (sLast) mergeCounts[tile] = 0;
    }
    __syncthreads();
    if (!sLast) return;  // the same value in every thread: the whole CTA returns or merges
    __threadfence();
    __shared__ float sMx[DecCfg<float>::MMAX], sTotal[DecCfg<float>::MMAX];
    const int* T0 = meta + S.oMerges + (long long)tile * DM_STRIDE;
    const int M = T0[DM_PAIRS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int i = warp; i < M; i += warps) {
        float mx, total;
        decMergeWeights(scratchLse, T0, i, lane, mx, total);
        if (lane == 0) {
            sMx[i] = mx;
            sTotal[i] = total;
        }
    }
    __syncthreads();
    // every thread of the CTA on its own (pair, column), as the merge kernel has a thread per column
    for (int idx = threadIdx.x; idx < M * valueDim; idx += warps * 32) {
        const int i = idx / valueDim, d = idx - i * valueDim;
        decMergeColumn(scratchO, scratchLse, out, S, T0, valueDim, i, d, sMx[i], sTotal[i]);
    }
    if (lse && (int)threadIdx.x < M) {
        const int i = threadIdx.x, R = (int)S.rows, G = (int)S.group;
        const int x = T0[DM_PAIR0] + i, hh = x / R, r = x - hh * R;
        const int b = T0[DM_B], h = T0[DM_G] * G + hh;
        const float mx = sMx[i], total = sTotal[i];
        lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = mx == -INFINITY ? -INFINITY : mx + logf(total);
    }
}

// ---------------------------------------------------------------- tensor-core decode (f16/bf16, D 64 and 128)
//
// The item's up-to-16 pairs are the rows of one m16 tile of mma.sync (f32 accumulation), so scores and P·V
// cost a few tensor instructions per key instead of f32 FMAs. The item's tiles of KW keys are dealt to the warps
// in turn (SPARSA_DECODE_STRIDED below); each warp streams its tiles through its own ring of STAGES tiles
// (cp.async, no CTA-wide barrier in the loop: a warp waits only for its own copies), and the warps' softmax
// states are merged through shared memory at the end. Bytes in flight per SM: WARPS · (STAGES - 1) tiles of K
// and V.
// The tensor-core kernel's shape. Development builds may set other values (kernels-cuda/bench/dev-fatbin.sh decode
// DIR, with EXTRA='-DSPARSA_DECODE_WARPS=6 -DSPARSA_DECODE_CTAS=2') and run Java with the matching
// -Dsparsa.cuda.decodeWarps / decodeStages, whose launch checks the image's thread count. SPARSA_DECODE_CTAS is the
// CTAs per SM the registers must allow (__launch_bounds__). Measured on the H200: 12 warps, 2 stages, one CTA per SM
// is the fastest shape tried (docs/PERFORMANCE.md, "Decode kernel shapes at batch 1 and 16").
#ifndef SPARSA_DECODE_WARPS
#define SPARSA_DECODE_WARPS 12
#endif
#ifndef SPARSA_DECODE_STAGES
#define SPARSA_DECODE_STAGES 2
#endif
#ifndef SPARSA_DECODE_CTAS
#define SPARSA_DECODE_CTAS 1
#endif
// SPARSA_DECODE_STRIDED: tile j of an item goes to warp j mod WARPS, so that at any time the CTA's warps read one
// stretch of K and of V side by side; 0 gives each warp a contiguous share instead (WARPS stretches per item).
// Measured on an H100: contiguous caches 0.7-4 % faster at batch 16 and at batch 1 × 128k, the same elsewhere;
// paged caches the same (an H200 measured them 0.6-1.4 % slower in an earlier form: kernels-cuda/NOTES.md, d5).
// Paged and contiguous caches take the same assignment, so that their outputs stay equal bit for bit
// (docs/PERFORMANCE.md, "Tiles dealt to the warps in turn"). Items read through a selection's spans (sparse == 1:
// sinks + window, a selection made on the host) keep contiguous shares: their cursor walks the spans in order.
#ifndef SPARSA_DECODE_STRIDED
#define SPARSA_DECODE_STRIDED 1
#endif
// SPARSA_DECODE_KV_SPLIT: a tile's K and V copies are separate groups, so the slot's K half takes the tile two ahead
// as soon as the scores are read, before the softmax and P·V (three half-tiles in flight instead of two).
#ifndef SPARSA_DECODE_KV_SPLIT
#define SPARSA_DECODE_KV_SPLIT 0
#endif

// KS: the cache's element type: T (K and V rows go to the tensor cores as they are) or uint8_t (e4m3 codes, widened to T
// in shared memory after each tile lands: sparsa_decode_e4m3_<q>_d<D>_mma). QS: the query's, T or uint8_t (e4m3).
template <typename T, int D, int WARPS_ = SPARSA_DECODE_WARPS, int STAGES_ = SPARSA_DECODE_STAGES, int KW_ = 16,
          typename KS = T, typename QS = T>
struct DecMma {
    using Store = KS;
    using QStore = QS;  // the query's element type: T, or uint8_t (e4m3 codes × a scale per query head, rounded to T)
    static constexpr bool E4M3 = sizeof(KS) == 1;
    static constexpr int WARPS = WARPS_, THREADS = WARPS * 32;
    static constexpr int KW = KW_;                // keys per warp tile: at most one per lane when filling positions
    static constexpr int STAGES = STAGES_;
    static constexpr int STR = D + 8;             // smem row stride (elements of T): 16-byte pad against bank conflicts
    static constexpr int RSTR = D + 16 / (int)sizeof(KS);  // the copied rows' stride (elements of KS), 16-byte pad
    static constexpr int TILE_T = 2 * (int)sizeof(KS) * KW * RSTR;  // K and V rows of a tile as copied
    static constexpr int STAGE = TILE_T + KW * (8 + 8 + 4 + 4);  // + row offsets of K and V, positions, bands
    static constexpr int WIDE = E4M3 ? 2 * (int)sizeof(T) * KW * STR : 0;  // e4m3: the warp's tile widened to T
    static constexpr int QBYTES = (int)sizeof(T) * 16 * STR;
    static constexpr int MERGE = (int)sizeof(float) * WARPS * 16 * (D + 2);
    static constexpr int RING = WARPS * (STAGES * STAGE + WIDE);
    static constexpr size_t SMEM = (size_t)QBYTES + (size_t)(RING > MERGE ? RING : MERGE);
    static_assert(KW == 16 || KW == 32, "at most one key slot per lane, whole 16-key mma steps");
    static_assert(STAGE % 16 == 0 && QBYTES % 16 == 0 && WIDE % 16 == 0, "16-byte aligned stages");
    // the split K/V ring (a development variant) is built for 16-bit caches: e4m3 kernels keep the plain ring
    static constexpr bool KV_SPLIT = SPARSA_DECODE_KV_SPLIT && !E4M3;
    static_assert(!KV_SPLIT || STAGES == 2, "the split K/V ring counts its groups for two stages");
};

// The e4m3 kernels' scales, one per KV head (a cache's per-tensor scale repeated), by value so that a captured
// graph holds them: K's multiplies the scores, V's the output; an e4m3 query's multiply its codes.
#define SPARSA_DECODE_MAX_KV_HEADS 128
struct DecScales {
    float q[SPARSA_DECODE_MAX_KV_HEADS];  // per query head, for an e4m3 query (at most 128 query heads then)
    float k[SPARSA_DECODE_MAX_KV_HEADS];
    float v[SPARSA_DECODE_MAX_KV_HEADS];
};

// Two e4m3 codes (low byte first) as two T values, exactly (every e4m3 value is an f16 and a bf16).
template <typename T> __device__ __forceinline__ uint32_t e4m3x2To(uint16_t two);
template <> __device__ __forceinline__ uint32_t e4m3x2To<__half>(uint16_t two) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, __NV_E4M3);
    return (uint32_t)h.x | ((uint32_t)h.y << 16);
}
template <> __device__ __forceinline__ uint32_t e4m3x2To<__nv_bfloat16>(uint16_t two) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, __NV_E4M3);
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
    const __nv_bfloat162 b = __floats2bfloat162_rn(f.x, f.y);
    return *reinterpret_cast<const uint32_t*>(&b);
}

// e4m3: a warp widens its tile's K and V rows (2 KW rows of D codes) into T rows of stride STR; 16 codes per lane and
// step (one 16-byte load, two 16-byte stores).
template <typename T, int D, typename C>
__device__ __forceinline__ void decWiden(const uint8_t* raw, T* wide, int lane) {
    constexpr int CPR = D / 16;  // 16-code chunks per row
#pragma unroll 4
    for (int idx = lane; idx < 2 * C::KW * CPR; idx += 32) {
        const int r = idx / CPR, c = idx - r * CPR;
        const uint4 in = *reinterpret_cast<const uint4*>(raw + r * C::RSTR + c * 16);
        const uint32_t w[4] = {in.x, in.y, in.z, in.w};
        uint32_t o[8];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            o[2 * i] = e4m3x2To<T>((uint16_t)(w[i] & 0xffffu));
            o[2 * i + 1] = e4m3x2To<T>((uint16_t)(w[i] >> 16));
        }
        uint4* dst = reinterpret_cast<uint4*>(wide + r * C::STR + c * 16);
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
}

// cpAsync16 (sparsa_mma.cuh) with the L2 prefetch size of 128 bytes: each 16-byte copy of a K or V row lets the
// L2 fetch the whole 128-byte line from DRAM at once. Measured on the H200 (dense decode, batch 16, 32k and 128k
// keys): 2.3-2.7 % faster than without the hint, 256 bytes no better than 128.
__device__ __forceinline__ void cpAsync16Line(void* dst, const void* src, bool valid) {
    uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n));
}

// Fills the slots of one warp tile (lane j: visit index vb + j, when j < count) with key positions, bands and
// the element offsets of the K and V rows, then queues the tile's copies (zero rows past the count). PARTS: 3 both
// (the default), 1 the slots and the K rows, 2 the V rows alone (after a call with 1 for the same tile).
template <typename T, int D, typename C, int PARTS = 3>
__device__ __forceinline__ void decMmaIssue(unsigned char* stage, const int* meta, const DecodeScalars& S, int e,
                                            const int* table, const typename C::Store* kBase,
                                            const typename C::Store* vBase, int vb, int count, SpanCursor& cur,
                                            int lane) {
    using KS = typename C::Store;
    KS* sK = reinterpret_cast<KS*>(stage);
    KS* sV = sK + C::KW * C::RSTR;
    long long* sKoff = reinterpret_cast<long long*>(stage + C::TILE_T);
    long long* sVoff = sKoff + C::KW;
    int* sKpos = reinterpret_cast<int*>(sVoff + C::KW);
    int* sBand = sKpos + C::KW;
    constexpr int EV = 16 / (int)sizeof(KS);  // elements per 16-byte vector
    constexpr int VPR = D / EV;               // 16-byte vectors per row
    if constexpr (PARTS == 2) {
#pragma unroll 4
        for (int idx = lane; idx < C::KW * VPR; idx += 32) {
            const int r = idx / VPR, c = idx - r * VPR;
            const bool ok = r < count;
            cpAsync16Line(sV + r * C::RSTR + c * EV, vBase + (ok ? sVoff[r] : 0) + c * EV, ok);
        }
        return;
    }
    const int mask = (1 << S.pageShift) - 1;
    int k = -1, band = 0;
    long long kr = 0, vr = 0;
    if (lane < count) {
        const int v = vb + lane;
        band = 0x7fffffff;
        if (S.sparse == 0) {
            k = v;
        } else if (S.sparse == 2) {
            const int* list = meta + S.oLists + (long long)e * S.listWidth;
            k = (list[v >> S.pageShift] << S.pageShift) + (v & mask);
        } else if (S.sparse == 3) {
            k = meta[S.oLists + (long long)e * S.listWidth + v];
        } else {
            SpanCursor w = cur;
            decAdvance(meta + S.oSpanStarts, meta + S.oSpanEnds, w, lane);
            k = meta[S.oSpanStarts + w.span] + w.off;
            band = meta[S.oSpanDelta + w.span];
        }
        if (S.paged) {
            const long long page = table[k >> S.pageShift];
            const long long slot = k & mask;
            kr = page * S.ksb + slot * S.kss;
            vr = page * S.vsb + slot * S.vss;
        } else {
            kr = (long long)k * S.kss;
            vr = (long long)k * S.vss;
        }
    }
    if (lane < C::KW) {
        sKpos[lane] = k;
        sBand[lane] = band;
        sKoff[lane] = kr;
        sVoff[lane] = vr;
    }
    if (S.sparse == 1) decAdvance(meta + S.oSpanStarts, meta + S.oSpanEnds, cur, count);
    __syncwarp();
#pragma unroll 4
    for (int idx = lane; idx < C::KW * VPR; idx += 32) {
        const int r = idx / VPR, c = idx - r * VPR;
        const bool ok = r < count;
        cpAsync16Line(sK + r * C::RSTR + c * EV, kBase + (ok ? sKoff[r] : 0) + c * EV, ok);
        if constexpr (PARTS == 3)
            cpAsync16Line(sV + r * C::RSTR + c * EV, vBase + (ok ? sVoff[r] : 0) + c * EV, ok);
    }
}

template <typename T, int D, typename C>
__device__ void decodeMmaKernel(const typename C::QStore* q, const typename C::Store* kStore,
                                const typename C::Store* vStore, void* out, float* lse, float* scratchO,
                                float* scratchLse, int* mergeCounts, const int* meta, const DecodeScalars S,
                                const DecScales* scales = nullptr) {
    using KS = typename C::Store;
    using QS = typename C::QStore;
    constexpr int KW = C::KW, STAGES = C::STAGES, STR = C::STR, NB = KW / 8;
    extern __shared__ __align__(16) unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>(smemRaw);
    unsigned char* area = smemRaw + C::QBYTES;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, t4 = lane & 3;
    const int* I = meta + S.oItems + (long long)blockIdx.x * DI_STRIDE;
    const int b = I[DI_B], g = I[DI_G], pair0 = I[DI_PAIR0], M = I[DI_PAIRS];
    const int v0 = I[DI_V0], v1 = I[DI_V1], scratch = I[DI_SCRATCH];
    const int length = meta[b];
    const int e = b * (int)S.kvHeads + g;
    const int R = (int)S.rows, G = (int)S.group;
    const int* table = S.paged ? meta + S.oTables + (long long)b * S.tableWidth : nullptr;
    const KS* kBase = kStore + (S.paged ? (long long)g * S.ksh : (long long)b * S.ksb + (long long)g * S.ksh);
    const KS* vBase = vStore + (S.paged ? (long long)g * S.vsh : (long long)b * S.vsb + (long long)g * S.vsh);

    // the pairs' query rows (zero rows past M), then their A fragments in registers
    for (int idx = tid; idx < 16 * D; idx += C::THREADS) {
        const int i = idx / D, d = idx - i * D;
        T x = T(0.f);
        if (i < M) {
            const int p = pair0 + i, hh = p / R, r = p - hh * R;
            const QS c = q[(long long)b * S.qsb + (long long)(g * G + hh) * S.qsh + (long long)r * S.qss + d];
            if constexpr (sizeof(QS) == 1) {
                // an e4m3 query: code × its head's scale, rounded to T once
                const __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)c, __NV_E4M3);
                x = T(__half2float(*reinterpret_cast<const __half*>(&h)) * scales->q[g * G + hh]);
            } else {
                x = c;
            }
        }
        sQ[i * STR + d] = x;
    }
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldsm4(qf[kk], sQ + ((lane & 7) + ((lane >> 3) & 1) * 8) * STR + kk * 16 + (lane >> 4) * 8);
    // the item, the lengths and Q are not the choice kernel's to write; the keys' lists (Quest, top-k) are
    gridDependencyWait();

    // this lane's two rows: pairs gq and gq + 8, at positions length - R + r
    const int iA = gq, iB = gq + 8;
    const int posA = iA < M ? length - R + (pair0 + iA) % R : -1;
    const int posB = iB < M ? length - R + (pair0 + iB) % R : -1;
    float scale = (float)S.scale;
    const float cap = (float)S.softCap;
    float vScale = 1.f;
    if constexpr (C::E4M3) {
        // codes × the KV head's scales: K's into the scores' scale, V's into the output (a product of two f32
        // roundings where the oracle has one: far inside the tolerance)
        scale *= scales->k[g];
        vScale = scales->v[g];
    }

    // this warp's share of the item's keys: [w0, w1) of [0, v1 - v0), whole tiles
    const int total = v1 - v0;
    const int per = (total + C::WARPS * KW - 1) / (C::WARPS * KW) * KW;
    const int w0 = min(total, warp * per), w1 = min(total, w0 + per);
#if SPARSA_DECODE_STRIDED
    const bool strided = S.sparse != 1;  // spans keep contiguous shares: their cursor walks in order
#else
    const bool strided = false;
#endif
    const int tiles = (total + KW - 1) / KW;
    const int nt = !strided ? (w1 - w0 + KW - 1) / KW : warp < tiles ? (tiles - warp + C::WARPS - 1) / C::WARPS : 0;
    // the visit index of this warp's t-th tile and its key count
    auto tileAt = [&](int t) { return strided ? (warp + t * C::WARPS) * KW : w0 + t * KW; };
    auto tileCount = [&](int t) { return min(KW, (strided ? total : w1) - tileAt(t)); };
    SpanCursor cur{I[DI_SPAN], I[DI_SPAN_OFF]};
    if (S.sparse == 1) decAdvance(meta + S.oSpanStarts, meta + S.oSpanEnds, cur, w0);
    unsigned char* ring = area + (size_t)warp * (STAGES * C::STAGE + C::WIDE);
    T* wide = reinterpret_cast<T*>(ring + STAGES * C::STAGE);  // e4m3: this warp's widened tile

    if constexpr (C::KV_SPLIT) {
    // both stages' K and V queued as four groups: K0 V0 K1 V1
#pragma unroll
    for (int s = 0; s < 2; s++) {
        if (s < nt)
            decMmaIssue<T, D, C, 1>(ring + s * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(s),
                                    tileCount(s), cur, lane);
        cpAsyncCommit();
        __syncwarp();
        if (s < nt)
            decMmaIssue<T, D, C, 2>(ring + s * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(s),
                                    tileCount(s), cur, lane);
        cpAsyncCommit();
    }
    } else {
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < nt)
            decMmaIssue<T, D, C>(ring + s * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(s),
                              tileCount(s), cur, lane);
        cpAsyncCommit();
    }
    }

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float mA = -INFINITY, mB = -INFINITY, lA = 0.f, lB = 0.f;

    for (int t = 0; t < nt; t++) {
        if constexpr (C::KV_SPLIT) {
        cpAsyncWait<3>();  // K of tile t (V_t, K_t+1, V_t+1 may be in flight)
        __syncwarp();
        } else {
        const int tn = t + STAGES - 1;
        if (tn < nt)
            decMmaIssue<T, D, C>(ring + (tn % STAGES) * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(tn),
                              tileCount(tn), cur, lane);
        cpAsyncCommit();
        cpAsyncWait<STAGES - 1>();
        __syncwarp();
        }
        const unsigned char* stage = ring + (t % STAGES) * C::STAGE;
        const T* cK;
        if constexpr (C::E4M3) {
            // the previous tile's reads of the widened rows ended at the loop's last __syncwarp
            decWiden<T, D, C>(stage, wide, lane);
            __syncwarp();
            cK = wide;
        } else {
            cK = reinterpret_cast<const T*>(stage);
        }
        const T* cV = cK + KW * STR;
        const int* kp = reinterpret_cast<const int*>(stage + C::TILE_T + 16 * KW);
        const int* kb = kp + KW;

        // S = Q K^T: two partial sums per n-tile (even and odd k-steps) halve the dependent mma chain
        float s[NB][4], s2[NB][4];
#pragma unroll
        for (int n = 0; n < NB; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = s2[n][0] = s2[n][1] = s2[n][2] = s2[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int nb2 = 0; nb2 < NB / 2; nb2++) {
                uint32_t bf[4];
                ldsm4(bf, cK + (nb2 * 16 + (lane & 7) + (lane >> 4) * 8) * STR + kk * 16 + ((lane >> 3) & 1) * 8);
                if (kk & 1) {
                    mma16816<T>(s2[2 * nb2], qf[kk], bf[0], bf[1]);
                    mma16816<T>(s2[2 * nb2 + 1], qf[kk], bf[2], bf[3]);
                } else {
                    mma16816<T>(s[2 * nb2], qf[kk], bf[0], bf[1]);
                    mma16816<T>(s[2 * nb2 + 1], qf[kk], bf[2], bf[3]);
                }
            }
        }
        // score order: scale·q·k, soft-cap, mask; then the log2 domain
        float mxA = -INFINITY, mxB = -INFINITY;
#pragma unroll
        for (int n = 0; n < NB; n++) {
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int j = n * 8 + 2 * t4 + (c & 1);
                const int k = kp[j];
                const int pos = c < 2 ? posA : posB;
                float x = (s[n][c] + s2[n][c]) * scale;
                if (cap > 0.f) x = cap * tanhf(x / cap);
                const bool ok = k >= 0 && k <= pos && pos - k <= kb[j];
                x = ok ? x * SPARSA_LOG2E : -INFINITY;
                s[n][c] = x;
            }
            mxA = fmaxf(mxA, fmaxf(s[n][0], s[n][1]));
            mxB = fmaxf(mxB, fmaxf(s[n][2], s[n][3]));
        }
        mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
        mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
        mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
        mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
        if constexpr (C::KV_SPLIT) {
        // tile t's K rows, positions and bands are read: the slot takes tile t + 2's K, then V_t must have landed
        __syncwarp();
        if (t + 2 < nt)
            decMmaIssue<T, D, C, 1>(ring + (t % 2) * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(t + 2),
                                    tileCount(t + 2), cur, lane);
        cpAsyncCommit();
        cpAsyncWait<3>();
        __syncwarp();
        }
        const float nA = fmaxf(mA, mxA), nB = fmaxf(mB, mxB);
        const float uA = nA == -INFINITY ? 0.f : nA, uB = nB == -INFINITY ? 0.f : nB;
        const float alA = fastExp2(mA - uA), alB = fastExp2(mB - uB);
        mA = nA;
        mB = nB;
        float sumA = 0.f, sumB = 0.f;
#pragma unroll
        for (int n = 0; n < NB; n++) {
            s[n][0] = fastExp2(s[n][0] - uA);
            s[n][1] = fastExp2(s[n][1] - uA);
            s[n][2] = fastExp2(s[n][2] - uB);
            s[n][3] = fastExp2(s[n][3] - uB);
            sumA += s[n][0] + s[n][1];
            sumB += s[n][2] + s[n][3];
        }
        lA = lA * alA + sumA;
        lB = lB * alB + sumB;
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[i][0] *= alA; o[i][1] *= alA;
            o[i][2] *= alB; o[i][3] *= alB;
        }
        // O += P V
#pragma unroll
        for (int kk = 0; kk < KW / 16; kk++) {
            uint32_t a[4];
            a[0] = Pack<T>::two(s[2 * kk][0], s[2 * kk][1]);
            a[1] = Pack<T>::two(s[2 * kk][2], s[2 * kk][3]);
            a[2] = Pack<T>::two(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = Pack<T>::two(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int nd2 = 0; nd2 < D / 16; nd2++) {
                uint32_t bf[4];
                ldsm4t(bf, cV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * STR + nd2 * 16 + (lane >> 4) * 8);
                mma16816<T>(o[2 * nd2], a, bf[0], bf[1]);
                mma16816<T>(o[2 * nd2 + 1], a, bf[2], bf[3]);
            }
        }
        __syncwarp();
        if constexpr (C::KV_SPLIT) {
        if (t + 2 < nt)
            decMmaIssue<T, D, C, 2>(ring + (t % 2) * C::STAGE, meta, S, e, table, kBase, vBase, v0 + tileAt(t + 2),
                                    tileCount(t + 2), cur, lane);
        cpAsyncCommit();
        }
    }
    cpAsyncWait<0>();
    lA += __shfl_xor_sync(0xffffffffu, lA, 1);
    lA += __shfl_xor_sync(0xffffffffu, lA, 2);
    lB += __shfl_xor_sync(0xffffffffu, lB, 1);
    lB += __shfl_xor_sync(0xffffffffu, lB, 2);

    // the warps' states through shared memory (the ring is free once every warp is past its loop)
    __syncthreads();
    float* mO = reinterpret_cast<float*>(area);  // [WARPS][16][D], not normalized
    float* mM = mO + C::WARPS * 16 * D;          // [WARPS][16] maxima (log2 domain)
    float* mL = mM + C::WARPS * 16;              // [WARPS][16] sums
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
        *reinterpret_cast<float2*>(mO + (warp * 16 + iA) * D + i * 8 + 2 * t4) = make_float2(o[i][0], o[i][1]);
        *reinterpret_cast<float2*>(mO + (warp * 16 + iB) * D + i * 8 + 2 * t4) = make_float2(o[i][2], o[i][3]);
    }
    if (t4 == 0) {
        mM[warp * 16 + iA] = mA;
        mM[warp * 16 + iB] = mB;
        mL[warp * 16 + iA] = lA;
        mL[warp * 16 + iB] = lB;
    }
    __syncthreads();
    for (int idx = tid; idx < M * (D + 1); idx += C::THREADS) {
        const int i = idx / (D + 1), d = idx - i * (D + 1);  // d == D: the pair's LSE
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < C::WARPS; w++) mx = fmaxf(mx, mM[w * 16 + i]);
        const float u = mx == -INFINITY ? 0.f : mx;
        float l = 0.f, a = 0.f;
#pragma unroll
        for (int w = 0; w < C::WARPS; w++) {
            const float wt = fastExp2(mM[w * 16 + i] - u);
            l += wt * mL[w * 16 + i];
            if (d < D) a += wt * mO[(w * 16 + i) * D + d];
        }
        const int p = pair0 + i, hh = p / R, r = p - hh * R;
        const int h = g * G + hh;
        if (d == D) {
            // a NaN sum means a NaN or +inf score: the pair is NaN, not empty
            const float lv = l != l ? l : (l > 0.f ? (mx + log2f(l)) * SPARSA_LN2 : -INFINITY);
            if (scratch < 0) {
                if (lse) lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = lv;
            } else {
                scratchLse[scratch + i] = lv;
            }
        } else {
            float inv = l != l ? l : (l > 0.f ? 1.f / l : 0.f);
            if constexpr (C::E4M3) inv *= vScale;
            if (scratch < 0) {
                storeOut1(out, (long long)b * S.osb + (long long)h * S.osh + (long long)r * S.oss + d, (int)S.outKind,
                          a * inv);
            } else {
                scratchO[(long long)(scratch + i) * D + d] = a * inv;
            }
        }
    }
    if (scratch >= 0 && mergeCounts)
        decMergeIfLast(scratchO, scratchLse, out, lse, mergeCounts, meta, S, D, I, C::WARPS);
}

}  // namespace sparsa

#define SPARSA_DECODE_NAMED(NAME, T, D)                                                                                 \
    extern "C" __global__ void __launch_bounds__(128) NAME(                                                            \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse,               \
        int* mergeCounts, const int* meta, const sparsa::DecodeScalars s) {                                            \
        sparsa::gridDependencyWait();                                                                                  \
        sparsa::decodeKernel<T, D>(q, k, v, out, lse, scratchO, scratchLse, mergeCounts, meta, s);                     \
    }

#define SPARSA_DECODE_MMA_NAMED(NAME, T, D)                                                                             \
    extern "C" __global__ void __launch_bounds__(sparsa::DecMma<T, D>::THREADS, SPARSA_DECODE_CTAS) NAME(              \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse,               \
        int* mergeCounts, const int* meta, const sparsa::DecodeScalars s) {                                            \
        sparsa::decodeMmaKernel<T, D, sparsa::DecMma<T, D>>(q, k, v, out, lse, scratchO, scratchLse, mergeCounts, meta,  \
                                                            s);                                                        \
    }

// e4m3 caches (codes, scales by value) read by a query of QS (T, or uint8_t: e4m3 codes) on the tensor cores of T
#define SPARSA_DECODE_MMA8_NAMED(NAME, QS, T, D)                                                                        \
    extern "C" __global__ void __launch_bounds__(                                                                      \
        sparsa::DecMma<T, D, SPARSA_DECODE_WARPS, SPARSA_DECODE_STAGES, 16, uint8_t, QS>::THREADS, SPARSA_DECODE_CTAS) \
        NAME(const QS* q, const uint8_t* k, const uint8_t* v, void* out, float* lse, float* scratchO,                  \
             float* scratchLse, int* mergeCounts, const int* meta, const sparsa::DecodeScalars s,                     \
             const sparsa::DecScales sc) {                                                                              \
        sparsa::decodeMmaKernel<T, D, sparsa::DecMma<T, D, SPARSA_DECODE_WARPS, SPARSA_DECODE_STAGES, 16, uint8_t, QS>>( \
            q, k, v, out, lse, scratchO, scratchLse, mergeCounts, meta, s, &sc);                                       \
    }

// One CTA per (merge tile, pair), for calls without merge counters (the default): the weights exp(lse_c - max) / sum
// of the tile's chunks (a warp reduces them), then one thread per output column sums its chunks' partials, four loads
// in flight. The same arithmetic per column as decMergeWeights and decMergeColumn, so the two give the same bits
// (CudaDecodeGpuTest); written out here with plain loads because calling those two (with __ldcg made a template
// choice) compiles to other machine code than the one measured as the default (docs/PERFORMANCE.md).
extern "C" __global__ void __launch_bounds__(128) sparsa_decode_merge(const float* scratchO, const float* scratchLse,
                                                                      void* out, float* lse, const int* meta,
                                                                      const sparsa::DecodeScalars S, int valueDim,
                                                                      int merges) {
    using namespace sparsa;
    gridDependencyWait();
    __shared__ float sMax, sTotal;
    const int tileIdx = blockIdx.x, i = blockIdx.y;
    if (tileIdx >= merges) return;
    const int* T0 = meta + S.oMerges + (long long)tileIdx * DM_STRIDE;
    const int M = T0[DM_PAIRS];
    if (i >= M) return;
    const int chunks = T0[DM_CHUNKS], base = T0[DM_SCRATCH];
    const int tid = threadIdx.x;
    if (tid < 32) {
        float mx = -INFINITY;
        bool nan = false;
        for (int c = tid; c < chunks; c += 32) {
            const float w = scratchLse[base + c * M + i];
            nan = nan || w != w;
            mx = fmaxf(mx, w);
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        // fmaxf drops NaN: a chunk whose LSE is NaN (a NaN or +inf score) makes the pair NaN, never empty
        if (__any_sync(0xffffffffu, nan)) mx = __int_as_float(0x7fc00000);
        float total = 0.f;
        if (mx != -INFINITY)
            for (int c = tid; c < chunks; c += 32) total += expf(scratchLse[base + c * M + i] - mx);
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) total += __shfl_xor_sync(0xffffffffu, total, off);
        if (tid == 0) {
            sMax = mx;
            sTotal = total;
        }
    }
    __syncthreads();
    const float mx = sMax, total = sTotal;
    const int R = (int)S.rows, G = (int)S.group;
    const int x = T0[DM_PAIR0] + i, hh = x / R, r = x - hh * R;
    const int b = T0[DM_B], h = T0[DM_G] * G + hh;
    const long long ob = (long long)b * S.osb + (long long)h * S.osh + (long long)r * S.oss;
    for (int d = tid; d < valueDim; d += blockDim.x) {
        float a = 0.f;
        if (mx != -INFINITY) {
            float a1 = 0.f, a2 = 0.f, a3 = 0.f;
            int c = 0;
            // sixteen chunks' loads in flight before the first product (four sums, in a fixed order)
            for (; c + 16 <= chunks; c += 16) {
                float o[16], w[16];
#pragma unroll
                for (int u = 0; u < 16; u++) {
                    const long long e = base + (long long)(c + u) * M + i;
                    o[u] = scratchO[e * valueDim + d];
                    w[u] = scratchLse[e];
                }
#pragma unroll
                for (int u = 0; u < 16; u += 4) {
                    a = fmaf(expf(w[u] - mx), o[u], a);
                    a1 = fmaf(expf(w[u + 1] - mx), o[u + 1], a1);
                    a2 = fmaf(expf(w[u + 2] - mx), o[u + 2], a2);
                    a3 = fmaf(expf(w[u + 3] - mx), o[u + 3], a3);
                }
            }
            for (; c + 4 <= chunks; c += 4) {
                const long long e = base + (long long)c * M + i;
                const float o0 = scratchO[e * valueDim + d], o1 = scratchO[(e + M) * valueDim + d];
                const float o2 = scratchO[(e + 2 * M) * valueDim + d], o3 = scratchO[(e + 3 * M) * valueDim + d];
                a = fmaf(expf(scratchLse[e] - mx), o0, a);
                a1 = fmaf(expf(scratchLse[e + M] - mx), o1, a1);
                a2 = fmaf(expf(scratchLse[e + 2 * M] - mx), o2, a2);
                a3 = fmaf(expf(scratchLse[e + 3 * M] - mx), o3, a3);
            }
            for (; c < chunks; c++) {
                const long long e = base + (long long)c * M + i;
                a = fmaf(expf(scratchLse[e] - mx), scratchO[e * valueDim + d], a);
            }
            a = ((a + a1) + (a2 + a3)) / total;
        }
        storeOut1(out, ob + d, (int)S.outKind, a);
    }
    if (lse && tid == 0)
        lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = mx == -INFINITY ? -INFINITY : mx + logf(total);
}

// Copies sequence b's first L rows of a paged pool [P, Hkv, pageSize, D] into a contiguous [1, Hkv, L, D]
// tensor (chunked prefill against a paged cache): one warp per (row, head), 16-byte vectors.
extern "C" __global__ void __launch_bounds__(256) sparsa_gather_pages(const unsigned char* pages, unsigned char* dst,
                                                                      const int* table, int length, int pageShift,
                                                                      long long psb, long long psh, long long pss,
                                                                      long long dsh, long long dss, int rowBytes) {
    sparsa::gridDependencyWait();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int t = blockIdx.x * 8 + warp, g = blockIdx.y;
    if (t >= length) return;
    const int page = table[t >> pageShift], slot = t & ((1 << pageShift) - 1);
    const uint4* src = reinterpret_cast<const uint4*>(pages + page * psb + g * psh + slot * pss);
    uint4* d = reinterpret_cast<uint4*>(dst + g * dsh + t * dss);
    for (int c = lane; c < rowBytes / 16; c += 32) d[c] = src[c];
}
