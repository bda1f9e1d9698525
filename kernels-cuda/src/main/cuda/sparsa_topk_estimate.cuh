// Sparsa: TopKPerQueryBlock (pooled scoring) estimated on the device, written straight into a device plan.
//
// Kernels queued on one stream before the attention kernel, nothing copied back (the scores and the ranking once
// per chunk of tile groups: the host bounds the scratch they share):
//   sparsa_tk_mean    each query tile's mean query, f32;
//   sparsa_tk_scores  per group of TQ_ROWS consecutive query tiles of one slice: the tiles' mean queries against
//                     each tile of TQ_KEYS keys loaded once into shared memory (tqScores's shape), every tile's
//                     order keys of the keys its last row may see written to a global scratch row;
//   sparsa_tk_rank    per query tile: its scratch row, the forced keys (sinks, the window every row of the tile
//                     has) set aside, the k best (ties to the lower key, NaN never) by a radix select on order
//                     keys in shared memory, as an ascending list;
//   sparsa_tk_emit_counts   per query tile (a warp each): the sizes of the four lists of the layout
//                     SharedKeySetLayout builds from its selection (blocks of the band and the sinks under the
//                     predicate, the block of a selected key the predicate does not admit written key by key,
//                     the other selected keys unconditional), into the slots of the plan's offset arrays;
//   sparsa_tk_emit_offsets  per slice: the counts turned into offsets in place, by a prefix sum over the tiles;
//   sparsa_tk_emit_tiles    per query tile (a warp each): its four lists at its offsets, the CSR arrays of the
//                     plan's layout (sparsa_plan.cuh). tkTileListsWarp is tkTileLists with the warp's lanes
//                     side by side (same lists, same order).
// sparsa_tk_select (per (tile, slice): the scores of the keys the tile's last row may see, each tile reading its
// keys on its own, then tkRank: the selection sparsa_tk_scores + sparsa_tk_rank make) and sparsa_tk_emit (one CTA
// per slice, a thread per run of tiles walking tkTileLists: the arrays the three emit kernels write) are the
// one-kernel forms, the definitions the split kernels follow: they are defined in bench/topk-estimate-check.cu
// (on tkSelect and tkTileLists of this header), which checks them against host references, not in the image.
//
// TopKPerQuery (exact top-k per query row) estimated the same way, three kernels, the first two once per chunk of
// row groups (the host bounds the scratch they share):
//   sparsa_tq_scores  per group of TQ_ROWS consecutive rows of one slice: the rows' own queries (read as f32)
//                     against each tile of TQ_KEYS keys loaded once into shared memory, every row's order keys
//                     written to a global scratch row;
//   sparsa_tq_rank    per row: its scratch row, its forced keys (sinks, its window) set aside, the k best by the
//                     same radix select;
//   sparsa_tq_emit    per slice: per-row lists, each query row a tile of its own whose keys (its sinks, its
//                     selection, its window, ascending) are unconditional: the offsets, by a prefix sum over the
//                     rows;
//   sparsa_tq_emit_rows  per query row (a warp each): its keys at its offset.
// The score is TopKPerQuery's (Vectors.dot): the same fma chain, the query row instead of a tile mean
// (sparsa_tk_scores runs that chain in tqScores's shape on the tile means).
//
// The canonical arithmetic, shared bit for bit with the Java twin (TopKPerQueryBlock's Javadoc): a mean
// channel is 0 plus the tile's rows in ascending order, one f32 add each, divided by the tile's row count
// (correctly rounded f32 division); a score is one chain of f32 fused multiply-adds over the channels in
// ascending order from 0. Explicit __fadd_rn/__fmaf_rn/__fdiv_rn: the compiler may not contract or reorder
// them. The ranking reads -0 as +0 (TopSelect.pack).
//
// The kernels have no template arguments: each is defined in full here (SPARSA_KERNEL_ONE rows of
// sparsa_kernels.def). Uses estLoad of sparsa_estimate.cuh.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_estimate.cuh"
#include "sparsa_plan.cuh"

namespace sparsa {

// Threads of the selection (one key each per pass) and the channels of a key loaded together.
constexpr int TK_THREADS = 512;
constexpr int TK_PIECE = 64;

// Element u of a 16-byte word of T, as f32.
template <typename T> __device__ __forceinline__ float tkElement(const uint4& w, int u);
template <> __device__ __forceinline__ float tkElement<float>(const uint4& w, int u) {
    const unsigned x = u == 0 ? w.x : u == 1 ? w.y : u == 2 ? w.z : w.w;
    return __uint_as_float(x);
}
template <> __device__ __forceinline__ float tkElement<__nv_bfloat16>(const uint4& w, int u) {
    const unsigned x = (u >> 1) == 0 ? w.x : (u >> 1) == 1 ? w.y : (u >> 1) == 2 ? w.z : w.w;
    return __uint_as_float((u & 1) == 0 ? x << 16 : x & 0xFFFF0000u);
}
template <> __device__ __forceinline__ float tkElement<__half>(const uint4& w, int u) {
    const unsigned x = (u >> 1) == 0 ? w.x : (u >> 1) == 1 ? w.y : (u >> 1) == 2 ? w.z : w.w;
    return __half2float(__ushort_as_half((unsigned short)((u & 1) == 0 ? x & 0xFFFFu : x >> 16)));
}

// Key key's score: one f32 fma chain over the channels in ascending order from 0. Rows read 16 bytes at a
// time, TK_PIECE channels in flight, when vec (rows and channels 16-byte aligned); else element by element.
template <typename T>
__device__ __forceinline__ float tkScore(const float* qs, const void* kx, long long at, int dim, bool vec) {
    float s = 0.0f;
    if (vec) {
        constexpr int VEC = 16 / (int)sizeof(T);
        const T* row = static_cast<const T*>(kx) + at;
        for (int c0 = 0; c0 < dim; c0 += TK_PIECE) {
            const int w = min(TK_PIECE, dim - c0);
            uint4 buf[TK_PIECE / VEC];
#pragma unroll
            for (int j = 0; j < TK_PIECE / VEC; j++) {
                if (j * VEC < w) buf[j] = *reinterpret_cast<const uint4*>(row + c0 + j * VEC);
            }
#pragma unroll
            for (int j = 0; j < TK_PIECE / VEC; j++) {
                if (j * VEC < w) {
#pragma unroll
                    for (int u = 0; u < VEC; u++) s = __fmaf_rn(qs[c0 + j * VEC + u], tkElement<T>(buf[j], u), s);
                }
            }
        }
    } else {
        for (int c = 0; c < dim; c++) s = __fmaf_rn(qs[c], estLoad<T>(kx, at + c), s);
    }
    return s;
}

template <typename T>
__device__ __forceinline__ void tkMean(const void* x, long long sb, long long sh, long long ss, int heads, int nq,
                                       int dim, int rows, int tiles, float* out) {
    int t = blockIdx.x;
    int h = blockIdx.y;
    int b = blockIdx.z;
    long long slice = (long long)b * heads + h;
    long long r0 = (long long)t * rows;
    long long r1 = min((long long)nq, r0 + rows);
    long long base = (long long)b * sb + (long long)h * sh;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float s = 0.0f;
#pragma unroll 8
        for (long long r = r0; r < r1; r++) {
            s = __fadd_rn(s, estLoad<T>(x, base + r * ss + c));
        }
        out[(slice * tiles + t) * dim + c] = __fdiv_rn(s, (float)(r1 - r0));
    }
}

// Whether the rows of K from kx + kbase (row stride kss, dim channels of T) can be read 16 bytes at a time: the first
// row, the stride and the channels 16-byte aligned.
template <typename T>
__device__ __forceinline__ bool tkVec(const void* kx, long long kbase, long long kss, int dim) {
    constexpr int VEC = 16 / (int)sizeof(T);
    return (reinterpret_cast<uintptr_t>(static_cast<const T*>(kx) + kbase) & 15) == 0
           && (kss * (long long)sizeof(T)) % 16 == 0 && dim % VEC == 0;
}

// The order key of a score: smaller is better; NaN (and the forced keys) 0xFFFFFFFF, above every score.
__device__ __forceinline__ unsigned tkOrder(float v) {
    if (v != v) return 0xFFFFFFFFu;
    v = v == 0.0f ? 0.0f : v;
    int bits = __float_as_int(v);
    bits ^= (bits >> 31) & 0x7FFFFFFF;
    return ~((unsigned)bits ^ 0x80000000u);
}

// Block-wide exclusive scan of two ints per thread (any block size up to 1024); a and b become the sums of
// the threads before this one.
__device__ __forceinline__ void tkScan2(int& a, int& b, int* sa, int* sb) {
    int tid = threadIdx.x;
    sa[tid] = a;
    sb[tid] = b;
    __syncthreads();
    for (int d = 1; d < blockDim.x; d <<= 1) {
        int x = tid >= d ? sa[tid - d] : 0;
        int y = tid >= d ? sb[tid - d] : 0;
        __syncthreads();
        sa[tid] += x;
        sb[tid] += y;
        __syncthreads();
    }
    a = sa[tid] - a;
    b = sb[tid] - b;
    __syncthreads();
}

// BlockClass of ElementPredicate.classify for the predicate causal ∧ band [bandLo, bandHi] ∨ sinks:
// 0 EMPTY, 1 PARTIAL, 2 FULL.
__host__ __device__ __forceinline__ int tkClassify(long long qLo, long long qHi, long long kLo, long long kHi, int causal,
                                          int bandLo, int bandHi, int sinks) {
    long long dMin = qLo - kHi;
    long long dMax = qHi - kLo;
    int causalClass = !causal ? 2 : dMin >= 0 ? 2 : dMax < 0 ? 0 : 1;
    if (causalClass == 0) return 0;
    int rest = dMax < bandLo || dMin > bandHi ? 0 : dMin >= bandLo && dMax <= bandHi ? 2 : 1;
    if (sinks > 0) {
        int s = kHi < sinks ? 2 : kLo >= sinks ? 0 : 1;
        rest = max(rest, s);  // or: FULL if either, EMPTY if both
    }
    return min(causalClass, rest);  // and: EMPTY if either, FULL if both
}

// The candidate blocks of query tile t (its rows at positions [pLo, pHi]) in tkTileLists' order: the sink blocks
// [0, nSink), then the blocks [second, bHi] (nBand of them, none below nSink) of the keys
// [max(0, pLo - window + 1), min(nk - 1, pHi)]. Candidate i is block(i); block blk is candidate cand(blk), or -1.
struct TkCandidates {
    long long pLo, pHi;
    int nSink, second, bHi, nBand;

    __host__ __device__ __forceinline__ TkCandidates(int t, int rows, int bc, int nq, int nk, int queryOffset, int sinks,
                                                     int window) {
        long long r0 = (long long)t * rows;
        long long cnt = min((long long)rows, (long long)nq - r0);
        pLo = r0 + queryOffset;
        pHi = pLo + cnt - 1;
        long long lo = max(0ll, pLo - window + 1);
        long long hi = min((long long)nk - 1, pHi);
        int bLo = hi < lo ? 1 : (int)(lo / bc);
        bHi = hi < lo ? 0 : (int)(hi / bc);
        nSink = sinks == 0 || nk == 0 ? 0 : (min(sinks, nk) - 1) / bc + 1;
        second = max(nSink, bLo);
        nBand = bHi >= second ? bHi - second + 1 : 0;
    }
    __host__ __device__ __forceinline__ int block(int i) const { return i < nSink ? i : second + (i - nSink); }
    __host__ __device__ __forceinline__ int cand(int blk) const {
        if (blk < nSink) return blk;
        if (blk >= second && blk <= bHi) return nSink + blk - second;
        return -1;
    }
};

// The layout of tile t of a slice from its selection (ascending keys[0, n)), as SharedKeySetLayout.build
// writes it for window w >= the tile's rows: full and partial blocks (the predicate's non-empty sink and
// band blocks without a selected key the predicate misses), gathered keys (such blocks key by key), the
// other selected keys unconditional. With the pointers set, stores the lists ascending; returns the counts
// (full, partial, gathered, unconditional).
__host__ __device__ int4 tkTileLists(const int* keys, int n, int t, int rows, int bc, int nq, int nk, int queryOffset,
                            int causal, int bandLo, int bandHi, int sinks, int window, int* full, int* part,
                            int* gath, int* unc) {
    // the candidate blocks, at most 64 (the host checks); bit i of the masks is candidate i
    const TkCandidates cs(t, rows, bc, nq, nk, queryOffset, sinks, window);
    const long long pLo = cs.pLo, pHi = cs.pHi;
    const int nc = cs.nSink + cs.nBand;
    unsigned long long vis = 0ull, edge = 0ull, isFull = 0ull;
    for (int i = 0; i < nc; i++) {
        int blk = cs.block(i);
        long long k0 = (long long)blk * bc;
        long long k1 = min((long long)nk, k0 + bc) - 1;
        int c = tkClassify(pLo, pHi, k0, k1, causal, bandLo, bandHi, sinks);
        if (c != 0) vis |= 1ull << i;
        if (c == 2) isFull |= 1ull << i;
    }
    for (int r = 0; r < n; r++) {
        int key = keys[r];
        int i = cs.cand(key / bc);
        if (i >= 0 && (vis >> i & 1ull) && key >= sinks && (key <= pHi - window || (!causal && key > pLo))) {
            edge |= 1ull << i;
        }
    }
    int nf = 0, np = 0, ng = 0, nu = 0;
    for (int i = 0; i < nc; i++) {
        if ((vis >> i & 1ull) && !(edge >> i & 1ull)) {
            int blk = cs.block(i);
            if (isFull >> i & 1ull) {
                if (full) full[nf] = blk;
                nf++;
            } else {
                if (part) part[np] = blk;
                np++;
            }
        }
    }
    // gathered keys: the edge blocks key by key, ascending
    int sel = 0;
    for (int i = 0; i < nc; i++) {
        if (!(edge >> i & 1ull)) continue;
        int blk = cs.block(i);
        int k0 = blk * bc;
        int k1 = min(nk, k0 + bc);
        while (sel < n && keys[sel] < k0) sel++;
        for (int key = k0; key < k1; key++) {
            bool selected = sel < n && keys[sel] == key;
            if (selected) sel++;
            bool g;
            if (key < sinks) {
                g = true;
            } else if (selected) {
                g = causal && key > pLo;  // else unconditional (below)
            } else {
                g = key <= pHi && (long long)key + window - 1 >= pLo;
            }
            if (g) {
                if (gath) gath[ng] = key;
                ng++;
            }
        }
    }
    // unconditional keys: the selected ones outside the non-edge visited blocks, but the edge blocks' gathered
    for (int r = 0; r < n; r++) {
        int key = keys[r];
        int i = cs.cand(key / bc);
        bool inVisited = i >= 0 && (vis >> i & 1ull);
        bool u = !inVisited || ((edge >> i & 1ull) && !(causal && key > pLo));
        if (u) {
            if (unc) unc[nu] = key;
            nu++;
        }
    }
    return make_int4(nf, np, ng, nu);
}

}  // namespace sparsa

// Grid (tiles, heads, batch), any block size. kind: OUT_F32/OUT_F16/OUT_BF16 (Q's dtype); strides in
// elements. out: [slice][tile][dim].
extern "C" __global__ void __launch_bounds__(256) sparsa_tk_mean(const void* q, int kind, long long sb, long long sh,
                                                                 long long ss, int heads, int nq, int dim, int rows,
                                                                 int tiles, float* out) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        tkMean<__nv_bfloat16>(q, sb, sh, ss, heads, nq, dim, rows, tiles, out);
    } else if (kind == OUT_F16) {
        tkMean<__half>(q, sb, sh, ss, heads, nq, dim, rows, tiles, out);
    } else {
        tkMean<float>(q, sb, sh, ss, heads, nq, dim, rows, tiles, out);
    }
}

namespace sparsa {

__device__ __forceinline__ void tkRankOrders(const unsigned* order, int n, int k, int* out, int* count);

// The k best of keys [0, n) for the query qs (f32 in shared memory, synchronised): their scores, the keys
// forced for every row of positions [pLo, pHi] (sinks, and [pHi - window + 1, pLo]) set aside, a radix select
// of the k-th order key, then the kept keys ascending into out[0, count) and the count into *count. order:
// shared memory for n order keys. Every thread of the block calls it (it synchronises).
template <typename T>
__device__ __forceinline__ void tkRank(const float* qs, const void* kx, long long kbase, long long kss, int dim, int n,
                                       long long pLo, long long pHi, int sinks, int window, int k, unsigned* order,
                                       int* out, int* count) {
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const bool vec = tkVec<T>(kx, kbase, kss, dim);
    // the forced keys of every row: sinks, and [pHi - window + 1, pLo]
    const long long fLo = max(0ll, pHi - window + 1);
    const long long fHi = min((long long)n - 1, pLo);
    for (int key = tid; key < n; key += nt) {
        bool forced = key < sinks || (key >= fLo && key <= fHi);
        order[key] = forced ? 0xFFFFFFFFu : tkOrder(tkScore<T>(qs, kx, kbase + (long long)key * kss, dim, vec));
    }
    __syncthreads();
    tkRankOrders(order, n, k, out, count);
}

// The k best of keys [0, n) by their order keys order[0, n) (shared memory, synchronised; the forced keys
// 0xFFFFFFFF): a radix select of the k-th order key, then the kept keys ascending into out[0, count) and the
// count into *count. Every thread of the block calls it (it synchronises).
__device__ __forceinline__ void tkRankOrders(const unsigned* order, int n, int k, int* out, int* count) {
    __shared__ unsigned hist[256];
    __shared__ unsigned sPrefix;
    __shared__ int sK;
    __shared__ int scanA[TK_THREADS], scanB[TK_THREADS];
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    // the threshold thr: keys below it all kept, kEq with key thr (the lowest first); thr = 0xFFFFFFFF, kEq = 0
    // when at most k candidates rank (then every ranked one is kept)
    __shared__ unsigned sHi;
    __shared__ int wCount[TK_THREADS / 32];
    __shared__ unsigned wLo[TK_THREADS / 32], wHi[TK_THREADS / 32];
    const int lane = tid & 31, warp = tid >> 5, warps = nt >> 5;
    // the ranked keys' count, smallest and largest order key
    int valid = 0;
    unsigned oLo = 0xFFFFFFFFu, oHi = 0u;
    for (int i = tid; i < n; i += nt) {
        const unsigned u = order[i];
        if (u != 0xFFFFFFFFu) {
            valid++;
            oLo = min(oLo, u);
            oHi = max(oHi, u);
        }
    }
    valid = __reduce_add_sync(0xFFFFFFFFu, valid);
    oLo = __reduce_min_sync(0xFFFFFFFFu, oLo);
    oHi = __reduce_max_sync(0xFFFFFFFFu, oHi);
    if (lane == 0) {
        wCount[warp] = valid;
        wLo[warp] = oLo;
        wHi[warp] = oHi;
    }
    __syncthreads();
    if (warp == 0) {
        const int c = __reduce_add_sync(0xFFFFFFFFu, lane < warps ? wCount[lane] : 0);
        const unsigned l = __reduce_min_sync(0xFFFFFFFFu, lane < warps ? wLo[lane] : 0xFFFFFFFFu);
        const unsigned h = __reduce_max_sync(0xFFFFFFFFu, lane < warps ? wHi[lane] : 0u);
        if (lane == 0) {
            sK = c;
            sPrefix = l;
            sHi = h;
        }
    }
    __syncthreads();
    const int ranked = sK;
    oLo = sPrefix;
    oHi = sHi;
    __syncthreads();
    unsigned thr = 0xFFFFFFFFu;
    int kEq = 0;
    if (ranked > k) {
        // radix select of the k-th smallest order key. The ranked keys share their bits above the highest bit
        // where the smallest and the largest differ (a tile's scores lie close together), so the digits start
        // there, up to 8 bits each (fixed digits from bit 31 spent their first passes on one or two bins).
        // Forced keys (0xFFFFFFFF) that share those bits sort after every ranked key, so the k-th is ranked.
        const int top = oLo == oHi ? 0 : 32 - __clz(oLo ^ oHi);
        unsigned mask = top == 32 ? 0u : ~((1u << top) - 1u);
        unsigned prefix = oLo & mask;
        int want = k;
        for (int rest = top; rest > 0;) {
            const int wbits = rest < 8 ? rest : 8;
            const int shift = rest - wbits;
            const unsigned bins = 1u << wbits;
            for (int i = tid; i < 256; i += nt) hist[i] = 0u;
            __syncthreads();
            // the lanes of a warp that fall in one bin add once
            for (int base = tid - lane; base < n; base += nt) {
                const int i = base + lane;
                const unsigned u = i < n ? order[i] : 0u;
                const unsigned bin = i < n && (u & mask) == prefix ? (u >> shift) & (bins - 1u) : 256u;
                const unsigned peers = __match_any_sync(0xFFFFFFFFu, bin);
                if (bin < 256u && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
            }
            __syncthreads();
            if (warp == 0) {
                // lane l holds bins 8l .. 8l+7; the first bin where the running count reaches want
                unsigned c[8], sum = 0u;
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    c[j] = hist[lane * 8 + j];
                    sum += c[j];
                }
                unsigned incl = sum;
#pragma unroll
                for (int off = 1; off < 32; off <<= 1) {
                    const unsigned t = __shfl_up_sync(0xFFFFFFFFu, incl, off);
                    if (lane >= off) incl += t;
                }
                const unsigned hit = __ballot_sync(0xFFFFFFFFu, incl >= (unsigned)want);
                if (lane == __ffs(hit) - 1) {
                    unsigned run = incl - sum;
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        if (run + c[j] >= (unsigned)want) {
                            sPrefix = prefix | ((unsigned)(lane * 8 + j) << shift);
                            sK = want - (int)run;
                            break;
                        }
                        run += c[j];
                    }
                }
            }
            __syncthreads();
            prefix = sPrefix;
            want = sK;
            mask |= (bins - 1u) << shift;
            rest = shift;
            __syncthreads();
        }
        thr = prefix;
        kEq = want;
    }
    // compaction in key order: thread tid takes keys [lo, hi); a key's place is the kept keys before it
    const int per = (n + nt - 1) / nt;
    const int lo = min(n, tid * per);
    const int hi = min(n, lo + per);
    int less = 0, eq = 0;
    for (int i = lo; i < hi; i++) {
        unsigned u = order[i];
        less += u < thr;
        eq += u == thr && kEq > 0;
    }
    int exLess = less, exEq = eq;
    tkScan2(exLess, exEq, scanA, scanB);
    for (int i = lo; i < hi; i++) {
        unsigned u = order[i];
        if (u < thr) {
            out[exLess + min(exEq, kEq)] = i;
            exLess++;
        } else if (u == thr && kEq > 0) {
            if (exEq < kEq) out[exLess + exEq] = i;
            exEq++;
        }
    }
    if (tid == 0) *count = ranked > k ? k : ranked;
}

template <typename T>
__device__ __forceinline__ void tkSelect(const float* means, const void* kx, long long ksb, long long ksh,
                                         long long kss, int qHeads, int group, int tiles, int dim, int rows, int nq,
                                         int nk, int causal, int queryOffset, int sinks, int window, int k, int* sel,
                                         int* selCount) {
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const int t = blockIdx.x;
    const int slice = blockIdx.y;
    const int b = slice / qHeads;
    const int h = slice % qHeads;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    float* qs = reinterpret_cast<float*>(tkSmem);
    unsigned* order = reinterpret_cast<unsigned*>(qs + ((dim + 3) / 4) * 4);
    // Plans.lastVisibleKey of the tile's last row: the candidates are [0, n)
    long long r0 = (long long)t * rows;
    long long r1 = min((long long)nq, r0 + rows);
    long long lastKey = causal ? min((long long)nk - 1, r1 - 1 + queryOffset) : (long long)nk - 1;
    const int n = lastKey < 0 ? 0 : (int)(lastKey + 1);
    int* out = sel + ((long long)slice * tiles + t) * k;
    if (n == 0 || k == 0) {
        if (tid == 0) selCount[(long long)slice * tiles + t] = 0;
        return;
    }
    for (int c = tid; c < dim; c += nt) {
        qs[c] = means[((long long)slice * tiles + t) * dim + c];
    }
    __syncthreads();
    const long long kbase = (long long)b * ksb + (long long)(h / group) * ksh;
    tkRank<T>(qs, kx, kbase, kss, dim, n, r0 + queryOffset, r1 - 1 + queryOffset, sinks, window, k, order, out,
              selCount + (long long)slice * tiles + t);
}

// TopKPerQuery, scores: TQ_ROWS consecutive query rows of one slice (a row group) against the keys the last
// of them may see, TQ_KEYS keys at a time loaded once into shared memory as f32. Thread t scores keys t % TQ_COLS
// and t % TQ_COLS + TQ_COLS of the tile for the TQ_ROWS / 2 rows of half t / TQ_COLS, each pair one fma chain over
// the channels in ascending order from 0 (tkScore's arithmetic, the row read as f32 exactly), and writes the order keys of the keys each
// row may see (Plans.lastVisibleKey) into its scratch row.
constexpr int TQ_ROWS = 16;
constexpr int TQ_KEYS = 128;
constexpr int TQ_THREADS = 128;
constexpr int TQ_COLS = TQ_THREADS / 2;
constexpr int TQ_HALF = TQ_ROWS / 2;

// Steps sparsa_tq_scores and sparsa_li_scores (sparsa_indexer_estimate.cuh) share. A CTA of TQ_THREADS threads scores
// a row group of TQ_ROWS query rows against tiles of TQ_KEYS keys: thread t takes keys t % TQ_COLS and
// t % TQ_COLS + TQ_COLS of each tile for the TQ_HALF rows of half t / TQ_COLS.

// The keys each of this thread's rows (row half * TQ_HALF + i of the group from row r0 of `rows` rows) may see:
// [0, nRow[i]), 0 for a row past the group's end.
__device__ __forceinline__ void tqRowKeys(int (&nRow)[TQ_HALF], int half, int r0, int rows, int nk, int causal,
                                          int queryOffset) {
#pragma unroll
    for (int i = 0; i < TQ_HALF; i++) {
        const int rr = half * TQ_HALF + i;
        const long long p = (long long)r0 + rr + queryOffset;
        const long long last = causal ? min((long long)nk - 1, p) : (long long)nk - 1;
        nRow[i] = rr < rows && last >= 0 ? (int)(last + 1) : 0;
    }
}

// The order keys (tkOrder) of this thread's scores of the tile from key0 (sc[i]: key key0 + col, sc2[i]: key key0 +
// col + TQ_COLS, for row i) into its rows' scratch rows (row i from outRow[i * nk]), for the keys each row may see.
__device__ __forceinline__ void tqStoreOrderKeys(unsigned* outRow, int nk, int key0, int col,
                                                 const int (&nRow)[TQ_HALF], const float (&sc)[TQ_HALF],
                                                 const float (&sc2)[TQ_HALF]) {
    const int key = key0 + col;
    const int key2 = key + TQ_COLS;
#pragma unroll
    for (int i = 0; i < TQ_HALF; i++) {
        if (key < nRow[i]) outRow[(long long)i * nk + key] = tkOrder(sc[i]);
        if (key2 < nRow[i]) outRow[(long long)i * nk + key2] = tkOrder(sc2[i]);
    }
}

// Steps sparsa_tq_scores and sparsa_tk_scores share: the key tiles from key kLo (a multiple of TQ_KEYS) up to kHi
// (at most nMax, the keys the group's last row may see), each loaded once into shared memory as f32 (kt, rows of
// stride ks) and scored against the group's TQ_ROWS query vectors (qt, [dim][TQ_ROWS]), this thread's two keys of
// each tile for its TQ_HALF rows, their order keys stored into the rows' scratch (tqStoreOrderKeys).
template <typename T>
__device__ __forceinline__ void tqScoreKeyTiles(const void* kx, long long kbase, long long kss, int dim, bool vec,
                                                int nMax, int kLo, int kHi, const float* qt, float* kt, int ks,
                                                int col, int half, const int (&nRow)[TQ_HALF], unsigned* outRow,
                                                int nk) {
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    constexpr int VEC = 16 / (int)sizeof(T);
    for (int key0 = kLo; key0 < kHi; key0 += TQ_KEYS) {
        __syncthreads();
        if (vec) {
            // two lanes per key (its 32-byte sector), consecutive keys across the warp: the lanes' stores into
            // the odd-strided rows meet at most two to a bank
            const int per = dim / VEC;
            const int per2 = (per + 1) & ~1;
            for (int i = tid; i < TQ_KEYS * per2; i += nt) {
                const int j = (i >> 1) % TQ_KEYS;
                const int piece = (i / (2 * TQ_KEYS)) * 2 + (i & 1);
                if (piece >= per) continue;
                const int c = piece * VEC;
                uint4 w = make_uint4(0u, 0u, 0u, 0u);
                if (key0 + j < nMax) {
                    w = *reinterpret_cast<const uint4*>(static_cast<const T*>(kx) + kbase + (long long)(key0 + j) * kss
                                                        + c);
                }
#pragma unroll
                for (int u = 0; u < VEC; u++) kt[j * ks + c + u] = tkElement<T>(w, u);
            }
        } else {
            for (int i = tid; i < TQ_KEYS * dim; i += nt) {
                const int j = i % TQ_KEYS;
                const int c = i / TQ_KEYS;
                kt[j * ks + c] = key0 + j < nMax ? estLoad<T>(kx, kbase + (long long)(key0 + j) * kss + c) : 0.0f;
            }
        }
        __syncthreads();
        float acc[TQ_HALF], acc2[TQ_HALF];
#pragma unroll
        for (int i = 0; i < TQ_HALF; i++) acc[i] = acc2[i] = 0.0f;
        const float* kr = kt + col * ks;
        const float* kr2 = kt + (col + TQ_COLS) * ks;
        const float* qr = qt + half * TQ_HALF;
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
        tqStoreOrderKeys(outRow, nk, key0, col, nRow, acc, acc2);
    }
}

template <typename T>
__device__ __forceinline__ void tqScores(const void* q, long long qsb, long long qsh, long long qss, const void* kx,
                                         long long ksb, long long ksh, long long kss, int qHeads, int group, int dim,
                                         int nq, int nk, int causal, int queryOffset, long long item0, int groups,
                                         unsigned* scratch) {
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const long long item = item0 + blockIdx.x;
    const int slice = (int)(item / groups);
    const int r0 = (int)(item % groups) * TQ_ROWS;
    const int b = slice / qHeads;
    const int h = slice % qHeads;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int ks = dim | 1;  // an odd stride: the lanes' keys fall in distinct banks
    float* qt = reinterpret_cast<float*>(tkSmem);  // [dim][TQ_ROWS]
    float* kt = qt + (long long)dim * TQ_ROWS;    // [TQ_KEYS][ks]
    const int rows = min(TQ_ROWS, nq - r0);
    // the keys the group's last row may see: [0, nMax)
    const long long pLast = (long long)r0 + rows - 1 + queryOffset;
    const long long lastKey = causal ? min((long long)nk - 1, pLast) : (long long)nk - 1;
    const int nMax = lastKey < 0 ? 0 : (int)(lastKey + 1);
    if (nMax == 0) return;
    const long long qbase = (long long)b * qsb + (long long)h * qsh;
    for (int i = tid; i < dim * TQ_ROWS; i += nt) {
        const int c = i / TQ_ROWS;
        const int rr = i % TQ_ROWS;
        qt[i] = rr < rows ? estLoad<T>(q, qbase + (long long)(r0 + rr) * qss + c) : 0.0f;
    }
    const long long kbase = (long long)b * ksb + (long long)(h / group) * ksh;
    const bool vec = tkVec<T>(kx, kbase, kss, dim);
    const int col = tid % TQ_COLS;
    const int half = tid / TQ_COLS;
    int nRow[TQ_HALF];
    tqRowKeys(nRow, half, r0, rows, nk, causal, queryOffset);
    unsigned* outRow = scratch + (blockIdx.x * (long long)TQ_ROWS + half * TQ_HALF) * nk;
    tqScoreKeyTiles<T>(kx, kbase, kss, dim, vec, nMax, 0, nMax, qt, kt, ks, col, half, nRow, outRow, nk);
}


// TopKPerQueryBlock, scores in the shape of tqScores: TQ_ROWS consecutive tile means of one slice (a tile group,
// f32 [slice][tile][dim]) against the keys the last of them may see, TQ_KEYS keys at a time loaded once into
// shared memory as f32; thread t scores keys t % TQ_COLS and t % TQ_COLS + TQ_COLS of the key tile for the
// TQ_HALF means of half t / TQ_COLS, each pair one fma chain over the channels in ascending order from 0 (tkScore's
// arithmetic), and writes the order keys of the keys each tile may see (those of its last row,
// Plans.lastVisibleKey) into its scratch row. The key tiles' loads and the fma chains are tqScores's
// (tqScoreKeyTiles).

// The keys each of this thread's tile means (tile t0 + half * TQ_HALF + i of a group of cnt tiles from t0) may
// see: [0, nRow[i]) (its last row's keys), 0 for a tile past the group's end.
__device__ __forceinline__ void tkRowKeys(int (&nRow)[TQ_HALF], int half, int t0, int cnt, int rows, int nq, int nk,
                                          int causal, int queryOffset) {
#pragma unroll
    for (int i = 0; i < TQ_HALF; i++) {
        const int tt = half * TQ_HALF + i;
        const long long rLast = min((long long)nq, (long long)(t0 + tt + 1) * rows) - 1;
        const long long p = rLast + queryOffset;
        const long long last = causal ? min((long long)nk - 1, p) : (long long)nk - 1;
        nRow[i] = tt < cnt && last >= 0 ? (int)(last + 1) : 0;
    }
}

template <typename T>
__device__ __forceinline__ void tkScores(const float* means, const void* kx, long long ksb, long long ksh,
                                         long long kss, int qHeads, int group, int tiles, int dim, int rows, int nq,
                                         int nk, int causal, int queryOffset, long long item0, int units,
                                         unsigned* scratch) {
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const long long item = item0 + blockIdx.x;
    const int slice = (int)(item / units);
    const int t0 = (int)(item % units) * TQ_ROWS;
    const int b = slice / qHeads;
    const int h = slice % qHeads;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int ks = dim | 1;  // an odd stride: the lanes' keys fall in distinct banks
    float* qt = reinterpret_cast<float*>(tkSmem);  // [dim][TQ_ROWS]
    float* kt = qt + (long long)dim * TQ_ROWS;    // [TQ_KEYS][ks]
    const int cnt = min(TQ_ROWS, tiles - t0);
    // the keys the group's last tile may see: [0, nMax)
    const long long pLast = min((long long)nq, (long long)(t0 + cnt) * rows) - 1 + queryOffset;
    const long long lastKey = causal ? min((long long)nk - 1, pLast) : (long long)nk - 1;
    const int nMax = lastKey < 0 ? 0 : (int)(lastKey + 1);
    if (nMax == 0) return;
    const float* mean0 = means + ((long long)slice * tiles + t0) * dim;
    for (int i = tid; i < dim * TQ_ROWS; i += nt) {
        const int c = i / TQ_ROWS;
        const int rr = i % TQ_ROWS;
        qt[i] = rr < cnt ? mean0[(long long)rr * dim + c] : 0.0f;
    }
    const long long kbase = (long long)b * ksb + (long long)(h / group) * ksh;
    const bool vec = tkVec<T>(kx, kbase, kss, dim);
    const int col = tid % TQ_COLS;
    const int half = tid / TQ_COLS;
    int nRow[TQ_HALF];
    tkRowKeys(nRow, half, t0, cnt, rows, nq, nk, causal, queryOffset);
    unsigned* outRow = scratch + (blockIdx.x * (long long)TQ_ROWS + half * TQ_HALF) * nk;
    // this CTA's keys: split blockIdx.y of gridDim.y, whole key tiles (the later groups see more keys than the
    // earlier ones; splitting every group's keys evens out the CTAs)
    const int span = ((nk + TQ_KEYS - 1) / TQ_KEYS + gridDim.y - 1) / gridDim.y * TQ_KEYS;
    const int kLo = blockIdx.y * span;
    const int kHi = min(nMax, kLo + span);
    tqScoreKeyTiles<T>(kx, kbase, kss, dim, vec, nMax, kLo, kHi, qt, kt, ks, col, half, nRow, outRow, nk);
}

}  // namespace sparsa

// Grid (row groups of this chunk), TQ_THREADS threads; dynamic shared memory: (dim * TQ_ROWS + TQ_KEYS * (dim | 1))
// floats. Row group g of the chunk is item item0 + g (slice item / groups, rows from (item % groups) * TQ_ROWS, groups
// = ceil(nq / TQ_ROWS)); its rows' order keys go to scratch[(g * TQ_ROWS + i) * nk + key] for the keys row i may see.
// Q and K by element strides, of one dtype (kind).
extern "C" __global__ void __launch_bounds__(128) sparsa_tq_scores(const void* q, long long qsb, long long qsh,
                                                                   long long qss, const void* kx, int kind,
                                                                   long long ksb, long long ksh, long long kss,
                                                                   int qHeads, int group, int dim, int nq, int nk,
                                                                   int causal, int queryOffset, long long item0,
                                                                   int groups, unsigned* scratch) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        tqScores<__nv_bfloat16>(q, qsb, qsh, qss, kx, ksb, ksh, kss, qHeads, group, dim, nq, nk, causal, queryOffset,
                                item0, groups, scratch);
    } else if (kind == OUT_F16) {
        tqScores<__half>(q, qsb, qsh, qss, kx, ksb, ksh, kss, qHeads, group, dim, nq, nk, causal, queryOffset, item0,
                         groups, scratch);
    } else {
        tqScores<float>(q, qsb, qsh, qss, kx, ksb, ksh, kss, qHeads, group, dim, nq, nk, causal, queryOffset, item0,
                        groups, scratch);
    }
}

// Grid (rows of this chunk: its row groups times TQ_ROWS), TK_THREADS threads (a multiple of 32); dynamic shared
// memory: dim floats (rounded up to 4, unused), then one order key per key a row may see (at most nk). TopKPerQuery's
// selection of each row of sparsa_tq_scores's chunk: its order keys read back from scratch, its forced keys (sinks,
// its window [p - window + 1, p]) set aside, the k best by tkRank's radix select (ties to the lower key). Writes
// sel[(slice * nq + r) * k + i] ascending and selCount[slice * nq + r].
extern "C" __global__ void __launch_bounds__(512) sparsa_tq_rank(const unsigned* scratch, int dim, int nq, int nk,
                                                                 int causal, int queryOffset, int sinks, int window,
                                                                 int k, long long item0, int groups, int* sel,
                                                                 int* selCount) {
    using namespace sparsa;
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const long long item = item0 + blockIdx.x / TQ_ROWS;
    const int slice = (int)(item / groups);
    const int r = (int)(item % groups) * TQ_ROWS + (int)(blockIdx.x % TQ_ROWS);
    if (r >= nq) return;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    unsigned* order = reinterpret_cast<unsigned*>(reinterpret_cast<float*>(tkSmem) + ((dim + 3) / 4) * 4);
    const long long p = (long long)r + queryOffset;
    const long long lastKey = causal ? min((long long)nk - 1, p) : (long long)nk - 1;
    const int n = lastKey < 0 ? 0 : (int)(lastKey + 1);
    int* out = sel + ((long long)slice * nq + r) * k;
    if (n == 0 || k == 0) {
        if (tid == 0) selCount[(long long)slice * nq + r] = 0;
        return;
    }
    const unsigned* mine = scratch + (long long)blockIdx.x * nk;
    const long long fLo = max(0ll, p - window + 1);
    const long long fHi = min((long long)n - 1, p);
    for (int key = tid; key < n; key += nt) {
        const bool forced = key < sinks || (key >= fLo && key <= fHi);
        order[key] = forced ? 0xFFFFFFFFu : mine[key];
    }
    __syncthreads();
    tkRankOrders(order, n, k, out, selCount + (long long)slice * nq + r);
}


// Grid (tile groups of this chunk, key splits), TQ_THREADS threads; dynamic shared memory: (dim * TQ_ROWS + TQ_KEYS *
// (dim | 1)) floats. Tile group g of the chunk is item item0 + g (slice item / units, tiles from (item % units) *
// TQ_ROWS, units = ceil(tiles / TQ_ROWS)); its tiles' order keys go to scratch[(g * TQ_ROWS + i) * nk + key] for the
// keys tile i may see (its last row's). Split y of gridDim.y scores keys [y * span, (y + 1) * span), span =
// ceil(ceil(nk / TQ_KEYS) / gridDim.y) * TQ_KEYS. means: [slice][tile][dim] (sparsa_tk_mean); K by element strides (kind: its
// dtype).
extern "C" __global__ void __launch_bounds__(128) sparsa_tk_scores(const float* means, const void* kx, int kind,
                                                                   long long ksb, long long ksh, long long kss,
                                                                   int qHeads, int group, int tiles, int dim, int rows,
                                                                   int nq, int nk, int causal, int queryOffset,
                                                                   long long item0, int units, unsigned* scratch) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        tkScores<__nv_bfloat16>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset,
                                item0, units, scratch);
    } else if (kind == OUT_F16) {
        tkScores<__half>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset, item0,
                         units, scratch);
    } else {
        tkScores<float>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset, item0,
                        units, scratch);
    }
}

// Grid (tiles of this chunk: its tile groups times TQ_ROWS), TK_THREADS threads (a multiple of 32); dynamic shared
// memory: dim floats (rounded up to 4, unused), then one order key per key a tile may see (at most nk).
// TopKPerQueryBlock's selection of each query tile of sparsa_tk_scores's chunk, as sparsa_tk_select makes it: the
// order keys of the keys its last row may see read back from scratch, the forced keys of every row of the tile
// (sinks, and [pHi - window + 1, pLo]) set aside, the k best by tkRankOrders (ties to the lower key). Writes
// sel[(slice * tiles + t) * k + i] ascending and selCount[slice * tiles + t].
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_rank(const unsigned* scratch, int dim, int tiles, int rows,
                                                                 int nq, int nk, int causal, int queryOffset,
                                                                 int sinks, int window, int k, long long item0,
                                                                 int units, int* sel, int* selCount) {
    using namespace sparsa;
    extern __shared__ __align__(16) unsigned char tkSmem[];
    const long long item = item0 + blockIdx.x / TQ_ROWS;
    const int slice = (int)(item / units);
    const int t = (int)(item % units) * TQ_ROWS + (int)(blockIdx.x % TQ_ROWS);
    if (t >= tiles) return;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    unsigned* order = reinterpret_cast<unsigned*>(reinterpret_cast<float*>(tkSmem) + ((dim + 3) / 4) * 4);
    const long long r0 = (long long)t * rows;
    const long long r1 = min((long long)nq, r0 + rows);
    const long long pLo = r0 + queryOffset;
    const long long pHi = r1 - 1 + queryOffset;
    const long long lastKey = causal ? min((long long)nk - 1, pHi) : (long long)nk - 1;
    const int n = lastKey < 0 ? 0 : (int)(lastKey + 1);
    const long long at = (long long)slice * tiles + t;
    if (n == 0 || k == 0) {
        if (tid == 0) selCount[at] = 0;
        return;
    }
    const unsigned* mine = scratch + (long long)blockIdx.x * nk;
    // the forced keys of every row: sinks, and [pHi - window + 1, pLo] (tkRank's)
    const long long fLo = max(0ll, pHi - window + 1);
    const long long fHi = min((long long)n - 1, pLo);
    for (int key = tid; key < n; key += nt) {
        const bool forced = key < sinks || (key >= fLo && key <= fHi);
        order[key] = forced ? 0xFFFFFFFFu : mine[key];
    }
    __syncthreads();
    tkRankOrders(order, n, k, sel + at * k, selCount + at);
}



namespace sparsa {

// Query tiles of one CTA of sparsa_tk_emit_counts and sparsa_tk_emit_tiles: one warp each.
constexpr int TK_EMIT_TILES = 16;

// The first index of ascending keys[lo, hi) holding a key >= v (hi if none).
__device__ __forceinline__ int tkLowerBound(const int* keys, int lo, int hi, int v) {
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (keys[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// tkTileLists with the lanes of one warp side by side: the same lists in the same order and the same counts.
// Every lane of the warp calls it with the same arguments (it votes); with write false it stores nothing.
// Candidates i and i + 32 are lane i's (at most 64, the host checks); the masks are votes; the full and partial
// blocks take their places by counting the listed candidates below them; the gathered keys run over each edge
// block (ascending) 32 keys at a time, a key selected when a search of the block's share of the ascending
// selection finds it; the unconditional keys run over the selection 32 at a time; a kept key's place is the
// kept keys before it (the lanes below in its vote, and the votes before).
__device__ __forceinline__ int4 tkTileListsWarp(const int* keys, int n, int t, int rows, int bc, int nq, int nk,
                                                int queryOffset, int causal, int bandLo, int bandHi, int sinks,
                                                int window, bool write, int* full, int* part, int* gath, int* unc) {
    const int lane = threadIdx.x & 31;
    const unsigned lower = (1u << lane) - 1u;  // the lanes below this one
    const TkCandidates cs(t, rows, bc, nq, nk, queryOffset, sinks, window);
    const long long pLo = cs.pLo, pHi = cs.pHi;
    const int nc = cs.nSink + cs.nBand;
    auto classOf = [&](int i) -> int {
        if (i >= nc) return 0;
        long long k0 = (long long)cs.block(i) * bc;
        long long k1 = min((long long)nk, k0 + bc) - 1;
        return tkClassify(pLo, pHi, k0, k1, causal, bandLo, bandHi, sinks);
    };
    const int c0 = classOf(lane);
    const int c1 = classOf(lane + 32);
    const unsigned long long vis = (unsigned long long)__ballot_sync(0xFFFFFFFFu, c1 != 0) << 32
                                   | __ballot_sync(0xFFFFFFFFu, c0 != 0);
    const unsigned long long isFull = (unsigned long long)__ballot_sync(0xFFFFFFFFu, c1 == 2) << 32
                                      | __ballot_sync(0xFFFFFFFFu, c0 == 2);
    unsigned long long edge = 0ull;
    for (int r = lane; r < n; r += 32) {
        int key = keys[r];
        int i = cs.cand(key / bc);
        if (i >= 0 && (vis >> i & 1ull) && key >= sinks && (key <= pHi - window || (!causal && key > pLo))) {
            edge |= 1ull << i;
        }
    }
    unsigned eLo = (unsigned)edge, eHi = (unsigned)(edge >> 32);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        eLo |= __shfl_xor_sync(0xFFFFFFFFu, eLo, o);
        eHi |= __shfl_xor_sync(0xFFFFFFFFu, eHi, o);
    }
    edge = (unsigned long long)eHi << 32 | eLo;
    const unsigned long long listed = vis & ~edge;
    const unsigned long long fullM = listed & isFull;
    const unsigned long long partM = listed & ~isFull;
    if (write) {
        for (int i = lane; i < nc; i += 32) {
            const unsigned long long bit = 1ull << i;
            if (fullM & bit) {
                full[__popcll(fullM & (bit - 1ull))] = cs.block(i);
            } else if (partM & bit) {
                part[__popcll(partM & (bit - 1ull))] = cs.block(i);
            }
        }
    }
    // gathered keys: the edge blocks key by key, ascending
    int ng = 0;
    for (unsigned long long e = edge; e != 0ull; e &= e - 1ull) {
        const int blk = cs.block(__ffsll((long long)e) - 1);
        const int k0 = blk * bc;
        const int k1 = min(nk, k0 + bc);
        const int a = tkLowerBound(keys, 0, n, k0);  // the block's selected keys: keys[a, b)
        const int b = tkLowerBound(keys, a, n, k1);
        for (int base = k0; base < k1; base += 32) {
            const int key = base + lane;
            bool g = false;
            if (key < k1) {
                const int at = tkLowerBound(keys, a, b, key);
                const bool selected = at < b && keys[at] == key;
                if (key < sinks) {
                    g = true;
                } else if (selected) {
                    g = causal && key > pLo;  // else unconditional (below)
                } else {
                    g = key <= pHi && (long long)key + window - 1 >= pLo;
                }
            }
            const unsigned m = __ballot_sync(0xFFFFFFFFu, g);
            if (write && g) gath[ng + __popc(m & lower)] = key;
            ng += __popc(m);
        }
    }
    // unconditional keys: the selected ones outside the non-edge visited blocks, but the edge blocks' gathered
    int nu = 0;
    for (int base = 0; base < n; base += 32) {
        const int r = base + lane;
        bool u = false;
        int key = 0;
        if (r < n) {
            key = keys[r];
            int i = cs.cand(key / bc);
            bool inVisited = i >= 0 && (vis >> i & 1ull);
            u = !inVisited || ((edge >> i & 1ull) && !(causal && key > pLo));
        }
        const unsigned m = __ballot_sync(0xFFFFFFFFu, u);
        if (write && u) unc[nu + __popc(m & lower)] = key;
        nu += __popc(m);
    }
    return make_int4(__popcll(fullM), __popcll(partM), ng, nu);
}

// The item of this warp when every warp of a CTA takes one item of a slice (tile or row, items per slice) and a
// slice's items fill ceil(items / warps per CTA) consecutive CTAs in order: (slice, item); the item is items or more
// for the warps past the slice's last item (sparsa_tk_emit_counts, sparsa_tk_emit_tiles, sparsa_tq_emit_rows).
__device__ __forceinline__ int2 tkWarpItem(int items) {
    const int perCta = blockDim.x >> 5;
    const int ctasPerSlice = (items + perCta - 1) / perCta;
    const int s = blockIdx.x / ctasPerSlice;
    return make_int2(s, (blockIdx.x - s * ctasPerSlice) * perCta + (threadIdx.x >> 5));
}

// Slice s's arrays of sparsa_tk_emit's layout: the four offset arrays (tiles + 1 each), then the four lists.
struct TkSliceLists {
    int* off[4];
    int* data[4];
};

__device__ __forceinline__ TkSliceLists tkSliceLists(int* ints, long long base, long long sliceStride, int s,
                                                     int tiles, int capB, int capG) {
    TkSliceLists l;
    l.off[0] = ints + base + (long long)s * sliceStride;
    l.off[1] = l.off[0] + tiles + 1;
    l.off[2] = l.off[1] + tiles + 1;
    l.off[3] = l.off[2] + tiles + 1;
    l.data[0] = l.off[3] + tiles + 1;
    l.data[1] = l.data[0] + (long long)tiles * capB;
    l.data[2] = l.data[1] + (long long)tiles * capB;
    l.data[3] = l.data[2] + (long long)tiles * capG;
    return l;
}

}  // namespace sparsa

// Grid (slices * ceil(tiles / TK_EMIT_TILES)), TK_EMIT_TILES * 32 threads: one warp per query tile. Tile t of
// slice s (CTA s * ceil(tiles / TK_EMIT_TILES) + t / TK_EMIT_TILES, warp t % TK_EMIT_TILES) counts its four
// lists (tkTileListsWarp) into its slot t + 1 of the slice's four offset arrays; sparsa_tk_emit_offsets, queued
// after it, turns the counts into offsets. Same arguments and layout as sparsa_tk_emit.
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_emit_counts(const int* sel, const int* selCount, int k,
                                                                        int tiles, int rows, int bc, int nq, int nk,
                                                                        int queryOffset, int causal, int bandLo,
                                                                        int bandHi, int sinks, int window, int capB,
                                                                        int capG, int* ints, long long base,
                                                                        long long sliceStride) {
    using namespace sparsa;
    const int2 st = tkWarpItem(tiles);
    const int s = st.x, t = st.y;
    if (t >= tiles) return;
    const TkSliceLists l = tkSliceLists(ints, base, sliceStride, s, tiles, capB, capG);
    const long long at = (long long)s * tiles + t;
    const int4 c = tkTileListsWarp(sel + at * k, selCount[at], t, rows, bc, nq, nk, queryOffset, causal, bandLo,
                                   bandHi, sinks, window, false, nullptr, nullptr, nullptr, nullptr);
    if ((threadIdx.x & 31) == 0) {
        l.off[0][t + 1] = c.x;
        l.off[1][t + 1] = c.y;
        l.off[2][t + 1] = c.z;
        l.off[3][t + 1] = c.w;
    }
}

// Grid (slices), 512 threads. Slice s's four offset arrays in place: slot 0 set to 0, slots [1, tiles] from the
// tiles' counts (sparsa_tk_emit_counts) to their prefix sums. Thread i takes a run of consecutive tiles.
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_emit_offsets(int tiles, int capB, int capG, int* ints,
                                                                         long long base, long long sliceStride) {
    using namespace sparsa;
    __shared__ int sA[512], sB[512], sC[512], sD[512];
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int per = (tiles + nt - 1) / nt;
    const int t0 = min(tiles, tid * per);
    const int t1 = min(tiles, t0 + per);
    const TkSliceLists l = tkSliceLists(ints, base, sliceStride, blockIdx.x, tiles, capB, capG);
    int4 at = make_int4(0, 0, 0, 0);
    for (int t = t0; t < t1; t++) {
        at.x += l.off[0][t + 1];
        at.y += l.off[1][t + 1];
        at.z += l.off[2][t + 1];
        at.w += l.off[3][t + 1];
    }
    tkScan2(at.x, at.y, sA, sB);
    tkScan2(at.z, at.w, sC, sD);
    if (tid == 0) {
        l.off[0][0] = 0;
        l.off[1][0] = 0;
        l.off[2][0] = 0;
        l.off[3][0] = 0;
    }
    // each thread rewrites only its own slots, after reading them
    for (int t = t0; t < t1; t++) {
        at.x += l.off[0][t + 1];
        at.y += l.off[1][t + 1];
        at.z += l.off[2][t + 1];
        at.w += l.off[3][t + 1];
        l.off[0][t + 1] = at.x;
        l.off[1][t + 1] = at.y;
        l.off[2][t + 1] = at.z;
        l.off[3][t + 1] = at.w;
    }
}

// Grid and arguments of sparsa_tk_emit_counts: tile t's warp writes its four lists (tkTileListsWarp) at its
// offsets (sparsa_tk_emit_offsets): what sparsa_tk_emit writes.
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_emit_tiles(const int* sel, const int* selCount, int k,
                                                                       int tiles, int rows, int bc, int nq, int nk,
                                                                       int queryOffset, int causal, int bandLo,
                                                                       int bandHi, int sinks, int window, int capB,
                                                                       int capG, int* ints, long long base,
                                                                       long long sliceStride) {
    using namespace sparsa;
    const int2 st = tkWarpItem(tiles);
    const int s = st.x, t = st.y;
    if (t >= tiles) return;
    const TkSliceLists l = tkSliceLists(ints, base, sliceStride, s, tiles, capB, capG);
    const long long at = (long long)s * tiles + t;
    tkTileListsWarp(sel + at * k, selCount[at], t, rows, bc, nq, nk, queryOffset, causal, bandLo, bandHi, sinks,
                    window, true, l.data[0] + l.off[0][t], l.data[1] + l.off[1][t], l.data[2] + l.off[2][t],
                    l.data[3] + l.off[3][t]);
}

namespace sparsa {

// Row r's forced keys in TopKPerQuery's per-row lists: sinks [0, nS), window [wLo, wHi] (ForcedKeys.keys under
// Plans.lastVisibleKey).
__device__ __forceinline__ void tqForced(int r, int nk, int queryOffset, int causal, int sinks, int window, int& nS,
                                         long long& wLo, long long& wHi) {
    const long long p = (long long)r + queryOffset;
    const long long last = causal ? min((long long)nk - 1, p) : (long long)nk - 1;
    nS = (int)max(0ll, min((long long)sinks, last + 1));
    wLo = max((long long)sinks, p - window + 1);
    wHi = min(last, p);
}

}  // namespace sparsa

// Grid (slices), 512 threads. Per-row lists of TopKPerQuery: query row r of slice s is tile r of its layout,
// one row whose keys are all unconditional: the sinks it may see, its selected keys and its window, ascending
// (ForcedKeys.keys ∪ the selection, the form CudaTopKQueryEstimatedPlan.hostLayout writes). Slice s's arrays
// start at ints[base + s * sliceStride]: the unconditional offsets (nq + 1), then the keys, compact. This kernel
// writes the offsets (a prefix sum over the rows' counts); sparsa_tq_emit_rows, queued after it, the keys.
extern "C" __global__ void __launch_bounds__(512) sparsa_tq_emit(const int* sel, const int* selCount, int k, int nq,
                                                                 int nk, int queryOffset, int causal, int sinks,
                                                                 int window, int* ints, long long base,
                                                                 long long sliceStride) {
    using namespace sparsa;
    __shared__ int sA[512], sB[512];
    const int s = blockIdx.x;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int per = (nq + nt - 1) / nt;
    const int r0 = min(nq, tid * per);
    const int r1 = min(nq, r0 + per);
    int* off = ints + base + (long long)s * sliceStride;
    const int* cntS = selCount + (long long)s * nq;
    int mine = 0;
    for (int r = r0; r < r1; r++) {
        int nS;
        long long wLo, wHi;
        tqForced(r, nk, queryOffset, causal, sinks, window, nS, wLo, wHi);
        mine += nS + (int)max(0ll, wHi - wLo + 1) + (k > 0 ? cntS[r] : 0);
    }
    int at = mine, dummy = 0;
    tkScan2(at, dummy, sA, sB);
    if (tid == 0) off[0] = 0;
    for (int r = r0; r < r1; r++) {
        int nS;
        long long wLo, wHi;
        tqForced(r, nk, queryOffset, causal, sinks, window, nS, wLo, wHi);
        at += nS + (int)max(0ll, wHi - wLo + 1) + (k > 0 ? cntS[r] : 0);
        off[r + 1] = at;
    }
}

// Grid (slices * ceil(nq / 16)), 512 threads: one warp per query row. Row r's keys written at its offset (written
// by sparsa_tq_emit): its sinks, its selected keys below its window, its window, its other selected keys (the
// selection is ascending and holds no forced key), each run by the warp's lanes side by side. Same arguments as
// sparsa_tq_emit.
extern "C" __global__ void __launch_bounds__(512) sparsa_tq_emit_rows(const int* sel, const int* selCount, int k,
                                                                      int nq, int nk, int queryOffset, int causal,
                                                                      int sinks, int window, int* ints,
                                                                      long long base, long long sliceStride) {
    using namespace sparsa;
    const int2 sr = tkWarpItem(nq);
    const int s = sr.x, r = sr.y;
    const int lane = threadIdx.x & 31;
    if (r >= nq) return;
    const int* off = ints + base + (long long)s * sliceStride;
    int* keys = ints + base + (long long)s * sliceStride + nq + 1 + off[r];
    const int c = k > 0 ? selCount[(long long)s * nq + r] : 0;
    const int* mySel = sel + ((long long)s * nq + r) * k;
    int nS;
    long long wLo, wHi;
    tqForced(r, nk, queryOffset, causal, sinks, window, nS, wLo, wHi);
    int below = 0;  // selected keys below the window: the first of the ascending selection
    for (int j = lane; j < c; j += 32) below += mySel[j] < wLo ? 1 : 0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) below += __shfl_xor_sync(0xffffffffu, below, o);
    for (int i = lane; i < nS; i += 32) keys[i] = i;
    keys += nS;
    for (int j = lane; j < below; j += 32) keys[j] = mySel[j];
    keys += below;
    const int nW = (int)max(0ll, wHi - wLo + 1);
    for (int i = lane; i < nW; i += 32) keys[i] = (int)(wLo + i);
    keys += nW;
    for (int j = below + lane; j < c; j += 32) keys[j - below] = mySel[j];
}
