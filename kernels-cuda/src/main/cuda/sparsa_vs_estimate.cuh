// Sparsa: MInference's vertical-slash estimator on the device, written straight into a device plan.
//
// VerticalSlashEstimator (dev.sparsa.patterns.verticalslash) in five kernels queued on one stream before
// the attention kernel, nothing copied back. Per (batch, query head) slice, with the last `last` (<= 64)
// query rows r0 .. nq - 1 scored and lastKey(r) = Plans.lastVisibleKey:
//   sparsa_vs_scores   x[row][key] = (q·k) * scale for every key a scored row may see, f32;
//   sparsa_vs_rows     per scored row: its maximum and its sum of exponentials (double), each visible
//                      score replaced by its exponential;
//   sparsa_vs_sums     per column its vertical score, per diagonal its slash score (forced ones +inf);
//   sparsa_vs_top      the best columns and diagonals (ties to the lower index, NaN never), ascending;
//   sparsa_vs_emit     per slice: the plan's full, partial and gathered lists of every tile, in
//                      VsSemantics BLOCK_EXPANDED or GRID_EXPANDED, as HeadLayoutBuilder normalises them.
//
// The canonical arithmetic, shared bit for bit with the Java twin (VerticalSlashEstimator's Javadoc,
// CanonicalExp): a dot is one chain of f32 fused multiply-adds over the channels in ascending order
// from 0; the score is the dot times the f32 scale (one f32 multiply); the row maximum ignores NaN;
// e = vsExp(x - max) (f32 subtraction); the row sum is 32 double partials (key k to partial k mod 32,
// ascending) then a warp's shuffle-down tree; a probability is the double quotient e / sum rounded once
// to f32; a vertical or slash score is 0 plus the probabilities over the scored rows in ascending
// order, one f32 add each. Explicit __fmaf_rn/__fmul_rn/__fadd_rn/__dadd_rn/__ddiv_rn/__fma_rn: the
// compiler may not contract or reorder them.
//
// The five kernels have no template arguments: each is defined in full here (SPARSA_KERNEL_ONE rows of
// sparsa_kernels.def).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

namespace sparsa {

// VerticalSlashEstimator's forced counts.
constexpr int VS_FORCED_COLUMNS = 30;
constexpr int VS_FORCED_DIAGONALS = 100;
// Scored rows at most (VerticalSlashEstimator.LAST_QUERIES), and the scores kernel's keys per CTA.
constexpr int VS_ROWS = 64;
constexpr int VS_KEYS = 128;

// CanonicalExp.exp, operation for operation: Cody-Waite reduction in double, Taylor polynomial of
// degree 11 by Horner with fma, times 2^n, rounded once to float.
__device__ __forceinline__ float vsExp(float x) {
    if (x != x) return x;
    if (x < -104.0f) return 0.0f;
    if (x > 89.0f) return __int_as_float(0x7f800000);
    double xd = (double)x;
    double n = rint(__dmul_rn(xd, 0x1.71547652b82fep0));
    double r = __fma_rn(-n, 0x1.62e42feep-1, xd);
    r = __fma_rn(-n, 0x1.a39ef35793c76p-33, r);
    double p = 0x1.ae64567f544e4p-26;
    p = __fma_rn(p, r, 0x1.27e4fb7789f5cp-22);
    p = __fma_rn(p, r, 0x1.71de3a556c734p-19);
    p = __fma_rn(p, r, 0x1.a01a01a01a01ap-16);
    p = __fma_rn(p, r, 0x1.a01a01a01a01ap-13);
    p = __fma_rn(p, r, 0x1.6c16c16c16c17p-10);
    p = __fma_rn(p, r, 0x1.1111111111111p-7);
    p = __fma_rn(p, r, 0x1.5555555555555p-5);
    p = __fma_rn(p, r, 0x1.5555555555555p-3);
    p = __fma_rn(p, r, 0x1.0p-1);
    p = __fma_rn(p, r, 0x1.0p0);
    p = __fma_rn(p, r, 0x1.0p0);
    double two = __longlong_as_double(((long long)n + 1023) << 52);
    return __double2float_rn(__dmul_rn(p, two));
}

// Plans.lastVisibleKey of query row r.
__host__ __device__ __forceinline__ long long vsLastKey(long long r, int nk, int causal, int queryOffset) {
    return causal ? min((long long)nk - 1, r + queryOffset) : (long long)nk - 1;
}

// The probability of a scored row's key from its exponential e = vsExp(x - max): the double quotient
// rounded once to f32.
__device__ __forceinline__ float vsProb(float e, double sum) {
    return __double2float_rn(__ddiv_rn((double)e, sum));
}

__device__ __forceinline__ float vsLoad(const void* p, int kind, long long i) {
    if (kind == OUT_BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    if (kind == OUT_F16) return __half2float(static_cast<const __half*>(p)[i]);
    return static_cast<const float*>(p)[i];
}

// Exclusive prefix sum over the CTA's threads (blockDim.x a multiple of 32, at most 1024); scratch holds
// 33 ints. Returns the sum before this thread; *total gets the CTA's total.
__device__ __forceinline__ int vsScan(int v, int* scratch, int* total) {
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    int nw = blockDim.x >> 5;
    int x = v;
    for (int d = 1; d < 32; d <<= 1) {
        int y = __shfl_up_sync(0xffffffffu, x, d);
        if (lane >= d) x += y;
    }
    if (lane == 31) scratch[warp] = x;
    __syncthreads();
    if (warp == 0) {
        int w = lane < nw ? scratch[lane] : 0;
        for (int d = 1; d < 32; d <<= 1) {
            int y = __shfl_up_sync(0xffffffffu, w, d);
            if (lane >= d) w += y;
        }
        if (lane < nw) scratch[lane] = w;  // inclusive over warps
        if (lane == nw - 1) scratch[32] = w;
    }
    __syncthreads();
    int before = x - v + (warp > 0 ? scratch[warp - 1] : 0);
    *total = scratch[32];
    __syncthreads();
    return before;
}

}  // namespace sparsa

// Grid (ceil(most / 128), slices), 256 threads: keys [128 bx, 128 bx + 128) of slice by against the
// scored rows. x: [slice][64][ldx], row j is query row r0 + j. most: keys 0 .. most - 1 are scored (the
// last scored row's visible keys). Strides in elements; kind: OUT_F32/OUT_F16/OUT_BF16.
extern "C" __global__ void __launch_bounds__(256) sparsa_vs_scores(const void* q, const void* k, int kind,
                                                                   long long qsb, long long qsh, long long qss,
                                                                   long long ksb, long long ksh, long long kss,
                                                                   int qHeads, int group, int r0, int last, int most,
                                                                   int dim, float scale, float* x, long long ldx) {
    using namespace sparsa;
    __shared__ __align__(16) float qs[VS_ROWS][36];  // rows 16-byte aligned for the float4 reads
    __shared__ float ks[32][VS_KEYS + 1];
    int slice = blockIdx.y;
    int b = slice / qHeads;
    int h = slice % qHeads;
    int kvh = h / group;
    int key0 = blockIdx.x * VS_KEYS;
    int tid = threadIdx.x;
    int kl = tid & (VS_KEYS - 1);
    int rg = (tid >> 7) * 32;  // this thread's rows rg .. rg + 31
    long long qBase = (long long)b * qsb + (long long)h * qsh;
    long long kBase = (long long)b * ksb + (long long)kvh * ksh;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.0f;
    for (int c0 = 0; c0 < dim; c0 += 32) {
        for (int i = tid; i < VS_ROWS * 32; i += blockDim.x) {
            int r = i >> 5;
            int c = i & 31;
            qs[r][c] = r < last && c0 + c < dim ? vsLoad(q, kind, qBase + (long long)(r0 + r) * qss + c0 + c) : 0.0f;
        }
        for (int i = tid; i < VS_KEYS * 32; i += blockDim.x) {
            int kk = i >> 5;
            int c = i & 31;
            int key = key0 + kk;
            ks[c][kk] = key < most && c0 + c < dim ? vsLoad(k, kind, kBase + (long long)key * kss + c0 + c) : 0.0f;
        }
        __syncthreads();
        int cn = min(32, dim - c0);  // no fma past the last channel: 0 * 0 + -0 would be +0
        int c = 0;
        // four channels per step: one 16-byte broadcast of each row's q, the chains still in channel order
        for (; c + 4 <= cn; c += 4) {
            float k0 = ks[c][kl];
            float k1 = ks[c + 1][kl];
            float k2 = ks[c + 2][kl];
            float k3 = ks[c + 3][kl];
#pragma unroll
            for (int i = 0; i < 32; i++) {
                float4 qv = *reinterpret_cast<const float4*>(&qs[rg + i][c]);
                acc[i] = __fmaf_rn(qv.x, k0, acc[i]);
                acc[i] = __fmaf_rn(qv.y, k1, acc[i]);
                acc[i] = __fmaf_rn(qv.z, k2, acc[i]);
                acc[i] = __fmaf_rn(qv.w, k3, acc[i]);
            }
        }
        for (; c < cn; c++) {
            float kv = ks[c][kl];
#pragma unroll
            for (int i = 0; i < 32; i++) acc[i] = __fmaf_rn(qs[rg + i][c], kv, acc[i]);
        }
        __syncthreads();
    }
    int key = key0 + kl;
    if (key < most) {
#pragma unroll
        for (int i = 0; i < 32; i++) {
            if (rg + i < last) x[((long long)slice * VS_ROWS + rg + i) * ldx + key] = __fmul_rn(acc[i], scale);
        }
    }
}

// Grid (last, slices), 32 threads (one warp): scored row r0 + bx's maximum (NaN ignored) and sum of
// exponentials; each visible score is replaced by its exponential e = vsExp(x - max), which
// sparsa_vs_sums reads. rowMax, rowSum: [slice][64]; a row that sees no key gets 0 and 0.
extern "C" __global__ void __launch_bounds__(32) sparsa_vs_rows(float* x, long long ldx, int r0, int nk,
                                                                int causal, int queryOffset, float* rowMax,
                                                                double* rowSum) {
    using namespace sparsa;
    int j = blockIdx.x;
    int slice = blockIdx.y;
    int lane = threadIdx.x;
    long long lastKey = vsLastKey(r0 + j, nk, causal, queryOffset);
    long long at = (long long)slice * VS_ROWS + j;
    if (lastKey < 0) {
        if (lane == 0) {
            rowMax[at] = 0.0f;
            rowSum[at] = 0.0;
        }
        return;
    }
    float* row = x + at * ldx;
    float m = __int_as_float(0xff800000);
    for (long long key = lane; key <= lastKey; key += 32) {
        float v = row[key];
        if (v > m) m = v;
    }
    for (int d = 16; d > 0; d >>= 1) {
        float o = __shfl_xor_sync(0xffffffffu, m, d);
        if (o > m) m = o;
    }
    m = __shfl_sync(0xffffffffu, m, 0);  // one value of the maximum (+0 and -0 give the same exponentials)
    // each lane adds its keys in ascending order (the canonical partials); four keys' exponentials are
    // computed before their four adds so that their chains overlap, and each is written over its score
    double part = 0.0;
    long long key = lane;
    for (; key + 96 <= lastKey; key += 128) {
        float e0 = vsExp(__fsub_rn(row[key], m));
        float e1 = vsExp(__fsub_rn(row[key + 32], m));
        float e2 = vsExp(__fsub_rn(row[key + 64], m));
        float e3 = vsExp(__fsub_rn(row[key + 96], m));
        row[key] = e0;
        row[key + 32] = e1;
        row[key + 64] = e2;
        row[key + 96] = e3;
        part = __dadd_rn(part, (double)e0);
        part = __dadd_rn(part, (double)e1);
        part = __dadd_rn(part, (double)e2);
        part = __dadd_rn(part, (double)e3);
    }
    for (; key <= lastKey; key += 32) {
        float e = vsExp(__fsub_rn(row[key], m));
        row[key] = e;
        part = __dadd_rn(part, (double)e);
    }
    for (int d = 16; d > 0; d >>= 1) {
        part = __dadd_rn(part, __shfl_down_sync(0xffffffffu, part, d));
    }
    if (lane == 0) {
        rowMax[at] = m;
        rowSum[at] = part;
    }
}

// Grid (ceil(max(most, nDiag) / 256), slices), 256 threads, after sparsa_vs_rows (x holds the
// exponentials). Thread i: the vertical score of column i
// (i < most) and the slash score of diagonal oMin + i (i < nDiag), forced ones +inf. vert: [slice][ldx],
// slash: [slice][lds].
extern "C" __global__ void __launch_bounds__(256) sparsa_vs_sums(const float* x, long long ldx,
                                                                 const double* rowSum, int r0, int last, int most,
                                                                 int nDiag, long long oMin, int nk, int causal,
                                                                 int queryOffset, float* vert, float* slash,
                                                                 long long lds) {
    using namespace sparsa;
    int slice = blockIdx.y;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const float* xs = x + (long long)slice * VS_ROWS * ldx;
    const double* ss = rowSum + (long long)slice * VS_ROWS;
    if (i < most) {
        float v = 0.0f;
        for (int j = 0; j < last; j++) {
            if (i <= vsLastKey(r0 + j, nk, causal, queryOffset)) {
                v = __fadd_rn(v, vsProb(xs[(long long)j * ldx + i], ss[j]));
            }
        }
        if (i < VS_FORCED_COLUMNS) v = __int_as_float(0x7f800000);
        vert[(long long)slice * ldx + i] = v;
    }
    if (i < nDiag) {
        long long o = oMin + i;
        float s = 0.0f;
        for (int j = 0; j < last; j++) {
            long long key = (long long)r0 + j + queryOffset - o;
            if (key >= 0 && key <= vsLastKey(r0 + j, nk, causal, queryOffset)) {
                s = __fadd_rn(s, vsProb(xs[(long long)j * ldx + key], ss[j]));
            }
        }
        if (o >= 0 && o < VS_FORCED_DIAGONALS) s = __int_as_float(0x7f800000);
        slash[(long long)slice * lds + i] = s;
    }
}

namespace sparsa {

// TopSelect's ranking key of a score: order-preserving bits (-0 read as +0), 0 for NaN or a candidate
// not admitted (below every score).
__device__ __forceinline__ unsigned vsRank(float s, bool admitted) {
    if (!admitted || s != s) return 0u;
    float v = s == 0.0f ? 0.0f : s;
    int bits = __float_as_int(v);
    bits ^= (bits >> 31) & 0x7FFFFFFF;
    return (unsigned)bits ^ 0x80000000u;
}

}  // namespace sparsa

// Grid (2, slices), 1024 threads. bx 0: the best min(most, vBudget) of columns 0 .. most - 1 into
// cols[slice][capV]; bx 1: the best sBudget of diagonals oMin .. oMin + nDiag - 1 (offsets >= 0 only
// when causal; none when most is 0) into diags[slice][capS]. Ascending; counts into counts[slice][2].
extern "C" __global__ void __launch_bounds__(1024) sparsa_vs_top(const float* vert, long long ldx, const float* slash,
                                                                 long long lds, int most, int nDiag, long long oMin,
                                                                 int causal, int vBudget, int sBudget, int* cols,
                                                                 int capV, int* diags, int capS, int* counts) {
    using namespace sparsa;
    __shared__ int hist[256];
    __shared__ int scratch[33];
    __shared__ unsigned sel[2];  // threshold, ties to take
    int which = blockIdx.x;
    int slice = blockIdx.y;
    int tid = threadIdx.x;
    int nt = blockDim.x;
    int n = which == 0 ? most : (most > 0 ? nDiag : 0);
    int k = which == 0 ? min(most, vBudget) : sBudget;
    const float* s = which == 0 ? vert + (long long)slice * ldx : slash + (long long)slice * lds;
    int* out = which == 0 ? cols + (long long)slice * capV : diags + (long long)slice * capS;
    long long base = which == 0 ? 0 : oMin;
    bool filter = which == 1 && causal;
    // candidates
    int mine = 0;
    for (int i = tid; i < n; i += nt) {
        mine += vsRank(s[i], !filter || i + base >= 0) != 0u;
    }
    int cand;
    vsScan(mine, scratch, &cand);
    if (cand <= k) {
        if (tid == 0) {
            sel[0] = 0u;  // every candidate
            sel[1] = 0u;
        }
    } else {
        // radix select of the k-th largest key, 8 bits at a time
        unsigned prefix = 0u;
        unsigned mask = 0u;
        int remaining = k;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int i = tid; i < 256; i += nt) hist[i] = 0;
            __syncthreads();
            for (int i = tid; i < n; i += nt) {
                unsigned u = vsRank(s[i], !filter || i + base >= 0);
                if (u != 0u && (u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 255u], 1);
            }
            __syncthreads();
            if (tid == 0) {
                int cum = 0;
                int bin = 255;
                for (; bin > 0; bin--) {
                    if (cum + hist[bin] >= remaining) break;
                    cum += hist[bin];
                }
                sel[0] = (unsigned)bin;
                sel[1] = (unsigned)(remaining - cum);
            }
            __syncthreads();
            prefix |= sel[0] << shift;
            mask |= 255u << shift;
            remaining = (int)sel[1];
            __syncthreads();
        }
        if (tid == 0) {
            sel[0] = prefix;
            sel[1] = (unsigned)remaining;
        }
    }
    __syncthreads();
    unsigned thr = sel[0];
    int need = (int)sel[1];
    // contiguous chunks, so that the ties' ranks and the output follow the index
    int per = (n + nt - 1) / nt;
    int i0 = min(n, tid * per);
    int i1 = min(n, i0 + per);
    int ties = 0;
    for (int i = i0; i < i1; i++) {
        ties += vsRank(s[i], !filter || i + base >= 0) == thr && thr != 0u;
    }
    int total;
    int tieBase = vsScan(ties, scratch, &total);
    int chosen = 0;
    for (int i = i0, t = tieBase; i < i1; i++) {
        unsigned u = vsRank(s[i], !filter || i + base >= 0);
        if (u > thr) {
            chosen++;
        } else if (u == thr && thr != 0u) {
            chosen += t < need;
            t++;
        }
    }
    int at = vsScan(chosen, scratch, &total);
    for (int i = i0, t = tieBase; i < i1; i++) {
        unsigned u = vsRank(s[i], !filter || i + base >= 0);
        bool take = u > thr;
        if (u == thr && thr != 0u) {
            take = t < need;
            t++;
        }
        if (take) out[at++] = (int)(i + base);
    }
    if (tid == 0) counts[slice * 2 + which] = total;
}

namespace sparsa {

// Where a tile's lists go; null pointers count only. On the device a whole warp walks one tile (every
// lane takes the same branches on the same values) and writes a run of gathered keys or blocks 32
// entries at a time; a single key is written by lane 0. On the host (lanes 1) one thread writes all.
struct VsSink {
    int* full;
    int* part;
    int* gath;
    int nf, np, ng;
    int lane, lanes;
    __host__ __device__ __forceinline__ void gather(int key) {
        if (gath && lane == 0) gath[ng] = key;
        ng++;
    }
    // ElementPredicate.classify for the causal (or no) predicate: 0 full, 1 partial, 2 not visited
    __host__ __device__ static __forceinline__ int kind(int blk, long long qLo, long long qHi, int cols, int nk, int causal) {
        long long k0 = (long long)blk * cols;
        long long kHi = min((long long)nk, k0 + cols) - 1;
        if (!causal || qLo - kHi >= 0) return 0;
        return qHi - k0 >= 0 ? 1 : 2;
    }
    __host__ __device__ __forceinline__ void block(int blk, long long qLo, long long qHi, int cols, int nk, int causal) {
        int c = kind(blk, qLo, qHi, cols, nk, causal);
        if (c == 0) {
            if (full && lane == 0) full[nf] = blk;
            nf++;
        } else if (c == 1) {
            if (part && lane == 0) part[np] = blk;
            np++;
        }
    }
    // keys k0 .. k1 - 1 gathered, as k1 - k0 calls of gather
    __host__ __device__ __forceinline__ void gatherRun(long long k0, long long k1) {
        int n = (int)(k1 - k0);
        if (gath) {
            for (int i = lane; i < n; i += lanes) gath[ng + i] = (int)(k0 + i);
        }
        ng += n;
    }
    // blocks b0 .. b1 in turn, as calls of block: the full ones come before the partial ones (kind does
    // not fall as blk grows), so each list stays ascending
    __host__ __device__ __forceinline__ void blockRun(long long b0, long long b1, long long qLo, long long qHi, int cols,
                                                      int nk, int causal) {
#ifdef __CUDA_ARCH__
        if (lanes == 32) {
            for (long long base = b0; base <= b1; base += 32) {
                long long blk = base + lane;
                int c = blk <= b1 ? kind((int)blk, qLo, qHi, cols, nk, causal) : 2;
                unsigned fm = __ballot_sync(0xffffffffu, c == 0);
                unsigned pm = __ballot_sync(0xffffffffu, c == 1);
                unsigned below = (1u << lane) - 1u;
                if (c == 0 && full) full[nf + __popc(fm & below)] = (int)blk;
                if (c == 1 && part) part[np + __popc(pm & below)] = (int)blk;
                nf += __popc(fm);
                np += __popc(pm);
            }
            return;
        }
#endif
        for (long long blk = b0; blk <= b1; blk++) block((int)blk, qLo, qHi, cols, nk, causal);
    }
    // BlockLists.emitRange: whole blocks as blocks, the ragged ends gathered
    __host__ __device__ __forceinline__ void range(long long k0, long long k1, long long qLo, long long qHi, int cols, int nk,
                                          int causal) {
        // keys and blocks fit an int (0 <= k0 <= k1 <= nk): 32-bit division, far cheaper on the device
        int k = (int)k0;
        int end = (int)k1;
        while (k < end) {
            int blk = k / cols;
            int bStart = blk * cols;
            int bEnd = min(nk, bStart + cols);
            if (k == bStart && bEnd <= end) {
                // this block and every later one that ends by k1
                int last = end >= nk ? (nk - 1) / cols : end / cols - 1;
                blockRun(blk, last, qLo, qHi, cols, nk, causal);
                k = min((long long)nk, ((long long)last + 1) * cols);
            } else {
                int stop = min(bEnd, end);
                gatherRun(k, stop);
                k = stop;
            }
        }
    }
};

// Tile t of a slice in BLOCK_EXPANDED (mode 0, VerticalSlash.minferenceRanges) or GRID_EXPANDED (mode 1,
// VerticalSlash.gridBlocks), from ascending columns and diagonals, in the order HeadLayoutBuilder's
// normalisation leaves them (blocks and gathered keys ascending and distinct).
__host__ __device__ __forceinline__ void vsTile(VsSink& o, int mode, const int* cols, int nc, const int* diags, int nd, int t,
                                       int tileRows, int blockCols, int nq, int nk, int causal, int queryOffset) {
    long long start = (long long)t * tileRows;
    long long count = min((long long)tileRows, (long long)nq - start);
    long long qLo = start + queryOffset;
    long long qHi = qLo + count - 1;
    long long lastKey = vsLastKey(start + count - 1, nk, causal, queryOffset);
    int ci = 0;
    if (mode == 0) {
        long long end = qLo + tileRows;  // E: the tile's end as if it were full
        long long limit = min((long long)nk, lastKey + 1);
        bool have = false;
        long long cs = 0;
        long long ce = 0;
        for (int i = nd - 1; i >= 0; i--) {  // largest offset first: ranges ascending
            long long dg = diags[i];
            if (dg >= end) continue;
            long long e = max(end - dg, (long long)tileRows);
            if (!have || e > ce + tileRows) {
                if (have) {
                    for (; ci < nc && cols[ci] < cs; ci++) {
                        if (cols[ci] < limit) o.gather(cols[ci]);  // columns before the range
                    }
                    for (; ci < nc && cols[ci] < ce; ci++) {
                    }
                    o.range(max(0ll, cs), min(limit, ce), qLo, qHi, blockCols, nk, causal);
                }
                cs = e - tileRows;
                ce = e;
                have = true;
            } else if (e > ce) {
                ce += tileRows;
            }
        }
        if (have) {
            for (; ci < nc && cols[ci] < cs; ci++) {
                if (cols[ci] < limit) o.gather(cols[ci]);
            }
            o.range(max(0ll, cs), min(limit, ce), qLo, qHi, blockCols, nk, causal);
        } else {
            for (; ci < nc && cols[ci] < limit; ci++) o.gather(cols[ci]);
        }
        return;
    }
    if (lastKey < 0) return;
    // the union of the diagonals' block ranges [a, b]: with the largest offset first both ends only grow
    long long a = -1;
    long long b = -1;
    for (int i = nd - 1; i >= -1; i--) {
        long long na = -1;
        long long nb = -1;
        if (i >= 0) {
            long long dg = diags[i];
            long long k0 = max(0ll, qLo - dg);
            long long k1 = min(lastKey, qHi - dg);
            if (k0 > k1) continue;
            na = k0 / blockCols;
            nb = k1 / blockCols;
            if (a >= 0 && na <= b) {
                b = max(b, nb);
                continue;
            }
        }
        if (a >= 0) {
            // the columns before the range, then its blocks (the columns inside are left out)
            for (; ci < nc && cols[ci] <= lastKey && cols[ci] < a * blockCols; ci++) o.gather(cols[ci]);
            for (; ci < nc && cols[ci] / blockCols <= b; ci++) {
            }
            o.blockRun(a, b, qLo, qHi, blockCols, nk, causal);
        }
        a = na;
        b = nb;
    }
    for (; ci < nc && cols[ci] <= lastKey; ci++) o.gather(cols[ci]);
}

}  // namespace sparsa

// Slice s's arrays start at ints[base + s * sliceStride]: full, partial and gather offsets (tiles + 1
// each), then capFull full blocks, capPart partial blocks and the gathered keys. cols/diags:
// sparsa_vs_top's lists and counts[slice][2]. Three launches: sparsa_vs_emit with write 0 (each tile's
// three counts into its offsets' slot t + 1), sparsa_vs_offsets (the counts into offsets), then
// sparsa_vs_emit with write 1 (the lists).
//
// sparsa_vs_emit: grid (ceil(tiles / 8), slices), 256 threads, one warp per tile.
extern "C" __global__ void __launch_bounds__(256) sparsa_vs_emit(const int* cols, int capV, const int* diags, int capS,
                                                                 const int* counts, int mode, int tiles, int tileRows,
                                                                 int blockCols, int nq, int nk, int causal,
                                                                 int queryOffset, int* ints, long long base,
                                                                 long long sliceStride, long long capFull,
                                                                 long long capPart, int write) {
    using namespace sparsa;
    int s = blockIdx.y;
    int t = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= tiles) return;  // whole warps leave together
    const int* cs = cols + (long long)s * capV;
    const int* ds = diags + (long long)s * capS;
    int nc = counts[s * 2];
    int nd = counts[s * 2 + 1];
    int* fullOff = ints + base + (long long)s * sliceStride;
    int* partOff = fullOff + tiles + 1;
    int* gathOff = partOff + tiles + 1;
    if (!write) {
        VsSink c{nullptr, nullptr, nullptr, 0, 0, 0, lane, 32};
        vsTile(c, mode, cs, nc, ds, nd, t, tileRows, blockCols, nq, nk, causal, queryOffset);
        if (lane == 0) {
            fullOff[t + 1] = c.nf;
            partOff[t + 1] = c.np;
            gathOff[t + 1] = c.ng;
        }
        return;
    }
    int* fullBlk = gathOff + tiles + 1;
    int* partBlk = fullBlk + capFull;
    int* gathKey = partBlk + capPart;
    VsSink w{fullBlk + fullOff[t], partBlk + partOff[t], gathKey + gathOff[t], 0, 0, 0, lane, 32};
    vsTile(w, mode, cs, nc, ds, nd, t, tileRows, blockCols, nq, nk, causal, queryOffset);
}

// Grid (slices), 1024 threads: each of slice s's three count arrays (slots 1 .. tiles, from sparsa_vs_emit
// with write 0) into offsets, slot 0 zero.
extern "C" __global__ void __launch_bounds__(1024) sparsa_vs_offsets(int tiles, int* ints, long long base,
                                                                     long long sliceStride) {
    using namespace sparsa;
    __shared__ int scratch[33];
    int* off = ints + base + (long long)blockIdx.x * sliceStride;
    int tid = threadIdx.x;
    int nt = blockDim.x;
    for (int list = 0; list < 3; list++) {
        int* o = off + (long long)list * (tiles + 1);
        int carry = 0;
        for (int b0 = 0; b0 < tiles; b0 += nt) {
            int i = b0 + tid;
            int v = i < tiles ? o[i + 1] : 0;
            int total;
            int before = vsScan(v, scratch, &total);
            if (i < tiles) o[i + 1] = carry + before + v;
            carry += total;
        }
        if (tid == 0) o[0] = 0;
    }
}
