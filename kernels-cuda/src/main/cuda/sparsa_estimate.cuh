// Sparsa: block selection estimated on the device, written straight into a device plan.
//
// MeanPoolBlockTopK (dev.sparsa.patterns.blocksparse) in three kernels queued on one stream before the
// attention kernel, nothing copied back:
//   sparsa_est_pool    Q or K mean-pooled over blocks of bs rows, f32;
//   sparsa_est_select  per (slice, query block): the pooled scores of the block-causal candidates,
//                      the topBlocks best (ties to the lower index, NaN never), plus the diagonal
//                      block on request, as an ascending list;
//   sparsa_est_emit    per slice: those lists as the CSR full/partial block arrays of the plan's
//                      layout (sparsa_plan.cuh), offsets by a prefix sum over the tiles.
//
// The canonical arithmetic, shared bit for bit with the Java twin (Vectors.meanPool, Vectors.dot):
// a pooled channel is 0 plus the block's rows in ascending order, one f32 add each, divided by bs
// (correctly rounded f32 division); a score is one chain of f32 fused multiply-adds over the channels
// in ascending order from 0. Explicit __fadd_rn/__fmaf_rn/__fdiv_rn: the compiler may not contract or
// reorder them. The ranking packs (score, index) as TopSelect.pack does (-0 read as +0).
//
// The three kernels have no template arguments: each is defined in full here (SPARSA_KERNEL_ONE rows of
// sparsa_kernels.def).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

namespace sparsa {

template <typename T> __device__ __forceinline__ float estLoad(const void* p, long long i);
template <> __device__ __forceinline__ float estLoad<float>(const void* p, long long i) {
    return static_cast<const float*>(p)[i];
}
template <> __device__ __forceinline__ float estLoad<__half>(const void* p, long long i) {
    return __half2float(static_cast<const __half*>(p)[i]);
}
template <> __device__ __forceinline__ float estLoad<__nv_bfloat16>(const void* p, long long i) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}

template <typename T>
__device__ __forceinline__ void estPool(const void* x, long long sb, long long sh, long long ss, int heads, int seq,
                                        int dim, int bs, int groups, int transposed, float* out) {
    int g = blockIdx.x;
    int h = blockIdx.y;
    int b = blockIdx.z;
    long long slice = (long long)b * heads + h;
    long long r0 = (long long)g * bs;
    long long r1 = min((long long)seq, r0 + bs);
    long long base = (long long)b * sb + (long long)h * sh;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float s = 0.0f;
        // unrolled for loads in flight; the adds stay one chain in row order
#pragma unroll 8
        for (long long r = r0; r < r1; r++) {
            s = __fadd_rn(s, estLoad<T>(x, base + r * ss + c));
        }
        s = __fdiv_rn(s, (float)bs);
        long long at = transposed ? (slice * dim + c) * groups + g : (slice * groups + g) * dim + c;
        out[at] = s;
    }
}

}  // namespace sparsa

// Grid (groups, heads, batch), any block size. kind: OUT_F32/OUT_F16/OUT_BF16 (the input's dtype);
// strides in elements. out: [slice][group][dim], or [slice][dim][group] when transposed.
extern "C" __global__ void __launch_bounds__(256) sparsa_est_pool(const void* x, int kind, long long sb, long long sh,
                                                                  long long ss, int heads, int seq, int dim, int bs,
                                                                  int groups, int transposed, float* out) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        estPool<__nv_bfloat16>(x, sb, sh, ss, heads, seq, dim, bs, groups, transposed, out);
    } else if (kind == OUT_F16) {
        estPool<__half>(x, sb, sh, ss, heads, seq, dim, bs, groups, transposed, out);
    } else {
        estPool<float>(x, sb, sh, ss, heads, seq, dim, bs, groups, transposed, out);
    }
}

// Grid (qBlocks, slices), 256 threads; dynamic shared memory: dim floats, then sortLen (a power of two
// >= kBlocks) 8-byte keys, then ceil(kBlocks / 32) + 1 words. qp: [slice][qBlock][dim]; kpT:
// [kvSlice][dim][kBlock]. Writes sel[(slice * qBlocks + i) * cap + r] ascending and selCount.
extern "C" __global__ void __launch_bounds__(256) sparsa_est_select(const float* qp, const float* kpT, int qHeads,
                                                                    int group, int qBlocks, int kBlocks, int dim,
                                                                    int nq, int nk, int bs, int causal, int queryOffset,
                                                                    int topBlocks, int keepDiagonal, int cap,
                                                                    int sortLen, int* sel, int* selCount) {
    extern __shared__ __align__(16) unsigned char estSmem[];
    int i = blockIdx.x;
    int slice = blockIdx.y;
    int b = slice / qHeads;
    int h = slice % qHeads;
    long long kvSlice = (long long)b * (qHeads / group) + h / group;
    float* qs = reinterpret_cast<float*>(estSmem);
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(estSmem + ((dim * 4 + 15) / 16) * 16);
    int words = (kBlocks + 31) / 32;
    unsigned* bits = reinterpret_cast<unsigned*>(keys + sortLen);
    int* prefix = reinterpret_cast<int*>(bits + words);  // words + 1 ints
    int tid = threadIdx.x;
    int nt = blockDim.x;
    for (int c = tid; c < dim; c += nt) {
        qs[c] = qp[((long long)slice * qBlocks + i) * dim + c];
    }
    for (int w = tid; w < words; w += nt) {
        bits[w] = 0u;
    }
    // Plans.lastVisibleKey of the block's last row, then the last candidate block
    long long lastRow = min((long long)nq, ((long long)i + 1) * bs) - 1;
    long long lastKey = causal ? min((long long)nk - 1, lastRow + queryOffset) : (long long)nk - 1;
    int lastBlock = lastKey < 0 ? -1 : (int)min((long long)kBlocks - 1, lastKey / bs);
    int cand = lastBlock + 1;
    int len = 1;
    while (len < cand) len <<= 1;
    __syncthreads();
    const float* kcol = kpT + kvSlice * dim * kBlocks;
    for (int j = tid; j < len; j += nt) {
        unsigned long long key = 0ull;  // NaN and padding: below every score
        if (j < cand) {
            float s = 0.0f;
            for (int c = 0; c < dim; c++) {
                s = __fmaf_rn(qs[c], kcol[(long long)c * kBlocks + j], s);
            }
            if (s == s) {
                float v = s == 0.0f ? 0.0f : s;
                int bitsV = __float_as_int(v);
                bitsV ^= (bitsV >> 31) & 0x7FFFFFFF;
                unsigned hi = (unsigned)bitsV ^ 0x80000000u;
                key = ((unsigned long long)hi << 32) | (unsigned)(0x7FFFFFFF - j);
            }
        }
        keys[j] = key;
    }
    __syncthreads();
    if (cand > topBlocks) {
        // bitonic sort, descending: the best first
        for (int k = 2; k <= len; k <<= 1) {
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int a = tid; a < len; a += nt) {
                    int p = a ^ j;
                    if (p > a) {
                        unsigned long long x = keys[a];
                        unsigned long long y = keys[p];
                        bool desc = (a & k) == 0;
                        if (desc ? x < y : x > y) {
                            keys[a] = y;
                            keys[p] = x;
                        }
                    }
                }
                __syncthreads();
            }
        }
        for (int r = tid; r < topBlocks; r += nt) {
            unsigned long long key = keys[r];
            if (key != 0ull) {
                int j = 0x7FFFFFFF - (int)(unsigned)(key & 0xFFFFFFFFull);
                atomicOr(&bits[j >> 5], 1u << (j & 31));
            }
        }
    } else {
        for (int j = tid; j < cand; j += nt) {
            if (keys[j] != 0ull) {
                atomicOr(&bits[j >> 5], 1u << (j & 31));
            }
        }
    }
    __syncthreads();
    if (tid == 0) {
        if (keepDiagonal && lastBlock >= 0) {
            bits[lastBlock >> 5] |= 1u << (lastBlock & 31);
        }
        int run = 0;
        for (int w = 0; w < words; w++) {
            prefix[w] = run;
            run += __popc(bits[w]);
        }
        prefix[words] = run;
        selCount[(long long)slice * qBlocks + i] = run;
    }
    __syncthreads();
    int* out = sel + ((long long)slice * qBlocks + i) * cap;
    for (int w = tid; w < words; w += nt) {
        unsigned m = bits[w];
        int at = prefix[w];
        while (m) {
            int bit = __ffs(m) - 1;
            out[at++] = w * 32 + bit;
            m &= m - 1;
        }
    }
}

namespace sparsa {

// The full and partial kernel blocks of tile t of a slice, from its query block's selection: each
// selected user block is blocks j*m .. j*m + m - 1 of cols keys, cut at the tile's last visible key and
// classified as ElementPredicate.classify does for the causal (or no) predicate. With write set, stores
// them at full[] / part[]; returns the counts.
__device__ __forceinline__ int2 estTileBlocks(const int* list, int count, int t, int tileRows, int cols, int m, int nq,
                                              int nk, int causal, int queryOffset, int* full, int* part) {
    long long start = (long long)t * tileRows;
    long long rows = min((long long)tileRows, (long long)nq - start);
    long long qLo = start + queryOffset;
    long long qHi = start + rows - 1 + queryOffset;
    long long lastKey = causal ? min((long long)nk - 1, qHi) : (long long)nk - 1;
    int nf = 0;
    int np = 0;
    for (int r = 0; r < count; r++) {
        int j = list[r];
        for (int kb = j * m; kb < j * m + m; kb++) {
            long long k0 = (long long)kb * cols;
            if (k0 >= nk || k0 > lastKey) break;
            long long kHi = min((long long)nk, k0 + cols) - 1;
            bool isFull = !causal || qLo - kHi >= 0;
            if (isFull) {
                if (full) full[nf] = kb;
                nf++;
            } else if (qHi - k0 >= 0) {
                if (part) part[np] = kb;
                np++;
            }
        }
    }
    return make_int2(nf, np);
}

}  // namespace sparsa

// Grid (slices), 512 threads. Slice s's arrays start at ints[base + s * sliceStride]: full offsets
// (tiles + 1), partial offsets (tiles + 1), full blocks (tiles * capFull), partial blocks (one per tile).
// Tile t covers rows [t * tileRows, ...) of query block t / (bs / tileRows).
extern "C" __global__ void __launch_bounds__(512) sparsa_est_emit(const int* sel, const int* selCount, int cap,
                                                                  int qBlocks, int tiles, int tileRows, int cols, int m,
                                                                  int tilesPerBlock, int nq, int nk, int causal,
                                                                  int queryOffset, int* ints, long long base,
                                                                  long long sliceStride, int capFull) {
    using namespace sparsa;
    __shared__ int sumF[512];
    __shared__ int sumP[512];
    int s = blockIdx.x;
    int tid = threadIdx.x;
    int nt = blockDim.x;
    int per = (tiles + nt - 1) / nt;
    int t0 = min(tiles, tid * per);
    int t1 = min(tiles, t0 + per);
    int* fullOff = ints + base + (long long)s * sliceStride;
    int* partOff = fullOff + tiles + 1;
    int* fullBlk = partOff + tiles + 1;
    const int* selS = sel + (long long)s * qBlocks * cap;
    const int* cntS = selCount + (long long)s * qBlocks;
    int nf = 0;
    int np = 0;
    for (int t = t0; t < t1; t++) {
        int i = t / tilesPerBlock;
        int2 c = estTileBlocks(selS + (long long)i * cap, cntS[i], t, tileRows, cols, m, nq, nk, causal, queryOffset,
                               nullptr, nullptr);
        nf += c.x;
        np += c.y;
    }
    sumF[tid] = nf;
    sumP[tid] = np;
    __syncthreads();
    // inclusive scan (Hillis-Steele) over the threads' sums
    for (int d = 1; d < nt; d <<= 1) {
        int f = tid >= d ? sumF[tid - d] : 0;
        int p = tid >= d ? sumP[tid - d] : 0;
        __syncthreads();
        sumF[tid] += f;
        sumP[tid] += p;
        __syncthreads();
    }
    int* partBlk = fullBlk + (long long)tiles * capFull;
    int atF = sumF[tid] - nf;
    int atP = sumP[tid] - np;
    if (tid == 0) {
        fullOff[0] = 0;
        partOff[0] = 0;
    }
    for (int t = t0; t < t1; t++) {
        int i = t / tilesPerBlock;
        int2 c = estTileBlocks(selS + (long long)i * cap, cntS[i], t, tileRows, cols, m, nq, nk, causal, queryOffset,
                               fullBlk + atF, partBlk + atP);
        atF += c.x;
        atP += c.y;
        fullOff[t + 1] = atF;
        partOff[t + 1] = atP;
    }
}
