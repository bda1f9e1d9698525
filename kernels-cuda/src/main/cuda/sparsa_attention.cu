// Sparsa: FlashAttention-2-style prefill kernels over a SparsePlan.
//
//  sparsa_tc_<bf16|f16>_d<D>[v<DV>]_r<ROWS>: tensor cores (mma.sync m16n8k16, f32 accumulation); one CTA per
//      (slice, query tile) work item, ROWS/16 warps, 16 query rows per warp, keys in chunks of 64
//      staged through shared memory with cp.async (two stages, one for D = 256).
//  sparsa_f32_d<D>[v<DV>]: the exact f32 mode on CUDA cores (FMA only), 64-row sub-tiles, chunks of 32 keys.
//  sparsa_merge: merges the f32 partials of rows that several tiles hold (or none) through the LSE.
//
// Every kernel admits exactly the pairs HeadLayout.forEachAdmittedKey admits: full block slices
// unconditionally, partial block slices and gathered keys under the element predicate, unconditional
// keys without it; gathered and unconditional keys add their log-weight. Score order: scale·q·k,
// soft-cap, + log-weight, mask. Rows with no admitted key: output 0, LSE -inf.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

#define SPARSA_LOG2E 1.4426950408889634f
#define SPARSA_LN2 0.6931471805599453f

// ------------------------------------------------------------------ small device helpers

template <typename T> struct Pack;
template <> struct Pack<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t two(float a, float b) {
        __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
        return *reinterpret_cast<uint32_t*>(&v);
    }
};
template <> struct Pack<__half> {
    static __device__ __forceinline__ uint32_t two(float a, float b) {
        __half2 v = __floats2half2_rn(a, b);
        return *reinterpret_cast<uint32_t*>(&v);
    }
};

template <typename T> __device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void mma16816<__nv_bfloat16>(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma16816<__half>(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldsm4(uint32_t* r, const void* p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsm4t(uint32_t* r, const void* p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
// 16-byte async copy; with valid == false the destination is zero-filled and nothing is read.
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
    uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n));
}
// 2^x on the special-function unit (flush-to-zero; 2^-inf = 0): the tensor-core path's exponent
__device__ __forceinline__ float fastExp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void storeOut2(void* out, long long idx, int kind, float a, float b) {
    if (kind == OUT_F32) {
        *reinterpret_cast<float2*>(reinterpret_cast<float*>(out) + idx) = make_float2(a, b);
    } else if (kind == OUT_BF16) {
        *reinterpret_cast<__nv_bfloat162*>(reinterpret_cast<__nv_bfloat16*>(out) + idx) = __floats2bfloat162_rn(a, b);
    } else {
        *reinterpret_cast<__half2*>(reinterpret_cast<__half*>(out) + idx) = __floats2half2_rn(a, b);
    }
}
__device__ __forceinline__ void storeOut1(void* out, long long idx, int kind, float a) {
    if (kind == OUT_F32) {
        reinterpret_cast<float*>(out)[idx] = a;
    } else if (kind == OUT_BF16) {
        reinterpret_cast<__nv_bfloat16*>(out)[idx] = __float2bfloat16_rn(a);
    } else {
        reinterpret_cast<__half*>(out)[idx] = __float2half_rn(a);
    }
}

// ------------------------------------------------------------------ tensor-core kernel

template <typename T, int D, int DV, int ROWS>
struct TcConfig {
    static constexpr int DMAX = D > DV ? D : DV;
    static constexpr int MT = (ROWS == 128 && DMAX <= 128) ? 2 : 1;  // 16-row m-tiles per warp
    static constexpr int WARPS = ROWS / (16 * MT);
    static constexpr int THREADS = WARPS * 32;
    static constexpr int KC = 64;             // keys per chunk
    static constexpr int STR = D + 8;         // smem row stride of Q and K (elements): 16-byte pad against bank conflicts
    static constexpr int STRV = DV + 8;       // smem row stride of V
    static constexpr int STAGES = DMAX >= 256 || D + DV > 320 ? 1 : 2;
    static constexpr bool QREG = MT == 1 && D <= 128;  // Q fragments live in registers
    static constexpr size_t SMEM = sizeof(T) * (size_t)(ROWS * STR + STAGES * KC * (STR + STRV))
                                   + sizeof(int) * (STAGES * KC) + sizeof(float) * (STAGES * KC) + sizeof(int) * ROWS;
};

// Queues the cp.async copies of one chunk's K and V rows (zero rows past its count) and writes its
// key positions and log-weights to shared memory.
template <typename T, int D, int DV, int ROWS>
__device__ __forceinline__ void tcLoadChunk(T* sK, T* sV, int* sKpos, float* sLw, const Chunk& ch, const T* kBase,
                                            const T* vBase, long long kss, long long vss, int tid) {
    using C = TcConfig<T, D, DV, ROWS>;
    constexpr int VEC = D / 8;
    constexpr int VECV = DV / 8;
    if constexpr (C::THREADS % VEC == 0 && VEC == VECV) {
        constexpr int RPP = C::THREADS / VEC;  // rows per pass
        const int c = tid % VEC, j0 = tid / VEC;
#pragma unroll
        for (int i = 0; i < C::KC / RPP; i++) {
            int j = j0 + i * RPP;
            bool ok = j < ch.count;
            long long kr = ok ? (ch.keys ? ch.keys[j] : ch.base + j) : 0;
            cpAsync16(sK + j * C::STR + c * 8, kBase + kr * kss + c * 8, ok);
            cpAsync16(sV + j * C::STRV + c * 8, vBase + kr * vss + c * 8, ok);
        }
    } else {
        for (int idx = tid; idx < C::KC * VEC; idx += C::THREADS) {
            int j = idx / VEC;
            int c = idx - j * VEC;
            bool ok = j < ch.count;
            long long kr = ok ? (ch.keys ? ch.keys[j] : ch.base + j) : 0;
            cpAsync16(sK + j * C::STR + c * 8, kBase + kr * kss + c * 8, ok);
        }
        for (int idx = tid; idx < C::KC * VECV; idx += C::THREADS) {
            int j = idx / VECV;
            int c = idx - j * VECV;
            bool ok = j < ch.count;
            long long kr = ok ? (ch.keys ? ch.keys[j] : ch.base + j) : 0;
            cpAsync16(sV + j * C::STRV + c * 8, vBase + kr * vss + c * 8, ok);
        }
    }
    for (int j = tid; j < C::KC; j += C::THREADS) {
        bool ok = j < ch.count;
        sKpos[j] = ok ? (ch.keys ? ch.keys[j] : ch.base + j) : -1;
        sLw[j] = ok && ch.lws ? ch.lws[j] : 0.f;
    }
}

// The rows one thread holds in one 16-row m-tile: row g and row g + 8 of it.
struct RowPair {
    int rowA, rowB;          // query rows (indices), -1 past the tile's rows
    int posA32, posB32;      // absolute positions, when they fit 32 bits (PredFast.simple)
};

// Per-call predicate data, hoisted out of the chunk loop.
struct PredFast {
    bool simple, causal;
    int sinks, lo, hi;
};

// The keys j of block slice `cur` that row `row` (at absolute position pos) admits: [lo, hi] ∪ [0, sinkEnd),
// already cut to the slice's count; empty for a missing row. Full slices admit [0, count).
__device__ __forceinline__ void rowInterval(int row, int pos, const Chunk& cur, int mode, const PredFast& pf, int& lo,
                                            int& hi, int& sinkEnd) {
    if (row < 0) {
        lo = 1; hi = 0; sinkEnd = 0;
        return;
    }
    if (mode == MODE_FULL) {
        lo = 0; hi = cur.count - 1; sinkEnd = 0;
        return;
    }
    // delta = pos - k in [bandLo, bandHi] (and >= 0 when causal)  <=>  k in [pos - bandHi, pos - bandLo]
    long long kLo = (long long)pos - pf.hi, kHi = (long long)pos - pf.lo;
    if (pf.causal && kHi > pos) kHi = pos;
    long long jLo = kLo - cur.base, jHi = kHi - cur.base;
    jLo = jLo < 0 ? 0 : jLo;
    jHi = jHi > cur.count - 1 ? cur.count - 1 : jHi;
    lo = jLo > 64 ? 64 : (int)jLo;
    hi = jHi < -1 ? -1 : (int)jHi;
    long long se = (long long)pf.sinks - cur.base;
    if (pf.causal && se > (long long)pos - cur.base + 1) se = (long long)pos - cur.base + 1;
    if (se > cur.count) se = cur.count;
    sinkEnd = se < 0 ? 0 : (int)se;
}

// Scores of one m-tile's chunk to the log2 domain: scale, soft-cap, log-weight, mask. Returns row maxima.
__device__ __forceinline__ void maskScores(float (&s)[8][4], const RowPair& rp, const Chunk& cur, int mode, bool plain,
                                           const PredFast& pf, const int* L, const int* cKpos, const float* cLw,
                                           float scale, float cap, int keyLength, long long queryOffset, int t4,
                                           float& mxA, float& mxB) {
    mxA = -INFINITY;
    mxB = -INFINITY;
    if (plain) {
        // raw q·k: the caller folds scale·log2(e) into the exponent's FFMA (scale > 0 keeps the max)
#pragma unroll
        for (int nb = 0; nb < 8; nb++) {
            mxA = fmaxf(mxA, fmaxf(s[nb][0], s[nb][1]));
            mxB = fmaxf(mxB, fmaxf(s[nb][2], s[nb][3]));
        }
    } else if (mode != MODE_GATHER && mode != MODE_UNCOND && pf.simple) {
        // A block slice (keys base + j, no log-weights). Without stride or neighbourhood, a row admits
        // the keys of one interval (band ∩ causal) plus the sinks (still causal): in j, per row,
        // [lo, hi] ∪ [0, sinkEnd), so each element costs a few compares against constants.
        int loA, hiA, seA, loB, hiB, seB;
        rowInterval(rp.rowA, rp.posA32, cur, mode, pf, loA, hiA, seA);
        rowInterval(rp.rowB, rp.posB32, cur, mode, pf, loB, hiB, seB);
#pragma unroll
        for (int nb = 0; nb < 8; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = nb * 8 + 2 * t4 + (e & 1);
                bool upper = e < 2;
                bool ok = upper ? ((j >= loA && j <= hiA) || j < seA) : ((j >= loB && j <= hiB) || j < seB);
                float x = s[nb][e] * scale;
                if (cap > 0.f) x = cap * tanhf(x / cap);
                x = ok ? x * SPARSA_LOG2E : -INFINITY;
                s[nb][e] = x;
                if (upper) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
            }
        }
    } else {
#pragma unroll
        for (int nb = 0; nb < 8; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = nb * 8 + 2 * t4 + (e & 1);
                int kp = cKpos[j];
                bool upper = e < 2;
                int row = upper ? rp.rowA : rp.rowB;
                float x = s[nb][e] * scale;
                if (cap > 0.f) x = cap * tanhf(x / cap);
                x += cLw[j];
                bool ok = kp >= 0 && row >= 0;
                if (ok && (mode == MODE_PARTIAL || mode == MODE_GATHER)) ok = admits(L, (long long)row + queryOffset, kp, keyLength);
                x = ok ? x * SPARSA_LOG2E : -INFINITY;
                s[nb][e] = x;
                if (upper) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
            }
        }
    }
}

template <typename T, int D, int DV, int ROWS>
__device__ __forceinline__ void tcKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                         void* __restrict__ out, float* __restrict__ lse, float* __restrict__ scratchO,
                                         float* __restrict__ scratchLse, const int* __restrict__ ints,
                                         const float* __restrict__ floats, const int* __restrict__ work,
                                         const Scalars& S) {
    using C = TcConfig<T, D, DV, ROWS>;
    constexpr int MT = C::MT;
    extern __shared__ uint4 smemRaw[];
    T* sQ = reinterpret_cast<T*>(smemRaw);
    T* sK = sQ + ROWS * C::STR;
    T* sV = sK + C::STAGES * C::KC * C::STR;
    int* sKpos = reinterpret_cast<int*>(sV + C::STAGES * C::KC * C::STRV);
    float* sLw = reinterpret_cast<float*>(sKpos + C::STAGES * C::KC);
    int* sRow = reinterpret_cast<int*>(sLw + C::STAGES * C::KC);

    const int tid = threadIdx.x;
    const int* W = work + (size_t)blockIdx.x * W_STRIDE;
    const int slice = W[W_SLICE], tile = W[W_TILE], rowBegin = W[W_ROW_BEGIN], entryBase = W[W_ENTRY_BASE];
    const int* L = ints + (size_t)W[W_LAYOUT] * LI_STRIDE;
    const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads, kvh = h / (int)S.group;
    const int keyLength = (int)S.keyLength, blockCols = (int)S.blockCols;
    const long long queryOffset = L[LI_QUERY_OFFSET];

    for (int i = tid; i < ROWS; i += C::THREADS) sRow[i] = tileRow(ints, L, tile, rowBegin + i);
    __syncthreads();
    const T* qBase = q + b * S.qsb + h * S.qsh;
    const T* kBase = k + b * S.ksb + kvh * S.ksh;
    const T* vBase = v + b * S.vsb + kvh * S.vsh;
    constexpr int VEC = D / 8;
    for (int idx = tid; idx < ROWS * VEC; idx += C::THREADS) {
        int r = idx / VEC, c = idx - r * VEC;
        int row = sRow[r];
        cpAsync16(sQ + r * C::STR + c * 8, qBase + (long long)max(row, 0) * S.qss + c * 8, row >= 0);
    }
    cpAsyncCommit();

    const TileKeys tk = tileKeys(ints, L, tile, blockCols);
    const int nChunks = tk.nChunks;
    const float scale = (float)S.scale, cap = (float)S.softCap;
    const float scaleLog2 = scale * SPARSA_LOG2E;

    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int r0 = warp * 16 * MT;
    RowPair rp[MT];
    bool allRows = true;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        rp[mt].rowA = sRow[r0 + mt * 16 + g];
        rp[mt].rowB = sRow[r0 + mt * 16 + g + 8];
        rp[mt].posA32 = (int)(rp[mt].rowA + queryOffset);
        rp[mt].posB32 = (int)(rp[mt].rowB + queryOffset);
        allRows = allRows && rp[mt].rowA >= 0 && rp[mt].rowB >= 0;
    }
    PredFast pf;
    // the predicate without stride or neighbourhood, on positions that fit 32-bit arithmetic
    pf.simple = L[LI_STRIDE_M] == 0 && L[LI_NEIGHBOURHOOD] == 0 && queryOffset > -(1LL << 30) && queryOffset < (1LL << 30)
                && keyLength < (1 << 29) && S.queryLength < (1LL << 29);
    pf.causal = L[LI_CAUSAL] != 0;
    pf.sinks = L[LI_SINKS];
    pf.lo = (int)max((long long)L[LI_BAND_LO], -(1LL << 31) + 1);
    pf.hi = L[LI_BAND_HI];

    float o[MT][DV / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
        for (int i = 0; i < DV / 8; i++) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
    }
    uint32_t qf[C::QREG ? D / 16 : 1][4];

    if (nChunks > 0) {
        Chunk c0 = chunkOf(ints, floats, L, tk, 0, blockCols, keyLength);
        tcLoadChunk<T, D, DV, ROWS>(sK, sV, sKpos, sLw, c0, kBase, vBase, S.kss, S.vss, tid);
        cpAsyncCommit();
    }
    for (int c = 0; c < nChunks; c++) {
        const int st = C::STAGES == 2 ? (c & 1) : 0;
        if (C::STAGES == 2) {
            if (c + 1 < nChunks) {
                Chunk cn = chunkOf(ints, floats, L, tk, c + 1, blockCols, keyLength);
                int sn = (c + 1) & 1;
                tcLoadChunk<T, D, DV, ROWS>(sK + sn * C::KC * C::STR, sV + sn * C::KC * C::STRV, sKpos + sn * C::KC,
                                        sLw + sn * C::KC, cn, kBase, vBase, S.kss, S.vss, tid);
                cpAsyncCommit();
                cpAsyncWait<1>();
            } else {
                cpAsyncWait<0>();
            }
        } else {
            if (c > 0) {
                Chunk cc = chunkOf(ints, floats, L, tk, c, blockCols, keyLength);
                tcLoadChunk<T, D, DV, ROWS>(sK, sV, sKpos, sLw, cc, kBase, vBase, S.kss, S.vss, tid);
                cpAsyncCommit();
            }
            cpAsyncWait<0>();
        }
        __syncthreads();
        if (C::QREG && c == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                ldsm4(qf[C::QREG ? kk : 0], sQ + (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * C::STR + kk * 16 + (lane >> 4) * 8);
        }
        const T* cK = sK + st * C::KC * C::STR;
        const T* cV = sV + st * C::KC * C::STRV;
        const int* cKpos = sKpos + st * C::KC;
        const float* cLw = sLw + st * C::KC;
        const Chunk cur = chunkOf(ints, floats, L, tk, c, blockCols, keyLength);
        const int mode = cur.mode;
        // a full 64-key slice of a full block, for rows that all exist: no per-element test at all
        const bool plain = mode == MODE_FULL && cur.count == 64 && cap == 0.f && allRows;

        float s[MT][8][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int i = 0; i < 8; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if (C::QREG) {
                    a[mt][0] = qf[C::QREG ? kk : 0][0]; a[mt][1] = qf[C::QREG ? kk : 0][1];
                    a[mt][2] = qf[C::QREG ? kk : 0][2]; a[mt][3] = qf[C::QREG ? kk : 0][3];
                } else {
                    ldsm4(a[mt], sQ + (r0 + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * C::STR + kk * 16 + (lane >> 4) * 8);
                }
            }
#pragma unroll
            for (int nb2 = 0; nb2 < 4; nb2++) {
                uint32_t bf[4];
                ldsm4(bf, cK + (nb2 * 16 + (lane & 7) + (lane >> 4) * 8) * C::STR + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<T>(s[mt][2 * nb2], a[mt], bf[0], bf[1]);
                    mma16816<T>(s[mt][2 * nb2 + 1], a[mt], bf[2], bf[3]);
                }
            }
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float mxA, mxB;
            maskScores(s[mt], rp[mt], cur, mode, plain, pf, L, cKpos, cLw, scale, cap, keyLength, queryOffset, t4, mxA, mxB);
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
            // plain chunks hold raw q·k (factor scale·log2 e), the others log2-domain scores (factor 1)
            const float f = plain ? scaleLog2 : 1.f;
            const float nA = fmaxf(m[mt][0], mxA * f), nB = fmaxf(m[mt][1], mxB * f);
            const float uA = nA == -INFINITY ? 0.f : nA, uB = nB == -INFINITY ? 0.f : nB;
            const float alA = fastExp2(m[mt][0] - uA), alB = fastExp2(m[mt][1] - uB);
            m[mt][0] = nA;
            m[mt][1] = nB;
            float sumA = 0.f, sumB = 0.f;
#pragma unroll
            for (int nb = 0; nb < 8; nb++) {
                s[mt][nb][0] = fastExp2(fmaf(s[mt][nb][0], f, -uA));
                s[mt][nb][1] = fastExp2(fmaf(s[mt][nb][1], f, -uA));
                s[mt][nb][2] = fastExp2(fmaf(s[mt][nb][2], f, -uB));
                s[mt][nb][3] = fastExp2(fmaf(s[mt][nb][3], f, -uB));
                sumA += s[mt][nb][0] + s[mt][nb][1];
                sumB += s[mt][nb][2] + s[mt][nb][3];
            }
            l[mt][0] = l[mt][0] * alA + sumA;
            l[mt][1] = l[mt][1] * alB + sumB;
#pragma unroll
            for (int i = 0; i < DV / 8; i++) {
                o[mt][i][0] *= alA; o[mt][i][1] *= alA;
                o[mt][i][2] *= alB; o[mt][i][3] *= alB;
            }
        }
        // O += P V
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                a[mt][0] = Pack<T>::two(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                a[mt][1] = Pack<T>::two(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                a[mt][2] = Pack<T>::two(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                a[mt][3] = Pack<T>::two(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int nd2 = 0; nd2 < DV / 16; nd2++) {
                uint32_t bf[4];
                ldsm4t(bf, cV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * C::STRV + nd2 * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<T>(o[mt][2 * nd2], a[mt], bf[0], bf[1]);
                    mma16816<T>(o[mt][2 * nd2 + 1], a[mt], bf[2], bf[3]);
                }
            }
        }
        __syncthreads();
    }
    if (nChunks == 0) {
        cpAsyncWait<0>();
    }
    const int kind = (int)S.outKind;
    const long long ob = b * S.osb + h * S.osh;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float lv = l[mt][half];
            lv += __shfl_xor_sync(0xffffffffu, lv, 1);
            lv += __shfl_xor_sync(0xffffffffu, lv, 2);
            // a NaN sum means a NaN or +inf score: the row is NaN, not empty (docs/numerics.md)
            const float inv = lv != lv ? lv : (lv > 0.f ? 1.f / lv : 0.f);
            const float lseV = lv != lv ? lv : (lv > 0.f ? (m[mt][half] + log2f(lv)) * SPARSA_LN2 : -INFINITY);
            const int row = half == 0 ? rp[mt].rowA : rp[mt].rowB;
            if (row < 0) continue;
            if (entryBase < 0) {
#pragma unroll
                for (int i = 0; i < DV / 8; i++)
                    storeOut2(out, ob + row * S.oss + i * 8 + 2 * t4, kind, o[mt][i][2 * half] * inv, o[mt][i][2 * half + 1] * inv);
                if (lse && t4 == 0) lse[b * S.lsb + h * S.lsh + row * S.lss] = lseV;
            } else {
                long long e = entryBase + r0 + mt * 16 + g + 8 * half;
#pragma unroll
                for (int i = 0; i < DV / 8; i++)
                    *reinterpret_cast<float2*>(scratchO + e * DV + i * 8 + 2 * t4) =
                        make_float2(o[mt][i][2 * half] * inv, o[mt][i][2 * half + 1] * inv);
                if (t4 == 0) scratchLse[e] = lseV;
            }
        }
    }
}

#define SPARSA_TC_NAMED(NAME, T, D, DV, ROWS)                                                                         \
    extern "C" __global__ void __launch_bounds__(TcConfig<T, D, DV, ROWS>::THREADS, 1) NAME(                         \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse,               \
        const int* ints, const float* floats, const int* work, Scalars s) {                                          \
        tcKernel<T, D, DV, ROWS>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s);                        \
    }
#define SPARSA_TC(TNAME, T, D, ROWS) SPARSA_TC_NAMED(sparsa_tc_##TNAME##_d##D##_r##ROWS, T, D, D, ROWS)
#define SPARSA_TC_V(TNAME, T, D, DV, ROWS) SPARSA_TC_NAMED(sparsa_tc_##TNAME##_d##D##v##DV##_r##ROWS, T, D, DV, ROWS)
#define SPARSA_TC_DIMS(TNAME, T, ROWS) \
    SPARSA_TC(TNAME, T, 64, ROWS) SPARSA_TC(TNAME, T, 80, ROWS) SPARSA_TC(TNAME, T, 96, ROWS) \
    SPARSA_TC(TNAME, T, 128, ROWS) SPARSA_TC(TNAME, T, 256, ROWS) \
    SPARSA_TC_V(TNAME, T, 128, 64, ROWS) SPARSA_TC_V(TNAME, T, 64, 128, ROWS) SPARSA_TC_V(TNAME, T, 192, 128, ROWS)
#ifdef SPARSA_DEV_BF16_D128
// experiments only (kernels-cuda/bench/dev-fatbin.sh): the benchmark's kernels, nothing else
SPARSA_TC(bf16, __nv_bfloat16, 128, 64)
SPARSA_TC(bf16, __nv_bfloat16, 128, 128)
#else
SPARSA_TC_DIMS(bf16, __nv_bfloat16, 64)
SPARSA_TC_DIMS(bf16, __nv_bfloat16, 128)
SPARSA_TC_DIMS(f16, __half, 64)
SPARSA_TC_DIMS(f16, __half, 128)
#endif

#include "sparsa_wgmma.cuh"

// ------------------------------------------------------------------ exact f32 kernel (CUDA cores)

template <int D, int DV>
struct F32Config {
    static constexpr int ROWS = 64, KC = 32, THREADS = 256;
    static constexpr int QS = D + 1, KS = D + 1, VS = DV + 1, PS = KC + 1;
    static constexpr size_t SMEM = sizeof(float) * (size_t)(ROWS * QS + KC * KS + KC * VS + ROWS * PS + KC)
                                   + sizeof(int) * (KC + ROWS);
};

template <int D, int DV>
__device__ __forceinline__ void f32Kernel(const float* __restrict__ q, const float* __restrict__ k,
                                          const float* __restrict__ v, float* __restrict__ out, float* __restrict__ lse,
                                          float* __restrict__ scratchO, float* __restrict__ scratchLse,
                                          const int* __restrict__ ints, const float* __restrict__ floats,
                                          const int* __restrict__ work, const Scalars& S) {
    using C = F32Config<D, DV>;
    extern __shared__ uint4 smemRaw[];
    float* sQ = reinterpret_cast<float*>(smemRaw);
    float* sK = sQ + C::ROWS * C::QS;
    float* sV = sK + C::KC * C::KS;
    float* sP = sV + C::KC * C::VS;
    float* sLw = sP + C::ROWS * C::PS;
    int* sKpos = reinterpret_cast<int*>(sLw + C::KC);
    int* sRow = sKpos + C::KC;

    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int* W = work + (size_t)blockIdx.x * W_STRIDE;
    const int slice = W[W_SLICE], tile = W[W_TILE], rowBegin = W[W_ROW_BEGIN], entryBase = W[W_ENTRY_BASE];
    const int* L = ints + (size_t)W[W_LAYOUT] * LI_STRIDE;
    const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads, kvh = h / (int)S.group;
    const int keyLength = (int)S.keyLength, blockCols = (int)S.blockCols;
    const long long queryOffset = L[LI_QUERY_OFFSET];
    for (int i = tid; i < C::ROWS; i += C::THREADS) sRow[i] = tileRow(ints, L, tile, rowBegin + i);
    __syncthreads();
    const float* qBase = q + b * S.qsb + h * S.qsh;
    const float* kBase = k + b * S.ksb + kvh * S.ksh;
    const float* vBase = v + b * S.vsb + kvh * S.vsh;
    for (int idx = tid; idx < C::ROWS * D; idx += C::THREADS) {
        int r = idx / D, d = idx - r * D;
        int row = sRow[r];
        sQ[r * C::QS + d] = row >= 0 ? qBase[row * S.qss + d] : 0.f;
    }
    int rows[4];
    long long qPos[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        rows[i] = sRow[ty * 4 + i];
        qPos[i] = rows[i] + queryOffset;
    }
    const TileKeys tk = tileKeys(ints, L, tile, blockCols);
    const float scale = (float)S.scale, cap = (float)S.softCap;
    float o[4][DV / 16];
    float m[4], l[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.f;
#pragma unroll
        for (int c = 0; c < DV / 16; c++) o[i][c] = 0.f;
    }
    // each 64-key chunk of the plan is processed as two halves of 32 keys
    for (int c = 0; c < tk.nChunks * 2; c++) {
        Chunk ch = chunkOf(ints, floats, L, tk, c >> 1, blockCols, keyLength);
        const int half = (c & 1) * 32;
        const int cnt = min(max(ch.count - half, 0), 32);
        if (cnt == 0) continue;  // uniform across the block
        __syncthreads();
        for (int j = tid; j < C::KC; j += C::THREADS) {
            bool ok = j < cnt;
            sKpos[j] = ok ? (ch.keys ? ch.keys[half + j] : ch.base + half + j) : -1;
            sLw[j] = ok && ch.lws ? ch.lws[half + j] : 0.f;
        }
        __syncthreads();
        for (int idx = tid; idx < C::KC * D; idx += C::THREADS) {
            int j = idx / D, d = idx - j * D;
            int kp = sKpos[j];
            sK[j * C::KS + d] = kp >= 0 ? kBase[kp * S.kss + d] : 0.f;
        }
        for (int idx = tid; idx < C::KC * DV; idx += C::THREADS) {
            int j = idx / DV, d = idx - j * DV;
            int kp = sKpos[j];
            sV[j * C::VS + d] = kp >= 0 ? vBase[kp * S.vss + d] : 0.f;
        }
        __syncthreads();
        float acc[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = 0.f;
#pragma unroll 4
        for (int d = 0; d < D; d++) {
            float k0 = sK[tx * C::KS + d], k1 = sK[(tx + 16) * C::KS + d];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float qv = sQ[(ty * 4 + i) * C::QS + d];
                acc[i][0] = fmaf(qv, k0, acc[i][0]);
                acc[i][1] = fmaf(qv, k1, acc[i][1]);
            }
        }
        float alpha[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float mx = -INFINITY;
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                int j = tx + 16 * jj;
                int kp = sKpos[j];
                float x = acc[i][jj] * scale;
                if (cap > 0.f) x = cap * tanhf(x / cap);
                x += sLw[j];
                bool ok = kp >= 0 && rows[i] >= 0;
                if (ok && (ch.mode == MODE_PARTIAL || ch.mode == MODE_GATHER)) ok = admits(L, qPos[i], kp, keyLength);
                acc[i][jj] = ok ? x : -INFINITY;
                mx = fmaxf(mx, acc[i][jj]);
            }
#pragma unroll
            for (int off = 1; off < 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            float nm = fmaxf(m[i], mx);
            float u = nm == -INFINITY ? 0.f : nm;
            alpha[i] = expf(m[i] - u);
            m[i] = nm;
            float sum = 0.f;
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                float p = expf(acc[i][jj] - u);
                sP[(ty * 4 + i) * C::PS + tx + 16 * jj] = p;
                sum += p;
            }
#pragma unroll
            for (int off = 1; off < 16; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            l[i] = l[i] * alpha[i] + sum;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int cc = 0; cc < DV / 16; cc++) o[i][cc] *= alpha[i];
        for (int j = 0; j < C::KC; j++) {
            float p[4];
#pragma unroll
            for (int i = 0; i < 4; i++) p[i] = sP[(ty * 4 + i) * C::PS + j];
#pragma unroll
            for (int cc = 0; cc < DV / 16; cc++) {
                float vv = sV[j * C::VS + tx + 16 * cc];
#pragma unroll
                for (int i = 0; i < 4; i++) o[i][cc] = fmaf(p[i], vv, o[i][cc]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (rows[i] < 0) continue;
        // a NaN sum means a NaN or +inf score: the row is NaN, not empty (docs/numerics.md)
        float inv = l[i] != l[i] ? l[i] : (l[i] > 0.f ? 1.f / l[i] : 0.f);
        float lv = l[i] != l[i] ? l[i] : (l[i] > 0.f ? m[i] + logf(l[i]) : -INFINITY);
        if (entryBase < 0) {
            long long ob = b * S.osb + h * S.osh + rows[i] * S.oss;
#pragma unroll
            for (int cc = 0; cc < DV / 16; cc++) out[ob + tx + 16 * cc] = o[i][cc] * inv;
            if (lse && tx == 0) lse[b * S.lsb + h * S.lsh + rows[i] * S.lss] = lv;
        } else {
            long long e = entryBase + ty * 4 + i;
#pragma unroll
            for (int cc = 0; cc < DV / 16; cc++) scratchO[e * DV + tx + 16 * cc] = o[i][cc] * inv;
            if (tx == 0) scratchLse[e] = lv;
        }
    }
}

#define SPARSA_F32_NAMED(NAME, D, DV)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                                          \
        const float* q, const float* k, const float* v, float* out, float* lse, float* scratchO, float* scratchLse,   \
        const int* ints, const float* floats, const int* work, Scalars s) {                                          \
        f32Kernel<D, DV>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s);                            \
    }
#define SPARSA_F32(D) SPARSA_F32_NAMED(sparsa_f32_d##D, D, D)
#define SPARSA_F32_V(D, DV) SPARSA_F32_NAMED(sparsa_f32_d##D##v##DV, D, DV)
#ifndef SPARSA_DEV_BF16_D128
SPARSA_F32(64)
SPARSA_F32(80)
SPARSA_F32(96)
SPARSA_F32(128)
SPARSA_F32(256)
SPARSA_F32_V(128, 64)
SPARSA_F32_V(64, 128)
SPARSA_F32_V(192, 128)
#endif

// ------------------------------------------------------------------ LSE merge of multi-tile rows

// One warp per (query row = blockIdx.x * 8 + warp, merged slice = blockIdx.y). mergeWork holds, per merged slice, {slice, layout, scratchBase}.
// The row's entries (indices into the slice's scratch) are listed by the layout's row-entry CSR.
// A row in no tile gets 0 and -inf; otherwise out = sum_e w_e o_e / sum_e w_e with w_e = exp(lse_e - max).
extern "C" __global__ void __launch_bounds__(256) sparsa_merge(const float* scratchO, const float* scratchLse,
                                                               void* out, float* lse, const int* ints,
                                                               const int* mergeWork, Scalars S) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 8 + warp;
    if (row >= (int)S.queryLength) return;
    const int* MW = mergeWork + blockIdx.y * 4;
    const int slice = MW[0];
    const int* L = ints + (size_t)MW[1] * LI_STRIDE;
    const long long base = MW[2];
    const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads;
    const int dv = (int)S.valueDim, kind = (int)S.outKind;
    const int e0 = ints[L[LI_ROW_ENTRY_OFFSETS] + row], e1 = ints[L[LI_ROW_ENTRY_OFFSETS] + row + 1];
    const int* entries = ints + L[LI_ROW_ENTRIES];
    float mx = -INFINITY;
    bool nanRow = false;  // fmaxf drops NaN: a NaN partial must make the merged row NaN
    for (int e = e0; e < e1; e++) {
        const float v = scratchLse[base + entries[e]];
        nanRow |= v != v;
        mx = fmaxf(mx, v);
    }
    if (nanRow) mx = __int_as_float(0x7fc00000);
    const long long ob = b * S.osb + h * S.osh + row * S.oss;
    float total = 0.f;
    if (mx != -INFINITY) {
        for (int e = e0; e < e1; e++) total += expf(scratchLse[base + entries[e]] - mx);
    }
    for (int d = lane; d < dv; d += 32) {
        float acc = 0.f;
        if (mx != -INFINITY) {
            for (int e = e0; e < e1; e++) {
                long long en = base + entries[e];
                float w = expf(scratchLse[en] - mx);
                acc += w * scratchO[en * dv + d];
            }
            acc /= total;
        }
        storeOut1(out, ob + d, kind, acc);
    }
    if (lse && lane == 0) lse[b * S.lsb + h * S.lsh + row * S.lss] = mx == -INFINITY ? -INFINITY : mx + logf(total);
}
#include "sparsa_decode.cuh"
#include "sparsa_estimate.cuh"
