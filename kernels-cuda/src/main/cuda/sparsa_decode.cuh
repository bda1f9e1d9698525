// Sparsa: decode against a KV cache (included by sparsa_attention.cu, after its helpers).
//
//  sparsa_decode_<f32|f16|bf16>_d<D>: one CTA per work item (sequence b, KV head g, a tile of up to 16 of the
//      group's (query head, row) pairs, a chunk of the keys in visiting order). Head packing: the group's
//      query heads and the step's rows share one read of the keys. Keys in tiles of KT (64, or 32 for rows of
//      256 bytes or more) staged through shared memory with cp.async, two stages; K/V rows are read from a contiguous
//      cache [B, Hkv, capacity, D] or from pages [P, Hkv, pageSize, D] through the block table. Scores and the
//      online softmax in f32 on CUDA cores (decode is bound by memory). A work item writes the output directly
//      when it is its pairs' only chunk, else a normalized f32 partial and its LSE to scratch.
//  sparsa_decode_merge: the chunks of each (pair tile, pair) merged in chunk order through their LSEs.
//  sparsa_quest_bounds_<t>_d<D>: Quest's page bound max_x sum_c max(q_c*min_c, q_c*max_c) for candidate pages.
//
// The metadata (ints, written by dev.sparsa.cuda.DecodeLaunch): lengths[B]; block tables [B][width] when paged;
// the span table (offsets[B*Hkv+1], starts, ends, maxDelta) when sparse; work items (DI_* fields); merge tiles
// (DM_* fields). Key k is admitted for a row at position p iff k <= p and p - k <= maxDelta of its span (dense:
// every key of [0, L) with no band).
#pragma once

namespace sparsa {

enum DecodeItem { DI_B = 0, DI_G = 1, DI_PAIR0 = 2, DI_PAIRS = 3, DI_V0 = 4, DI_V1 = 5, DI_SPAN = 6, DI_SPAN_OFF = 7,
                  DI_SCRATCH = 8, DI_STRIDE = 10 };
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
// Page lists (sparse == 2): visit index v is slot v mod P of the (v / P)-th listed page.
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
            if (j < count) k = S.sparse == 0 ? v : (list[v >> S.pageShift] << S.pageShift) + (v & mask);
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
                             float* scratchLse, const int* meta, const DecodeScalars S) {
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
            float inv = l > 0.f ? 1.f / l : 0.f;
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
        float lv = l > 0.f ? sM[tid] + logf(l) : -INFINITY;
        int x = pair0 + tid, hh = x / R, r = x - hh * R;
        int h = g * G + hh;
        if (scratch < 0) {
            if (lse) lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = lv;
        } else {
            scratchLse[scratch + tid] = lv;
        }
    }
}

}  // namespace sparsa

#define SPARSA_DECODE(TNAME, T, D)                                                                                      \
    extern "C" __global__ void __launch_bounds__(128) sparsa_decode_##TNAME##_d##D(                                    \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse, const int* meta, \
        const sparsa::DecodeScalars s) {                                                                               \
        sparsa::decodeKernel<T, D>(q, k, v, out, lse, scratchO, scratchLse, meta, s);                                  \
    }
#define SPARSA_DECODE_DIMS(TNAME, T) SPARSA_DECODE(TNAME, T, 64) SPARSA_DECODE(TNAME, T, 128) SPARSA_DECODE(TNAME, T, 256)
SPARSA_DECODE_DIMS(f32, float)
SPARSA_DECODE_DIMS(f16, __half)
SPARSA_DECODE_DIMS(bf16, __nv_bfloat16)

// One warp per (merge tile, pair): the tile's chunks in order, weights exp(lse_c - max).
extern "C" __global__ void __launch_bounds__(256) sparsa_decode_merge(const float* scratchO, const float* scratchLse,
                                                                      void* out, float* lse, const int* meta,
                                                                      const sparsa::DecodeScalars S, int valueDim,
                                                                      int merges) {
    using namespace sparsa;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tileIdx = blockIdx.x;
    if (tileIdx >= merges) return;
    const int* T0 = meta + S.oMerges + (long long)tileIdx * DM_STRIDE;
    const int M = T0[DM_PAIRS];
    const int R = (int)S.rows, G = (int)S.group;
    for (int i = warp; i < M; i += 8) {
        const int chunks = T0[DM_CHUNKS], base = T0[DM_SCRATCH];
        float mx = -INFINITY;
        for (int c = 0; c < chunks; c++) mx = fmaxf(mx, scratchLse[base + c * M + i]);
        float total = 0.f;
        if (mx != -INFINITY)
            for (int c = 0; c < chunks; c++) total += expf(scratchLse[base + c * M + i] - mx);
        int x = T0[DM_PAIR0] + i, hh = x / R, r = x - hh * R;
        int b = T0[DM_B], h = T0[DM_G] * G + hh;
        long long ob = (long long)b * S.osb + (long long)h * S.osh + (long long)r * S.oss;
        for (int d = lane; d < valueDim; d += 32) {
            float a = 0.f;
            if (mx != -INFINITY) {
                for (int c = 0; c < chunks; c++) {
                    long long e = base + c * M + i;
                    a += expf(scratchLse[e] - mx) * scratchO[e * valueDim + d];
                }
                a /= total;
            }
            storeOut1(out, ob + d, (int)S.outKind, a);
        }
        if (lse && lane == 0)
            lse[(long long)b * S.lsb + (long long)h * S.lsh + (long long)r * S.lss] = mx == -INFINITY ? -INFINITY : mx + logf(total);
    }
}

// Quest bounds: one warp per (b, g, candidate page): max over the group's query vectors of
// sum_c max(q_c * min_c, q_c * max_c) over the page's stored bounds [P, Hkv, 2, D]. Candidates are the first
// count[b] pages of b's block table; scores go to out[(b * Hkv + g) * width + i], -inf past the count.
template <typename T, int D>
__device__ void questBounds(const T* q, const T* bounds, float* scores, const int* meta, const int* counts,
                            const sparsa::DecodeScalars S, long long bsp, long long bsh, long long bss, int width) {
    using namespace sparsa;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int i = blockIdx.x * 8 + warp;
    const int b = blockIdx.y / (int)S.kvHeads, g = blockIdx.y % (int)S.kvHeads;
    if (i >= width) return;
    float best = -INFINITY;
    if (i < counts[b]) {
        const int page = meta[S.oTables + (long long)b * S.tableWidth + i];
        const T* mn = bounds + (long long)page * bsp + (long long)g * bsh;
        const T* mxp = mn + bss;
        const int R = (int)S.rows, G = (int)S.group;
        for (int x = 0; x < G * R; x++) {
            int hh = x / R, r = x - hh * R;
            const T* qr = q + (long long)b * S.qsb + (long long)(g * G + hh) * S.qsh + (long long)r * S.qss;
            float s = 0.f;
            for (int c = lane; c < D; c += 32) {
                float qc = decToFloat(qr[c]);
                s += fmaxf(qc * decToFloat(mn[c]), qc * decToFloat(mxp[c]));
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            best = fmaxf(best, s);
        }
    }
    if (lane == 0) scores[(long long)blockIdx.y * width + i] = best;
}

#define SPARSA_QUEST(TNAME, T, D)                                                                                       \
    extern "C" __global__ void __launch_bounds__(256) sparsa_quest_bounds_##TNAME##_d##D(                              \
        const T* q, const T* bounds, float* scores, const int* meta, const int* counts, const sparsa::DecodeScalars s, \
        long long bsp, long long bsh, long long bss, int width) {                                                      \
        questBounds<T, D>(q, bounds, scores, meta, counts, s, bsp, bsh, bss, width);                                   \
    }
SPARSA_QUEST(f32, float, 64) SPARSA_QUEST(f32, float, 128) SPARSA_QUEST(f32, float, 256)
SPARSA_QUEST(f16, __half, 64) SPARSA_QUEST(f16, __half, 128) SPARSA_QUEST(f16, __half, 256)
SPARSA_QUEST(bf16, __nv_bfloat16, 64) SPARSA_QUEST(bf16, __nv_bfloat16, 128) SPARSA_QUEST(bf16, __nv_bfloat16, 256)

// Quest's choice per (b, g), one CTA of 1024 threads each: with n = ceil(L / P) pages and budget m, every page
// when n <= m, else the m - 1 best of the first n - 1 pages by bound (ties to the lower page; NaN below every
// number) and the last page, as ascending page indices into lists[(b * Hkv + g) * listWidth ...]. The sort
// keys are those of DecodeSelector.best: (-score, index) ascending.
__device__ __forceinline__ unsigned long long questKey(float s, int i) {
    int ordered;
    if (s != s) {
        ordered = (int)0x80000000;
    } else {
        int bits = __float_as_int(s == 0.f ? 0.f : s);
        ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
    }
    unsigned int hi = ((unsigned int)~ordered) ^ 0x80000000u;
    return ((unsigned long long)hi << 32) | (unsigned int)i;
}

__device__ void bitonicSort(unsigned long long* a, int n) {
    for (int k = 2; k <= n; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                int l = i ^ j;
                if (l > i) {
                    bool up = (i & k) == 0;
                    unsigned long long x = a[i], y = a[l];
                    if ((x > y) == up) {
                        a[i] = y;
                        a[l] = x;
                    }
                }
            }
            __syncthreads();
        }
    }
}

extern "C" __global__ void __launch_bounds__(1024) sparsa_quest_topk(const float* scores, int width, int* meta,
                                                                     const sparsa::DecodeScalars S, int budget) {
    using namespace sparsa;
    extern __shared__ __align__(16) unsigned long long keys[];
    const int e = blockIdx.x, b = e / (int)S.kvHeads;
    const int length = meta[b];
    const int P = 1 << S.pageShift;
    const int n = (length + P - 1) / P;
    int* list = meta + S.oLists + (long long)e * S.listWidth;
    if (n <= budget) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) list[i] = i;
        return;
    }
    const int cand = n - 1;
    int N = 1;
    while (N < cand) N <<= 1;
    const float* sc = scores + (long long)e * width;
    for (int i = threadIdx.x; i < N; i += blockDim.x) keys[i] = i < cand ? questKey(sc[i], i) : ~0ULL;
    __syncthreads();
    bitonicSort(keys, N);
    const int k = budget - 1;
    int K = 1;
    while (K < k) K <<= 1;
    // the k best indices, then sorted ascending (padding sorts last)
    unsigned long long* idx = keys + N;
    for (int i = threadIdx.x; i < K; i += blockDim.x) idx[i] = i < k ? (keys[i] & 0xffffffffULL) : ~0ULL;
    __syncthreads();
    bitonicSort(idx, K);
    for (int i = threadIdx.x; i < k; i += blockDim.x) list[i] = (int)idx[i];
    if (threadIdx.x == 0) list[k] = cand;
}

// Copies sequence b's first L rows of a paged pool [P, Hkv, pageSize, D] into a contiguous [1, Hkv, L, D]
// tensor (chunked prefill against a paged cache): one warp per (row, head), 16-byte vectors.
extern "C" __global__ void __launch_bounds__(256) sparsa_gather_pages(const unsigned char* pages, unsigned char* dst,
                                                                      const int* table, int length, int pageShift,
                                                                      long long psb, long long psh, long long pss,
                                                                      long long dsh, long long dss, int rowBytes) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int t = blockIdx.x * 8 + warp, g = blockIdx.y;
    if (t >= length) return;
    const int page = table[t >> pageShift], slot = t & ((1 << pageShift) - 1);
    const uint4* src = reinterpret_cast<const uint4*>(pages + page * psb + g * psh + slot * pss);
    uint4* d = reinterpret_cast<uint4*>(dst + g * dsh + t * dss);
    for (int c = lane; c < rowBytes / 16; c += 32) d[c] = src[c];
}
