// Sparsa: the FlashAttention-2-style prefill kernel family on tensor cores (mma.sync m16n8k16, f32
// accumulation), for bf16 and f16 on sm_80 and later.
//
//  sparsa_tc_<bf16|f16>_d<D>[v<DV>]_r<ROWS>: one CTA per (slice, query tile) work item, ROWS/16 warps
//      (two m-tiles per warp for 128-row tiles up to D = 128), 16 query rows per m-tile, keys in chunks
//      of 64 staged through shared memory with cp.async (two stages, one for D = 256 or D + DV > 320).
//
// Head packing: a work item may stack the query heads of one GQA group that share a layout (W_PACK_HEADS,
// sparsa_plan.cuh), so a tile of one query row (a per-row token list) fills packHeads rows of the CTA and
// each gathered key chunk is loaded once for all of them. Warps whose rows are all past the stack (or the
// tile) load keys but skip the arithmetic (64-row CTAs up to D = DV = 128).
//
// sparsa_tcg_<bf16|f16>_d<D>_r64 (D = 64, 128): the same body for head-packed work lists, with the gathered
// keys pipelined deeper (GP): STAGES stages of 64 keys (3 at D = 128, 6 at D = 64: as many as leave two CTAs
// per multiprocessor), the key positions of chunk c + STAGES fetched from global memory while chunk c is
// computed (into shared memory, so queueing the copies of a chunk waits on no global load), and Q staged in
// the last stage until its fragments are in registers. Where a tile's rows fill only one or two of the four
// warps (a per-row list packed for a GQA group of 32 heads fills two, a group of 16 or fewer one), the warps
// split each chunk's keys into two or four shares instead of idling, and the shares' softmax states (row
// maximum, sum, O) are merged at the end; otherwise a row's arithmetic is the same, in the same order, as in
// sparsa_tc_*_r64 (outputs equal bit for bit). Gathered and unconditional keys under the simple predicate
// (no stride or neighbourhood) are masked by an interval test on their positions.
//
// Every kernel admits exactly the pairs HeadLayout.forEachAdmittedKey admits: full block slices
// unconditionally, partial block slices and gathered keys under the element predicate, unconditional
// keys without it; gathered and unconditional keys add their log-weight. Score order: scale·q·k,
// soft-cap, + log-weight, mask. Rows with no admitted key: output 0, LSE -inf. A work item with
// entryBase >= 0 writes f32 partials and their LSE to scratch (merged by sparsa_merge).
//
// This header holds the kernel body (tcKernel) and SPARSA_TC_NAMED / SPARSA_TCG_NAMED, the entry points'
// definitions; the instantiations are rows of sparsa_kernels.def, expanded in sparsa_prefill_mma_<t>.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"
#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"

using namespace sparsa;

// A compile-time int as a value, for generic lambdas over a width.
template <int N>
struct IntC {
    static constexpr int value = N;
};

template <typename T, int D, int DV, int ROWS, bool GP = false>
struct TcConfig {
    static_assert(!GP || (ROWS == 64 && D <= 128 && DV <= 128), "the gather pipeline is built for 64-row CTAs up to D = DV = 128");
    static constexpr int DMAX = D > DV ? D : DV;
    static constexpr int MT = (ROWS == 128 && DMAX <= 128) ? 2 : 1;  // 16-row m-tiles per warp
    static constexpr int WARPS = ROWS / (16 * MT);
    static constexpr int THREADS = WARPS * 32;
    static constexpr int KC = 64;             // keys per chunk
    static constexpr int STR = D + 8;         // smem row stride of Q and K (elements): 16-byte pad against bank conflicts
    static constexpr int STRV = DV + 8;       // smem row stride of V
    // the gather pipeline: as many stages as leave two CTAs per multiprocessor (2 x (SMEM + 1 KiB) <= 228 KiB), 2 to 6
    // (experiments: -DSPARSA_TCG_STAGES=n through kernels-cuda/bench/dev-fatbin.sh, with -Dsparsa.cuda.gatherStages=n)
    static constexpr int GP_FIT = (115712 - 4 * ROWS - 16 * KC) / (2 * KC * (STR + STRV) + 8 * KC);
#ifdef SPARSA_TCG_STAGES
    static constexpr int GP_STAGES = SPARSA_TCG_STAGES;
#else
    static constexpr int GP_STAGES = GP_FIT > 6 ? 6 : GP_FIT < 2 ? 2 : GP_FIT;
#endif
    static constexpr int STAGES = GP ? GP_STAGES : DMAX >= 256 || D + DV > 320 ? 1 : 2;
    static constexpr bool QREG = MT == 1 && D <= 128;  // Q fragments live in registers
    // warps whose rows are all past the tile skip the arithmetic (where the branch costs no spills)
    static constexpr bool SKIP_IDLE = MT == 1 && DMAX <= 128;
    // GP: Q lives in the K part of the last stage until its fragments are in registers; 2 x KC prefetched row
    // offsets of K and V (int2)
    static constexpr size_t SMEM = sizeof(T) * (size_t)((GP ? 0 : ROWS * STR) + STAGES * KC * (STR + STRV))
                                   + sizeof(int) * (STAGES * KC) + sizeof(float) * (STAGES * KC) + sizeof(int) * ROWS
                                   + (GP ? sizeof(int2) * 2 * KC : 0);
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

// Gather pipeline: the key position of entry j (< KC) of chunk n, -1 past its count (a global load for
// gathered and unconditional keys, issued a stage ahead of the copies that need it).
__device__ __forceinline__ int gpKeyIndex(const int* ints, const float* floats, const int* L, const TileKeys& tk, int n,
                                          int blockCols, int keyLength, int j) {
    const Chunk ch = chunkOf(ints, floats, L, tk, n, blockCols, keyLength);
    return j < ch.count ? (ch.keys ? ch.keys[j] : ch.base + j) : -1;
}

// Gather pipeline: the offsets of key position kp's K and V rows in 16-byte units ({-1, -1} for no key,
// kp < 0). The host runs the gather kernel only where every row offset fits (KernelChoice.gatherOffsetsFit);
// strides are multiples of 8 elements (16-byte rows).
__device__ __forceinline__ int2 gpRowOffsets(int kp, long long kss, long long vss) {
    return kp >= 0 ? make_int2(kp * (int)(kss >> 3), kp * (int)(vss >> 3)) : make_int2(-1, -1);
}

// Gather pipeline: queues the copies of one chunk whose rows' offsets are already in shared memory (sOff,
// 16-byte units, -1 past the count; thread j < KC also holds key position j in myIdx): K and V rows, and
// the log-weights; writes the key positions. The same shared-memory contents as tcLoadChunk. A thread
// copies the same 16-byte piece of KC / RPP consecutive rows: their offsets come in 16-byte loads issued
// together, and each row's addresses are one add.
template <typename T, int D, int DV, int ROWS>
__device__ __forceinline__ void tcIssueIndexed(T* sK, T* sV, int* sKpos, float* sLw, const int2* sOff, int myIdx,
                                               const float* lws, const T* kBase, const T* vBase, int tid) {
    using C = TcConfig<T, D, DV, ROWS, true>;
    static_assert(sizeof(T) == 2, "16-byte row offsets count 8 elements");
    constexpr int VEC = D / 8;
    constexpr int VECV = DV / 8;
    const uint4* kb = reinterpret_cast<const uint4*>(kBase);
    const uint4* vb = reinterpret_cast<const uint4*>(vBase);
    if constexpr (C::THREADS % VEC == 0 && VEC == VECV && (C::KC / (C::THREADS / VEC)) % 2 == 0) {
        constexpr int NR = C::KC / (C::THREADS / VEC);  // rows per thread
        const int c = tid % VEC, j0 = (tid / VEC) * NR;
        kb += c;
        vb += c;
        int4 offs[NR / 2];
#pragma unroll
        for (int i = 0; i < NR / 2; i++) offs[i] = reinterpret_cast<const int4*>(sOff + j0)[i];
#pragma unroll
        for (int i = 0; i < NR; i++) {
            const int j = j0 + i;
            const int ko = i & 1 ? offs[i / 2].z : offs[i / 2].x, vo = i & 1 ? offs[i / 2].w : offs[i / 2].y;
            const bool ok = ko >= 0;
            cpAsync16(sK + j * C::STR + c * 8, kb + (ok ? ko : 0), ok);
            cpAsync16(sV + j * C::STRV + c * 8, vb + (ok ? vo : 0), ok);
        }
    } else {
        for (int idx = tid; idx < C::KC * VEC; idx += C::THREADS) {
            const int j = idx / VEC, c = idx - j * VEC;
            const int2 off = sOff[j];
            const bool ok = off.x >= 0;
            cpAsync16(sK + j * C::STR + c * 8, kb + (ok ? off.x : 0) + c, ok);
        }
        for (int idx = tid; idx < C::KC * VECV; idx += C::THREADS) {
            const int j = idx / VECV, c = idx - j * VECV;
            const int2 off = sOff[j];
            const bool ok = off.x >= 0;
            cpAsync16(sV + j * C::STRV + c * 8, vb + (ok ? off.y : 0) + c, ok);
        }
    }
    static_assert(C::THREADS >= C::KC, "one thread per key of a chunk");
    if (tid < C::KC) {
        sKpos[tid] = myIdx;
        const bool lw = myIdx >= 0 && lws != nullptr;
        cpAsync4(sLw + tid, lw ? lws + tid : reinterpret_cast<const float*>(kBase), lw);
    }
}

template <typename T, int D, int DV, int ROWS, bool GP>
__device__ __forceinline__ void tcKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                         void* __restrict__ out, float* __restrict__ lse, float* __restrict__ scratchO,
                                         float* __restrict__ scratchLse, const int* __restrict__ ints,
                                         const float* __restrict__ floats, const int* __restrict__ work,
                                         const Scalars& S) {
    using C = TcConfig<T, D, DV, ROWS, GP>;
    constexpr int MT = C::MT;
    extern __shared__ uint4 smemRaw[];
    // GP: Q in the K part of the last stage (free again once the fragments are in registers, before chunk
    // STAGES - 1 is queued into it)
    T* sK = reinterpret_cast<T*>(smemRaw) + (GP ? 0 : ROWS * C::STR);
    T* sQ = GP ? sK + (C::STAGES - 1) * C::KC * C::STR : reinterpret_cast<T*>(smemRaw);
    T* sV = sK + C::STAGES * C::KC * C::STR;
    int* sKpos = reinterpret_cast<int*>(sV + C::STAGES * C::KC * C::STRV);
    float* sLw = reinterpret_cast<float*>(sKpos + C::STAGES * C::KC);
    int* sRow = reinterpret_cast<int*>(sLw + C::STAGES * C::KC);
    // GP: the K and V row offsets of the next chunk to queue, two buffers (chunk parity)
    int2* sOff = reinterpret_cast<int2*>(sRow + ROWS);

    const int tid = threadIdx.x;
    const int* W = work + (size_t)blockIdx.x * W_STRIDE;
    const int slice = W[W_SLICE], tile = W[W_TILE], rowBegin = W[W_ROW_BEGIN], entryBase = W[W_ENTRY_BASE];
    const int* L = ints + (size_t)W[W_LAYOUT] * LI_STRIDE;
    const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads, kvh = h / (int)S.group;
    // head packing: tile row i is head h + i / packRows (its row rowBegin + i % packRows); else head h
    const int packHeads = W[W_PACK_HEADS], packRows = packHeads > 1 ? W[W_PACK_ROWS] : ROWS;
    const int keyLength = (int)S.keyLength, blockCols = (int)S.blockCols;
    const long long queryOffset = L[LI_QUERY_OFFSET];

    for (int i = tid; i < ROWS; i += C::THREADS) {
        const int hi = i / packRows;
        sRow[i] = packHeads > 1 && hi >= packHeads ? -1 : tileRow(ints, L, tile, rowBegin + i - hi * packRows);
    }
    __syncthreads();
    const T* qBase = q + b * S.qsb + h * S.qsh;
    const T* kBase = k + b * S.ksb + kvh * S.ksh;
    const T* vBase = v + b * S.vsb + kvh * S.vsh;
    constexpr int VEC = D / 8;
    for (int idx = tid; idx < ROWS * VEC; idx += C::THREADS) {
        int r = idx / VEC, c = idx - r * VEC;
        int row = sRow[r];
        cpAsync16(sQ + r * C::STR + c * 8, qBase + (row >= 0 ? r / packRows : 0) * S.qsh + (long long)max(row, 0) * S.qss + c * 8, row >= 0);
    }
    cpAsyncCommit();

    const TileKeys tk = tileKeys(ints, L, tile, blockCols);
    const int nChunks = tk.nChunks;
    const float scale = (float)S.scale, cap = (float)S.softCap;
    const float scaleLog2 = scale * SPARSA_LOG2E;

    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    // GP: when the tile's rows fill only the first liveW warps (a per-row list packed for a group of 32
    // heads fills 2 of 4, a group of 16 or fewer 1), the warps split each chunk's keys instead of idling:
    // warp w takes rows of warp w % liveW and key share w / liveW of ks shares; the shares' softmax
    // states are merged at the end
    int liveW = C::WARPS, ks = 1;
    if constexpr (GP) {
        int last = 0;
        for (int i = 0; i < ROWS; i++)
            if (sRow[i] >= 0) last = i;
        liveW = last / 16 + 1;
        ks = liveW == 1 ? 4 : liveW == 2 ? 2 : 1;
        if (ks == 1) liveW = C::WARPS;
    }
    const int r0 = (GP ? warp % liveW : warp) * 16 * MT;
    const int jOff = GP ? (warp / liveW) * (C::KC / ks) : 0;  // first key of this warp's share of a chunk
    RowPair rp[MT];
    bool allRows = true, anyRow = false;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        rp[mt].rowA = sRow[r0 + mt * 16 + g];
        rp[mt].rowB = sRow[r0 + mt * 16 + g + 8];
        rp[mt].posA32 = (int)(rp[mt].rowA + queryOffset);
        rp[mt].posB32 = (int)(rp[mt].rowB + queryOffset);
        allRows = allRows && rp[mt].rowA >= 0 && rp[mt].rowB >= 0;
        anyRow = anyRow || rp[mt].rowA >= 0 || rp[mt].rowB >= 0;
    }
    // a warp whose rows are all past the tile (short tiles, small head stacks) only helps load keys
    const bool warpLive = __any_sync(0xffffffffu, anyRow);
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
    static_assert(!GP || C::QREG, "the gather pipeline keeps Q in registers");
    int myIdx = -1;  // GP: thread j < KC's prefetched key position j of the next chunk to queue
    int gslot = 0;   // GP: the stage of chunk c

    if constexpr (GP) {
        // chunks 0 .. STAGES - 2 now (one commit group each, empty past the list), chunk STAGES - 1's key
        // positions into shared memory; chunk STAGES - 1 is queued once Q is in registers
#pragma unroll
        for (int n = 0; n < C::STAGES - 1; n++) {
            if (n < nChunks) {
                Chunk cn = chunkOf(ints, floats, L, tk, n, blockCols, keyLength);
                tcLoadChunk<T, D, DV, ROWS>(sK + n * C::KC * C::STR, sV + n * C::KC * C::STRV, sKpos + n * C::KC,
                                            sLw + n * C::KC, cn, kBase, vBase, S.kss, S.vss, tid);
            }
            cpAsyncCommit();
        }
        if (tid < C::KC) {
            myIdx = C::STAGES - 1 < nChunks ? gpKeyIndex(ints, floats, L, tk, C::STAGES - 1, blockCols, keyLength, tid) : -1;
            sOff[((C::STAGES - 1) & 1) * C::KC + tid] = gpRowOffsets(myIdx, S.kss, S.vss);
        }
    } else if (nChunks > 0) {
        Chunk c0 = chunkOf(ints, floats, L, tk, 0, blockCols, keyLength);
        tcLoadChunk<T, D, DV, ROWS>(sK, sV, sKpos, sLw, c0, kBase, vBase, S.kss, S.vss, tid);
        cpAsyncCommit();
    }
    for (int c = 0; c < nChunks; c++) {
        const int st = GP ? gslot : C::STAGES == 2 ? (c & 1) : 0;
        if constexpr (GP) {
            // queue chunk c + STAGES - 1 into the stage chunk c - 1 left (chunk STAGES - 1: after Q, below),
            // fetch the key positions of chunk c + STAGES, then wait for chunk c
            if (c > 0) {
                const int n = c + C::STAGES - 1;
                const int sn = gslot == 0 ? C::STAGES - 1 : gslot - 1;
                if (n < nChunks) {
                    const Chunk cn = chunkOf(ints, floats, L, tk, n, blockCols, keyLength);
                    tcIssueIndexed<T, D, DV, ROWS>(sK + sn * C::KC * C::STR, sV + sn * C::KC * C::STRV, sKpos + sn * C::KC,
                                                   sLw + sn * C::KC, sOff + (n & 1) * C::KC, myIdx, cn.lws, kBase, vBase,
                                                   tid);
                }
                cpAsyncCommit();
                if (tid < C::KC)
                    myIdx = n + 1 < nChunks ? gpKeyIndex(ints, floats, L, tk, n + 1, blockCols, keyLength, tid) : -1;
                cpAsyncWait<C::STAGES - 1>();
            } else {
                cpAsyncWait<C::STAGES - 2>();
            }
        } else if (C::STAGES == 2) {
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
        if constexpr (GP) {
            if (c == 0) {
                // Q to registers, then its stage takes chunk STAGES - 1
                if (warpLive) {
#pragma unroll
                    for (int kk = 0; kk < D / 16; kk++)
                        ldsm4(qf[kk], sQ + (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * C::STR + kk * 16 + (lane >> 4) * 8);
                }
                __syncthreads();
                constexpr int n = C::STAGES - 1;
                if (n < nChunks) {
                    const Chunk cn = chunkOf(ints, floats, L, tk, n, blockCols, keyLength);
                    tcIssueIndexed<T, D, DV, ROWS>(sK + n * C::KC * C::STR, sV + n * C::KC * C::STRV, sKpos + n * C::KC,
                                                   sLw + n * C::KC, sOff + (n & 1) * C::KC, myIdx, cn.lws, kBase, vBase,
                                                   tid);
                }
                cpAsyncCommit();
                if (tid < C::KC)
                    myIdx = n + 1 < nChunks ? gpKeyIndex(ints, floats, L, tk, n + 1, blockCols, keyLength, tid) : -1;
            }
        }
        // GP: the chunk's arithmetic over this warp's key share; the other kernels keep the original
        // body below (the same arithmetic over all 64 keys), so that their compiled code is unchanged
        if constexpr (GP) {
        const T* cK = sK + st * C::KC * C::STR;
        const T* cV = sV + st * C::KC * C::STRV;
        const int* cKpos = sKpos + st * C::KC;
        const float* cLw = sLw + st * C::KC;
        // this warp's share of the chunk: NB n8 blocks of keys from jOff (all 64 unless GP splits)
        auto chunkMath = [&](auto nbTag) {
        constexpr int NB = decltype(nbTag)::value;
        const Chunk cur = chunkOf(ints, floats, L, tk, c, blockCols, keyLength);
        const int mode = cur.mode;
        // a full 64-key slice of a full block, for rows that all exist: no per-element test at all
        const bool plain = mode == MODE_FULL && cur.count == 64 && cap == 0.f && allRows;

        float s[MT][NB][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int i = 0; i < NB; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
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
            for (int nb2 = 0; nb2 < NB / 2; nb2++) {
                uint32_t bf[4];
                ldsm4(bf, cK + (jOff + nb2 * 16 + (lane & 7) + (lane >> 4) * 8) * C::STR + kk * 16 + ((lane >> 3) & 1) * 8);
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
            maskScores<NB, GP>(s[mt], rp[mt], cur, mode, plain, pf, L, cKpos, cLw, scale, cap, keyLength, queryOffset, t4,
                               mxA, mxB, jOff);
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
            float pa[NB], pb[NB];
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
                s[mt][nb][0] = fastExp2(fmaf(s[mt][nb][0], f, -uA));
                s[mt][nb][1] = fastExp2(fmaf(s[mt][nb][1], f, -uA));
                s[mt][nb][2] = fastExp2(fmaf(s[mt][nb][2], f, -uB));
                s[mt][nb][3] = fastExp2(fmaf(s[mt][nb][3], f, -uB));
                pa[nb] = s[mt][nb][0] + s[mt][nb][1];
                pb[nb] = s[mt][nb][2] + s[mt][nb][3];
            }
            // pairwise sums: a chain of log2(NB) adds instead of NB
#pragma unroll
            for (int w = 1; w < NB; w *= 2)
#pragma unroll
                for (int nb = 0; nb + w < NB; nb += 2 * w) {
                    pa[nb] += pa[nb + w];
                    pb[nb] += pb[nb + w];
                }
            l[mt][0] = l[mt][0] * alA + pa[0];
            l[mt][1] = l[mt][1] * alB + pb[0];
#pragma unroll
            for (int i = 0; i < DV / 8; i++) {
                o[mt][i][0] *= alA; o[mt][i][1] *= alA;
                o[mt][i][2] *= alB; o[mt][i][3] *= alB;
            }
        }
        // O += P V
#pragma unroll
        for (int kk = 0; kk < NB / 2; kk++) {
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
                ldsm4t(bf, cV + (jOff + kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * C::STRV + nd2 * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<T>(o[mt][2 * nd2], a[mt], bf[0], bf[1]);
                    mma16816<T>(o[mt][2 * nd2 + 1], a[mt], bf[2], bf[3]);
                }
            }
        }
        };
            if (ks == 1) {
                if (warpLive) chunkMath(IntC<8>{});
            } else if (ks == 2) {
                chunkMath(IntC<4>{});
            } else {
                chunkMath(IntC<2>{});
            }
        } else {
        if (!C::SKIP_IDLE || warpLive) {
        if (C::QREG && !GP && c == 0) {
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
        }  // warpLive
        }
        if constexpr (GP) {
            // the key positions fetched above (chunk c + STAGES), for the next iteration's copies
            if (tid < C::KC) sOff[((c + C::STAGES) & 1) * C::KC + tid] = gpRowOffsets(myIdx, S.kss, S.vss);
            gslot = gslot == C::STAGES - 1 ? 0 : gslot + 1;
        }
        __syncthreads();
    }
    if (nChunks == 0) {
        cpAsyncWait<0>();
    }
    if constexpr (GP) {
        if (ks > 1) {
            // the warps of key shares 1 .. ks-1 hand their softmax states (m, l and O, per lane, in the
            // mma layout) to the warp of share 0 of the same rows, which merges them in share order
            static_assert(3 * (DV / 2 + 4) * 32 * sizeof(float) <= C::STAGES * C::KC * C::STR * sizeof(T),
                          "the shares' states fit the K stages");
            cpAsyncWait<0>();
            __syncthreads();
            float* xs = reinterpret_cast<float*>(smemRaw);
            constexpr int SLOT = DV / 2 + 4;
            if (warp >= liveW) {
                float* x = xs + (warp - liveW) * SLOT * 32 + lane;
                x[0] = m[0][0]; x[32] = m[0][1]; x[64] = l[0][0]; x[96] = l[0][1];
#pragma unroll
                for (int i = 0; i < DV / 8; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) x[(4 + i * 4 + e) * 32] = o[0][i][e];
            }
            __syncthreads();
            if (warp < liveW) {
                for (int q = 1; q < ks; q++) {
                    const float* x = xs + (warp + (q - 1) * liveW) * SLOT * 32 + lane;
#pragma unroll
                    for (int half = 0; half < 2; half++) {
                        const float mq = x[half * 32], lq = x[(2 + half) * 32];
                        const float nm = fmaxf(m[0][half], mq);
                        const float u = nm == -INFINITY ? 0.f : nm;
                        const float a = fastExp2(m[0][half] - u), bq = fastExp2(mq - u);
                        m[0][half] = nm;
                        l[0][half] = l[0][half] * a + lq * bq;
#pragma unroll
                        for (int i = 0; i < DV / 8; i++) {
                            o[0][i][2 * half] = o[0][i][2 * half] * a + x[(4 + i * 4 + 2 * half) * 32] * bq;
                            o[0][i][2 * half + 1] = o[0][i][2 * half + 1] * a + x[(4 + i * 4 + 2 * half + 1) * 32] * bq;
                        }
                    }
                }
            }
        }
    }
    const int kind = (int)S.outKind;
    const long long ob = b * S.osb + h * S.osh;
    const long long lb = b * S.lsb + h * S.lsh;
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
            if (row < 0 || warp >= liveW) continue;  // GP: key-share warps handed their states over
            const int hi = (r0 + mt * 16 + g + 8 * half) / packRows;  // 0 unless head-packed
            if (entryBase < 0) {
#pragma unroll
                for (int i = 0; i < DV / 8; i++)
                    storeOut2(out, ob + hi * S.osh + row * S.oss + i * 8 + 2 * t4, kind, o[mt][i][2 * half] * inv,
                              o[mt][i][2 * half + 1] * inv);
                if (lse && t4 == 0) lse[lb + hi * S.lsh + row * S.lss] = lseV;
            } else {
                long long e = entryBase + (long long)hi * W[W_PACK_ENTRY_STRIDE] + r0 + mt * 16 + g + 8 * half - hi * packRows;
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
        tcKernel<T, D, DV, ROWS, false>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s);                 \
    }

// The gather-pipelined variant for head-packed work lists (64-row CTAs, D and DV up to 128).
#define SPARSA_TCG_NAMED(NAME, T, D, DV)                                                                              \
    extern "C" __global__ void __launch_bounds__(TcConfig<T, D, DV, 64, true>::THREADS, 2) NAME(                     \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse,               \
        const int* ints, const float* floats, const int* work, Scalars s) {                                          \
        tcKernel<T, D, DV, 64, true>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s);                   \
    }
