// Sparsa: Quest's page selection for decode (query-aware sparsity over a paged KV cache).
//
//  sparsa_quest_bounds_<f32|f16|bf16>_d<D>: Quest's page bound max_x sum_c max(q_c*min_c, q_c*max_c) for the
//      candidate pages of each (sequence, KV head), from the pages' stored per-channel minima and maxima.
//  sparsa_quest_bounds_e4m3_<f16|bf16|e4m3>_d<D>: the same for an e4m3 cache's bounds (codes × the KV head's scale
//      of K, each rounded to f32 as the host reads them) and a query of the named type (e4m3: codes × its head's
//      scale, rounded to f32).
//  sparsa_quest_topk, sparsa_quest_topk_c8: Quest's page choice per (sequence, KV head) from those bounds, written as
//      the page lists of the decode metadata (sparsa_decode.cuh) that the decode kernels then visit.
//  sparsa_decode_topk_choose, sparsa_decode_topk_choose_c8: top-k decode's choice of keys from their scores
//      (sparsa_decode_scores.cuh), by the same radix select, written as key lists.
//
// The bounds kernel's entry point is defined by SPARSA_QUEST_NAMED; its instantiations are rows of
// sparsa_kernels.def, expanded in sparsa_decode_quest.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <cooperative_groups.h>
#include "sparsa_decode.cuh"

// Quest bounds: a group of LPP lanes per PAGES_PER_GROUP candidate pages of (b, g), each lane holding CPL channels
// of the pages' stored bounds [P, Hkv, 2, D] (16-byte loads): max over the group's query vectors of
// sum_c max(q_c * min_c, q_c * max_c). Candidates are the first count[b] pages of b's block table; scores go to
// out[(b * Hkv + g) * width + i], -inf past the count. The host launches about two CTAs per SM; each lane group
// takes turns over its (b, g)'s pages with the next turn's bounds and the page numbers of the turn after in flight
// while it computes the current turn (a grid of one short-lived CTA per 64 pages waited on its loads once per CTA).
template <typename T, int D> struct QuestCfg {
    static constexpr int VEC = 16 / (int)sizeof(T);
    static constexpr int LPP = D / VEC < 32 ? D / VEC : 32;  // lanes per page
    static constexpr int CPL = D / LPP;                      // channels per lane, whole vectors
    static constexpr int WORDS = CPL / VEC;                  // 16-byte words per lane and bound
    static constexpr int PPW = 32 / LPP;                     // lane groups per warp
    static constexpr int PAGES_PER_GROUP = WORDS > 1 ? 2 : 4; // pages per lane group and turn, loaded together
    static constexpr int GROUPS_PER_CTA = 8 * PPW;           // 256 threads
};

// Element u of a 32-bit word of stored bounds, as f32.
template <typename T> __device__ __forceinline__ float questWordElement(uint32_t w, int u);
template <> __device__ __forceinline__ float questWordElement<float>(uint32_t w, int) { return __uint_as_float(w); }
template <> __device__ __forceinline__ float questWordElement<__nv_bfloat16>(uint32_t w, int u) {
    return __uint_as_float(u == 0 ? w << 16 : w & 0xFFFF0000u);
}
template <> __device__ __forceinline__ float questWordElement<__half>(uint32_t w, int u) {
    return __half2float(__ushort_as_half((unsigned short)(u == 0 ? w & 0xFFFFu : w >> 16)));
}
// an e4m3 code (byte u of the word) as f32, exactly; the caller multiplies by its scale
template <> __device__ __forceinline__ float questWordElement<uint8_t>(uint32_t w, int u) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)((w >> (8 * u)) & 0xFFu), __NV_E4M3);
    return __half2float(*reinterpret_cast<const __half*>(&h));
}

// max(a, b) that keeps NaN, as Java's Math.max (fmaxf drops it)
__device__ __forceinline__ float questMaxNaN(float a, float b) {
    float m;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(m) : "f"(a), "f"(b));
    return m;
}

// A lane's query channels and one page's words of stored bounds, by value (for questExactSum).
template <int N> struct QuestLaneQuery { float c[N]; };
template <int N> struct QuestLaneBounds { uint32_t mn[N], mx[N]; };

// A lane's share of one page's bound by the host's rule: both products per channel and a max that keeps NaN (Java's
// Math.max), for the query vectors where the select by q's sign could differ (a channel 0, infinite or NaN). Out of
// line: inlined beside the select, the kernel needed more than its 128 registers.
template <typename T, int CPL>
__device__ __noinline__ float questExactSum(const QuestLaneQuery<CPL> q, const QuestLaneBounds<CPL * sizeof(T) / 4> w,
                                            float kScale) {
    constexpr int EPW = 4 / (int)sizeof(T);
    float s = 0.f;
#pragma unroll
    for (int x = 0; x < CPL / EPW; x++) {
#pragma unroll
        for (int u = 0; u < EPW; u++) {
            float mn = questWordElement<T>(w.mn[x], u), mx = questWordElement<T>(w.mx[x], u);
            if constexpr (sizeof(T) == 1) {
                mn = __fmul_rn(mn, kScale);
                mx = __fmul_rn(mx, kScale);
            }
            const float a = __fmul_rn(q.c[x * EPW + u], mn), z = __fmul_rn(q.c[x * EPW + u], mx);
            s = __fadd_rn(s, questMaxNaN(a, z));
        }
    }
    return s;
}

// T: the stored bounds' element type (uint8_t: e4m3 codes, with K's scales in sc); QT: the query's (uint8_t: e4m3
// codes, with the query's scales in sc).
template <typename T, int D, typename QT = T>
__device__ void questBounds(const QT* q, const T* bounds, float* scores, const int* meta, const int* counts,
                            const sparsa::DecodeScalars S, long long bsp, long long bsh, long long bss, int width,
                            const sparsa::DecScales* sc = nullptr) {
    using namespace sparsa;
    using C = QuestCfg<T, D>;
    constexpr int PL = C::PAGES_PER_GROUP;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int sub = lane / C::LPP, l = lane - sub * C::LPP;
    const int b = blockIdx.y / (int)S.kvHeads, g = blockIdx.y % (int)S.kvHeads;
    const int n = min(counts[b], width);
    const int* table = meta + S.oTables + (long long)b * S.tableWidth;
    const int step = gridDim.x * C::GROUPS_PER_CTA * PL;  // pages between a lane group's turns
    // the warp's first page: its lane groups shuffle together, so a warp takes a turn while any of them has pages
    int w0 = (blockIdx.x * C::GROUPS_PER_CTA + warp * C::PPW) * PL;
    const int i00 = w0 + sub * PL;
    // turn t: pages i00 + t * step + j; bounds of the current turn in cur, of the next in nxt, page numbers two ahead
    uint4 cur[PL][2][C::WORDS], nxt[PL][2][C::WORDS];
    int pg[PL];
    auto loadPages = [&](int at, int* dst) {
#pragma unroll
        for (int j = 0; j < PL; j++) dst[j] = at + j < n ? table[at + j] : -1;
    };
    auto loadBounds = [&](const int* pages, uint4 (*dst)[2][C::WORDS]) {
#pragma unroll
        for (int j = 0; j < PL; j++) {
            if (pages[j] >= 0) {
                const T* pmn = bounds + (long long)pages[j] * bsp + (long long)g * bsh + l * C::CPL;
#pragma unroll
                for (int w = 0; w < C::WORDS; w++) {
                    dst[j][0][w] = *reinterpret_cast<const uint4*>(pmn + w * C::VEC);
                    dst[j][1][w] = *reinterpret_cast<const uint4*>(pmn + bss + w * C::VEC);
                }
            } else {
#pragma unroll
                for (int w = 0; w < C::WORDS; w++) dst[j][0][w] = dst[j][1][w] = make_uint4(0u, 0u, 0u, 0u);
            }
        }
    };
    {
        int first[PL];
        loadPages(i00, first);
        loadBounds(first, cur);
        loadPages(i00 + step, pg);
    }
    const int R = (int)S.rows, G = (int)S.group;
    float kScale = 1.f;
    if constexpr (sizeof(T) == 1) kScale = sc->k[g];
    constexpr int EPW = 4 / (int)sizeof(T);  // bound elements per 32-bit word
    // The select by q's sign equals Math.max(q * min, q * max), the host's rule, for every bound pair an append writes
    // (min <= max, or both NaN) when q is finite and not 0. A query vector whose channels (this lane's) hold a 0, an
    // infinity or NaN, where 0 * inf or inf * 0 makes one product NaN, takes both products instead: bit x of exactBits,
    // found in the first turn (checked in every turn past the 32nd vector).
    unsigned exactBits = 0u;
    bool firstTurn = true;
    for (; w0 < width; w0 += step) {
        const int i0 = w0 + sub * PL;
        loadBounds(pg, nxt);          // the next turn's bounds
        loadPages(i0 + 2 * step, pg); // and the page numbers of the turn after it
        float best[PL];
#pragma unroll
        for (int j = 0; j < PL; j++) best[j] = -INFINITY;
        for (int x = 0; x < G * R; x++) {
            const int hh = x / R, r = x - hh * R;
            // max(q_c * min_c, q_c * max_c) is q_c * max_c where q_c >= 0 and q_c * min_c elsewhere (rounding keeps
            // the order of the products; zeros of either sign add alike): one bitwise select per 32-bit word of
            // stored bounds, then one conversion, product and sum per channel, each rounded as before
            float qc[C::CPL];  // this lane's channels of query vector (head g * G + hh, row r), as f32
            uint32_t pick[C::CPL / EPW];  // bits taken from the max bound
            {
                const QT* qr = q + (long long)b * S.qsb + (long long)(g * G + hh) * S.qsh + (long long)r * S.qss
                               + l * C::CPL;
                if constexpr (sizeof(QT) == 1) {
                    const float qs = sc->q[g * G + hh];
#pragma unroll
                    for (int c = 0; c < C::CPL; c++) qc[c] = __fmul_rn(questWordElement<uint8_t>(qr[c], 0), qs);
                } else {
#pragma unroll
                    for (int c = 0; c < C::CPL; c++) qc[c] = decToFloat(qr[c]);
                }
            }
            bool exact;
            if (firstTurn || x >= 32) {
                exact = false;
#pragma unroll
                for (int c = 0; c < C::CPL; c++) exact |= !(fabsf(qc[c]) > 0.f && fabsf(qc[c]) < INFINITY);
                if (x < 32) exactBits |= (unsigned)exact << x;
            } else {
                exact = (exactBits >> x) & 1u;
            }
            constexpr uint32_t ONES = (uint32_t)((1ull << (32 / EPW)) - 1ull);  // one element's bits
#pragma unroll
            for (int w = 0; w < C::CPL / EPW; w++) {
                pick[w] = 0u;
#pragma unroll
                for (int u = 0; u < EPW; u++)
                    if (qc[w * EPW + u] >= 0.f) pick[w] |= ONES << ((32 / EPW) * u);
            }
            // each lane's share of every page's bound, by the select or (this lane's channels of this vector hold a 0,
            // an infinity or NaN) by both products; the lanes of a page add their shares after the branch
            float part[PL];
            if (exact) {
                QuestLaneQuery<C::CPL> qv;
#pragma unroll
                for (int c = 0; c < C::CPL; c++) qv.c[c] = qc[c];
#pragma unroll
                for (int j = 0; j < PL; j++) {
                    const uint32_t* wn = reinterpret_cast<const uint32_t*>(cur[j][0]);
                    const uint32_t* wx = reinterpret_cast<const uint32_t*>(cur[j][1]);
                    QuestLaneBounds<C::CPL / EPW> wv;
#pragma unroll
                    for (int w = 0; w < C::CPL / EPW; w++) {
                        wv.mn[w] = wn[w];
                        wv.mx[w] = wx[w];
                    }
                    part[j] = questExactSum<T, C::CPL>(qv, wv, kScale);
                }
            } else {
#pragma unroll
                for (int j = 0; j < PL; j++) {
                    const uint32_t* wn = reinterpret_cast<const uint32_t*>(cur[j][0]);
                    const uint32_t* wx = reinterpret_cast<const uint32_t*>(cur[j][1]);
                    float s = 0.f;
#pragma unroll
                    for (int w = 0; w < C::CPL / EPW; w++) {
                        const uint32_t sel = (wx[w] & pick[w]) | (wn[w] & ~pick[w]);
#pragma unroll
                        for (int u = 0; u < EPW; u++) {
                            float e = questWordElement<T>(sel, u);
                            if constexpr (sizeof(T) == 1) e = __fmul_rn(e, kScale);  // the value the host reads
                            s = __fadd_rn(s, __fmul_rn(qc[w * EPW + u], e));
                        }
                    }
                    part[j] = s;
                }
            }
#pragma unroll
            for (int j = 0; j < PL; j++) {
                float s = part[j];
#pragma unroll
                for (int off = C::LPP / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
                // fmaxf would drop a NaN sum; the host's Math.max keeps it (the page then ranks last)
                best[j] = questMaxNaN(best[j], s);
            }
        }
        firstTurn = false;
        if (l == 0) {
#pragma unroll
            for (int j = 0; j < PL; j++) {
                const int i = i0 + j;
                if (i < width) scores[(long long)blockIdx.y * width + i] = i < n ? best[j] : -INFINITY;
            }
        }
#pragma unroll
        for (int j = 0; j < PL; j++)
#pragma unroll
            for (int w = 0; w < C::WORDS; w++) {
                cur[j][0][w] = nxt[j][0][w];
                cur[j][1][w] = nxt[j][1][w];
            }
    }
}

#define SPARSA_QUEST_NAMED(NAME, T, D)                                                                                  \
    extern "C" __global__ void __launch_bounds__(256, 2) NAME(                                                         \
        const T* q, const T* bounds, float* scores, const int* meta, const int* counts, const sparsa::DecodeScalars s, \
        long long bsp, long long bsh, long long bss, int width) {                                                      \
        sparsa::gridDependencyWait();                                                                                  \
        questBounds<T, D>(q, bounds, scores, meta, counts, s, bsp, bsh, bss, width);                                   \
    }

// e4m3 bounds (codes, K's scale per KV head by value) read by a query of QS (__half, __nv_bfloat16, or uint8_t: e4m3)
#define SPARSA_QUEST8_NAMED(NAME, QS, D)                                                                                \
    extern "C" __global__ void __launch_bounds__(256, 2) NAME(                                                         \
        const QS* q, const uint8_t* bounds, float* scores, const int* meta, const int* counts,                          \
        const sparsa::DecodeScalars s, long long bsp, long long bsh, long long bss, int width,                         \
        const sparsa::DecScales sc) {                                                                                   \
        sparsa::gridDependencyWait();                                                                                  \
        questBounds<uint8_t, D, QS>(q, bounds, scores, meta, counts, s, bsp, bsh, bss, width, &sc);                    \
    }

// Quest's choice per (b, g), one CTA of 1024 threads each: with n = ceil(L / P) pages and budget m, every page
// when n <= m, else the m - 1 best of the first n - 1 pages by bound (ties to the lower page; NaN below every
// number) and the last page, as ascending page indices into lists[(b * Hkv + g) * listWidth ...]: the order of
// DecodeSelector.best, (-score, index) ascending. No sort: a radix select (decChooseBestRegs, decChooseBest) finds
// the order key T of the (m-1)-th best page, then one compaction in page order keeps every page with a key below
// T and the lowest pages with key T until m - 1 are kept.
__device__ __forceinline__ unsigned int questOrder(float s) {
    int ordered;
    if (s != s) {
        ordered = (int)0x80000000;
    } else {
        int bits = __float_as_int(s == 0.f ? 0.f : s);
        ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
    }
    return ((unsigned int)~ordered) ^ 0x80000000u;  // ascending = best first
}

// Exclusive prefix sums over the CTA's threads of two counts (1024 threads), in thread order.
__device__ __forceinline__ void blockExclusiveScan2(int& a, int& b, int* warpA, int* warpB) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int ia = a, ib = b;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
        int ta = __shfl_up_sync(0xffffffffu, ia, off), tb = __shfl_up_sync(0xffffffffu, ib, off);
        if (lane >= off) {
            ia += ta;
            ib += tb;
        }
    }
    if (lane == 31) {
        warpA[warp] = ia;
        warpB[warp] = ib;
    }
    __syncthreads();
    if (warp == 0) {
        int wa = warpA[lane], wb = warpB[lane];
        int xa = wa, xb = wb;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            int ta = __shfl_up_sync(0xffffffffu, xa, off), tb = __shfl_up_sync(0xffffffffu, xb, off);
            if (lane >= off) {
                xa += ta;
                xb += tb;
            }
        }
        warpA[lane] = xa - wa;
        warpB[lane] = xb - wb;
    }
    __syncthreads();
    a = ia - a + warpA[warp];
    b = ib - b + warpB[warp];
}


// The radix passes' bin search, by the 32 lanes of one warp over a pass's 256 bins: the first bin where the running
// count reaches k (lane l sums bins 8l .. 8l + 7, a warp scan adds the lanes). Writes the key prefix with that bin's
// digit at shift, and the k left within the bin, to sPrefix and sK.
__device__ __forceinline__ void decFindBin256(const unsigned int* counts, int k, unsigned int prefix, int shift,
                                              unsigned int& sPrefix, int& sK) {
    const int lane = threadIdx.x & 31;
    unsigned int c[8], sum = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        c[j] = counts[lane * 8 + j];
        sum += c[j];
    }
    unsigned int incl = sum;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
        const unsigned int t = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += t;
    }
    const unsigned int hit = __ballot_sync(0xffffffffu, incl >= (unsigned int)k);
    if (lane == __ffs(hit) - 1) {
        unsigned int before = incl - sum;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (before + c[j] >= (unsigned int)k) {
                sPrefix = prefix | ((unsigned int)(lane * 8 + j) << shift);
                sK = k - (int)before;
                break;
            }
            before += c[j];
        }
    }
}

// The shared memory of decChooseBestRegs.
struct ChooseRegsShared {
    unsigned int bins[2048];  // the wide histogram, then the keys of its chosen bin; 8-bit passes: 256
    unsigned int warpLo[32], warpHi[32];
    int warpA[32], warpB[32];
    unsigned int prefix;
    int k, inBin, appended;
};

// One instance for every decChooseBestRegs<KPT> of a kernel (a template's own __shared__ variables are one per
// instantiation).
__device__ __forceinline__ ChooseRegsShared& chooseRegsShared() {
    __shared__ ChooseRegsShared shared;
    return shared;
}

// decChooseBest for at most KPT (8 or 16) candidates per thread of a CTA (n <= KPT * blockDim.x, blockDim.x =
// 1024): the same choice, with each thread's KPT consecutive candidates held in registers, so that no pass
// rereads them and the compaction needs no second scan. The order key T of the k-th best comes from one
// histogram of up to 11 bits of u - lo (2048 bins spread over the keys' own range), then the keys of T's bin
// ranked against each other (when it holds at most 256, as it does unless many scores are equal; else 8-bit
// passes as in decChooseBest). One CTA runs per (sequence, head) while the other SMs wait, so its barriers and
// serial steps are what it costs: 8 barriers here, against 14 or more in decChooseBest
// (kernels-cuda/bench/choice_bench.cu times the two).
template <int KPT>
__device__ __forceinline__ void decChooseBestRegs(const float* sc, int n, int k, int* list, int offset) {
    constexpr int RANKED = 256;  // most keys of T's bin ranked against each other (as many steps per thread)
    ChooseRegsShared& sm = chooseRegsShared();
    unsigned int* const bins = sm.bins;
    unsigned int* const warpLo = sm.warpLo;
    unsigned int* const warpHi = sm.warpHi;
    int* const warpA = sm.warpA;
    int* const warpB = sm.warpB;
    unsigned int& sPrefix = sm.prefix;
    int &sK = sm.k, &sInBin = sm.inBin, &sAppended = sm.appended;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, first = tid * KPT;
    // cleared here: the barrier after the smallest and largest keys orders this before the first pass
    bins[2 * tid] = 0;
    bins[2 * tid + 1] = 0;
    if (tid == 0) sAppended = 0;
    unsigned int o[KPT];
    float v[KPT];
#pragma unroll
    for (int j = 0; j < KPT; j++) v[j] = first + j < n ? sc[first + j] : 0.f;
    unsigned int lo = 0xFFFFFFFFu, hi = 0u;
#pragma unroll
    for (int j = 0; j < KPT; j++) {
        o[j] = questOrder(v[j]);
        if (first + j < n) {
            lo = min(lo, o[j]);
            hi = max(hi, o[j]);
        }
    }
    lo = __reduce_min_sync(0xffffffffu, lo);
    hi = __reduce_max_sync(0xffffffffu, hi);
    if (lane == 0) {
        warpLo[warp] = lo;
        warpHi[warp] = hi;
    }
    __syncthreads();
    lo = __reduce_min_sync(0xffffffffu, warpLo[lane]);  // 32 warps: every warp reduces all of them
    hi = __reduce_max_sync(0xffffffffu, warpHi[lane]);
    // bits [0, top) of u - lo vary among the keys
    const int top = lo == hi ? 0 : 32 - __clz(hi - lo);
    unsigned int mask = top == 32 ? 0u : ~((1u << top) - 1u);
    unsigned int prefix = 0;
    int rest = top;
    if (top > 0) {
        const int wbits = top < 11 ? top : 11;
        const int shift = top - wbits;
#pragma unroll
        for (int j = 0; j < KPT; j++)
            if (first + j < n) atomicAdd(&bins[(o[j] - lo) >> shift], 1u);
        __syncthreads();
        // the bin where the running count reaches k: two bins per thread, warp sums, then every warp scans the 32
        // warp sums itself (one barrier between)
        const unsigned int c0 = bins[2 * tid], c1 = bins[2 * tid + 1];
        int incl = (int)(c0 + c1);
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            const int t = __shfl_up_sync(0xffffffffu, incl, off);
            if (lane >= off) incl += t;
        }
        if (lane == 31) warpA[warp] = incl;
        __syncthreads();
        int w = warpA[lane], wIncl = w;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            const int t = __shfl_up_sync(0xffffffffu, wIncl, off);
            if (lane >= off) wIncl += t;
        }
        const int warpBefore = __shfl_sync(0xffffffffu, wIncl - w, warp);
        const int before = warpBefore + incl - (int)(c0 + c1);
        if (before < k && k <= before + (int)(c0 + c1)) {
            const bool second = before + (int)c0 < k;
            sPrefix = (unsigned int)(2 * tid + (second ? 1 : 0)) << shift;
            sK = k - before - (second ? (int)c0 : 0);
            sInBin = (int)(second ? c1 : c0);
        }
        __syncthreads();
        prefix = sPrefix;
        k = sK;
        mask |= ((1u << wbits) - 1u) << shift;
        rest = shift;
        const int inBin = sInBin;
        if (rest > 0 && inBin <= RANKED) {
            // every thread has read the histogram: its words take the bin's keys (u - lo), in any order
#pragma unroll
            for (int j = 0; j < KPT; j++)
                if (first + j < n && ((o[j] - lo) & mask) == prefix) bins[atomicAdd(&sAppended, 1)] = o[j] - lo;
            __syncthreads();
            if (tid < inBin) {
                const unsigned int r = bins[tid];
                int less = 0, same = 0;
                for (int i = 0; i < inBin; i++) {
                    const unsigned int x = bins[i];
                    less += x < r;
                    same += x == r;
                }
                if (less < k && k <= less + same) {  // every key of this value writes the same
                    sPrefix = r;
                    sK = k - less;
                }
            }
            __syncthreads();
            prefix = sPrefix;
            k = sK;
            rest = 0;
        }
    }
    while (rest > 0) {  // 8-bit passes over the keys with the prefix found so far (many equal scores)
        const int wbits = rest < 8 ? rest : 8;
        const int shift = rest - wbits;
        const unsigned int nb = 1u << wbits;
        if (tid < 256) bins[tid] = 0;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < KPT; j++) {
            const unsigned int r = o[j] - lo;
            if (first + j < n && (r & mask) == prefix) atomicAdd(&bins[(r >> shift) & (nb - 1u)], 1u);
        }
        __syncthreads();
        if (tid < 32) decFindBin256(bins, k, prefix, shift, sPrefix, sK);
        __syncthreads();
        prefix = sPrefix;
        k = sK;
        mask |= (nb - 1u) << shift;
        rest = shift;
    }
    // keys below T all kept, and the first k with key T; a key's place is the count of kept keys before it
    const unsigned int T = lo + prefix;
    int less = 0, same = 0;
#pragma unroll
    for (int j = 0; j < KPT; j++) {
        if (first + j < n) {
            less += o[j] < T;
            same += o[j] == T;
        }
    }
    blockExclusiveScan2(less, same, warpA, warpB);
#pragma unroll
    for (int j = 0; j < KPT; j++) {
        if (first + j < n) {
            if (o[j] < T) {
                list[less + min(same, k)] = first + j + offset;
                less++;
            } else if (o[j] == T) {
                if (same < k) list[less + same] = first + j + offset;
                same++;
            }
        }
    }
}

// The k best of cand scores sc[0 .. cand) (0 < k < cand) as ascending indices (plus offset) into list[0 .. k): the order of
// DecodeSelector.best, (-score, index) ascending, NaN below every number. No sort: a radix select (passes of up to 8
// bits) finds the order key T of the k-th best, then one compaction in index order keeps every index with a key below
// T and the lowest with key T until k are kept. The digits are fitted to the keys: the candidates' order keys share
// their high bits down to the highest bit where the smallest and the largest differ, so the radix passes start there
// (scores of one sequence and head lie close together, and fixed 8-bit digits from bit 31 spent their first passes
// on one or two bins, all of a warp's lanes adding to the same counter); the compaction counts kept indices with warp
// ballots over rows of 32. Called by every thread of a CTA of 1024, or (CL > 1, sm_90 and up) by every thread of a
// cluster of CL such CTAs: CTA r takes the r-th slice of the candidates, the histograms, smallest and largest keys
// and the counts before each slice are exchanged through distributed shared memory, so that CL SMs share one
// (sequence, head)'s passes. sOrder holds the order keys of the first smemKeys candidates of the CTA's slice (0:
// none; the passes reread the scores of the others); with CL > 1, 256 more words after them (the summed histogram).
template <int CL>
__device__ __forceinline__ void decChooseBest(const float* sc, int cand, int k, int* list, unsigned int* sOrder,
                                              int smemKeys, int offset) {
    __shared__ unsigned int hist[256];
    __shared__ unsigned int sPrefix, sLo, sHi;
    __shared__ int sK;
    __shared__ int warpA[32], warpB[32];
    __shared__ unsigned int warpLo[32], warpHi[32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5;
    // this CTA's slice [s0, s0 + n) of the candidates (all of them for CL = 1)
    int rank = 0, s0 = 0, n = cand;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if constexpr (CL > 1) {
        rank = (int)cooperative_groups::this_cluster().block_rank();
        const int chunk = ((cand + CL - 1) / CL + 31) & ~31;
        s0 = min(cand, rank * chunk);
        n = min(cand, s0 + chunk) - s0;
    }
#else
    static_assert(CL == 1, "clusters need sm_90");
#endif
    sc += s0;
    // the passes below read every key several times: the first smemKeys from shared memory (one read of their
    // scores), the rest from the scores again
    const int cachedN = min(n, smemKeys);
    unsigned int lo = 0xFFFFFFFFu, hi = 0u;
    // eight loads in flight per thread before the first use; the keys' smallest and largest on the way
    for (int base = tid; base < n; base += 8 * blockDim.x) {
        float v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const int i = base + u * blockDim.x;
            v[u] = i < n ? sc[i] : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const int i = base + u * blockDim.x;
            if (i < n) {
                const unsigned int o = questOrder(v[u]);
                lo = min(lo, o);
                hi = max(hi, o);
                if (i < cachedN) sOrder[i] = o;
            }
        }
    }
    lo = __reduce_min_sync(0xffffffffu, lo);
    hi = __reduce_max_sync(0xffffffffu, hi);
    if (lane == 0) {
        warpLo[warp] = lo;
        warpHi[warp] = hi;
    }
    __syncthreads();
    if (warp == 0) {
        lo = __reduce_min_sync(0xffffffffu, lane < warps ? warpLo[lane] : 0xFFFFFFFFu);
        hi = __reduce_max_sync(0xffffffffu, lane < warps ? warpHi[lane] : 0u);
        if (lane == 0) {
            sLo = lo;
            sHi = hi;
        }
    }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if constexpr (CL > 1) {
        // every slice's smallest and largest key (an empty slice's are neutral); sLo and sHi are not written again
        cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
        cluster.sync();
        lo = 0xFFFFFFFFu;
        hi = 0u;
#pragma unroll
        for (int r = 0; r < CL; r++) {
            lo = min(lo, *cluster.map_shared_rank(&sLo, r));
            hi = max(hi, *cluster.map_shared_rank(&sHi, r));
        }
    } else
#endif
    {
        __syncthreads();
        lo = sLo;
        hi = sHi;
    }
    auto order = [&](int i) { return i < cachedN ? sOrder[i] : questOrder(sc[i]); };
    // f(order key of i) for i = first, first + stride, ... < end, eight keys loaded before the first is used (a
    // pass that waited for each key in turn was bound by the latency of its reads, at 128k candidates per CTA)
    auto scan = [&](int first, int end, int stride, auto&& f) {
        for (int base = first; base < end; base += 8 * stride) {
            unsigned int o[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const int i = base + u * stride;
                o[u] = i < end ? order(i) : 0xFFFFFFFFu;
            }
#pragma unroll
            for (int u = 0; u < 8; u++)
                if (base + u * stride < end) f(o[u]);
        }
    };
    // bits [0, top) vary among the keys; the bits above are every key's
    const int top = lo == hi ? 0 : 32 - __clz(lo ^ hi);
    unsigned int mask = top == 32 ? 0u : ~((1u << top) - 1u);
    unsigned int prefix = lo & mask;
    for (int rest = top; rest > 0;) {
        const int wbits = rest < 8 ? rest : 8;
        const int shift = rest - wbits;
        const unsigned int bins = 1u << wbits;
        if (tid < 256) hist[tid] = 0;
        __syncthreads();
        scan(tid, n, blockDim.x, [&](unsigned int u) {
            if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & (bins - 1u)], 1u);
        });
        const unsigned int* counts = hist;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if constexpr (CL > 1) {
            // the cluster's histogram, summed after every slice's is complete; no CTA clears its own for the next
            // pass before every CTA has read it
            unsigned int* total = sOrder + smemKeys;
            cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
            cluster.sync();
            if (tid < 256) {
                unsigned int t = 0;
#pragma unroll
                for (int r = 0; r < CL; r++) t += cluster.map_shared_rank(hist, r)[tid];
                total[tid] = t;
            }
            cluster.sync();
            counts = total;
        } else
#endif
        {
            __syncthreads();
        }
        if (tid < 32) decFindBin256(counts, k, prefix, shift, sPrefix, sK);
        __syncthreads();
        prefix = sPrefix;
        k = sK;
        mask |= (bins - 1u) << shift;
        rest = shift;
    }
    // keys below T = prefix all kept; k pages with key T, the lowest first; in page order. Warp w takes rows of
    // 32 consecutive candidates from its own range; a page's place is the count of kept pages before it.
    const unsigned int T = prefix;
    const int span = ((n + warps - 1) / warps + 31) & ~31;
    const int wlo = min(n, warp * span), whi = min(n, wlo + span);
    int less = 0, eq = 0;
    scan(wlo + lane, whi, 32, [&](unsigned int u) {
        less += u < T;
        eq += u == T;
    });
    less = __reduce_add_sync(0xffffffffu, less);
    eq = __reduce_add_sync(0xffffffffu, eq);
    int exLess = lane == 0 ? less : 0, exEq = lane == 0 ? eq : 0;
    blockExclusiveScan2(exLess, exEq, warpA, warpB);
    exLess = __shfl_sync(0xffffffffu, exLess, 0);
    exEq = __shfl_sync(0xffffffffu, exEq, 0);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if constexpr (CL > 1) {
        // the kept keys of the slices before this one: each CTA's totals (its last warp's exclusive count plus its
        // own), read by the later CTAs
        __shared__ int sTotLess, sTotEq;
        cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
        if (warp == warps - 1 && lane == 0) {
            sTotLess = exLess + less;
            sTotEq = exEq + eq;
        }
        cluster.sync();
        int bl = 0, be = 0;
        for (int r = 0; r < rank; r++) {
            bl += *cluster.map_shared_rank(&sTotLess, r);
            be += *cluster.map_shared_rank(&sTotEq, r);
        }
        exLess += bl;
        exEq += be;
    }
#endif
    const unsigned int below = (1u << lane) - 1u;
    for (int row0 = wlo; row0 < whi; row0 += 8 * 32) {
        unsigned int o[8];
#pragma unroll
        for (int r = 0; r < 8; r++) {
            const int i = row0 + 32 * r + lane;
            o[r] = i < whi ? order(i) : 0xFFFFFFFFu;
        }
#pragma unroll
        for (int r = 0; r < 8; r++) {
            const int i = row0 + 32 * r + lane;  // rows past whi have no lane in range: their ballots are empty
            const bool isLess = i < whi && o[r] < T, isEq = i < whi && o[r] == T;
            const unsigned int bl = __ballot_sync(0xffffffffu, isLess), be = __ballot_sync(0xffffffffu, isEq);
            const int eqBefore = exEq + __popc(be & below);
            if (isLess || (isEq && eqBefore < k)) list[exLess + __popc(bl & below) + min(eqBefore, k)] = s0 + i + offset;
            exLess += __popc(bl);
            exEq += __popc(be);
        }
    }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if constexpr (CL > 1) cooperative_groups::this_cluster().sync();  // no CTA leaves while another may read its memory
#endif
}

// Quest's choice per (b, g): with n = ceil(L / P) pages and budget m, every page when n <= m, else the m - 1 best of
// the first n - 1 pages by bound and the last page, as ascending page indices into lists[(b * Hkv + g) * listWidth
// ...]. One CTA chooses from up to 16384 candidates in registers (decChooseBestRegs), from more by decChooseBest;
// REGS = false takes decChooseBest at every width (kernels-cuda/bench/choice_bench.cu compares the two).
//  sparsa_quest_topk: one CTA of 1024 threads per (b, g).
//  sparsa_quest_topk_c8 (sm_90 and up): one cluster of eight such CTAs per (b, g), each taking an eighth of the
//      candidate pages; smemKeys then counts per CTA, and the launch gives 1 KiB more shared memory.
template <int CL, bool REGS = true>
__device__ __forceinline__ void decQuestChoose(const float* scores, int width, int* meta, const sparsa::DecodeScalars& S,
                                               int budget, int smemKeys, unsigned int* sOrder) {
    const int tid = threadIdx.x;
    const int e = blockIdx.x / CL, b = e / (int)S.kvHeads;
    const bool first = blockIdx.x % CL == 0;  // the CTA that writes the pages outside the choice
    const int length = meta[b];
    const int P = 1 << S.pageShift;
    const int n = (length + P - 1) / P;
    int* list = meta + S.oLists + (long long)e * S.listWidth;
    if (n <= budget) {
        if (first)
            for (int i = tid; i < n; i += blockDim.x) list[i] = i;
        return;
    }
    const int cand = n - 1;
    if (budget > 1) {
        if (CL == 1 && REGS && cand <= 8 * (int)blockDim.x)
            decChooseBestRegs<8>(scores + (long long)e * width, cand, budget - 1, list, 0);
        else if (CL == 1 && REGS && cand <= 16 * (int)blockDim.x)
            decChooseBestRegs<16>(scores + (long long)e * width, cand, budget - 1, list, 0);
        else
            decChooseBest<CL>(scores + (long long)e * width, cand, budget - 1, list, sOrder, smemKeys, 0);
    }
    if (tid == 0 && first) list[budget - 1] = cand;
}

extern "C" __global__ void __launch_bounds__(1024) sparsa_quest_topk(const float* scores, int width, int* meta,
                                                                     const sparsa::DecodeScalars S, int budget,
                                                                     int smemKeys) {
    extern __shared__ unsigned int sOrder[];  // the candidates' order keys, when the launch gave room for them
    sparsa::gridDependencyWait();
    gridDependentsMayLaunch();
    decQuestChoose<1>(scores, width, meta, S, budget, smemKeys, sOrder);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(1024)
    sparsa_quest_topk_c8(const float* scores, int width, int* meta, const sparsa::DecodeScalars S, int budget,
                         int smemKeys) {
    extern __shared__ unsigned int sOrder[];
    sparsa::gridDependencyWait();
    gridDependentsMayLaunch();
    decQuestChoose<8>(scores, width, meta, S, budget, smemKeys, sOrder);
}
#else
// before sm_90 there are no clusters: the host launches sparsa_quest_topk there
extern "C" __global__ void __launch_bounds__(1024) sparsa_quest_topk_c8(const float*, int, int*,
                                                                        const sparsa::DecodeScalars, int, int) {
    __trap();
}
#endif

// Top-k's key list per (b, g) into lists[(b * Hkv + g) * listWidth ...] of meta: the sinks [0, from), then the
// candidates top-k keeps (the tokens best of [from, to) by score, decChooseBestRegs up to 16384 candidates per CTA,
// else decChooseBest, when it ranks them; else all of them,
// or none for tokens = 0), then the window [to, L). units (at meta + oUnits, four ints per (b, g)): from, how many
// candidates it ranks (0: none), to, the list's length; scores[e * width + i]: the score of key from + i.
//  sparsa_decode_topk_choose: one CTA of 1024 threads per (b, g).
//  sparsa_decode_topk_choose_c8 (sm_90 and up): one cluster of eight such CTAs per (b, g), each taking an eighth of
//      the candidates (at batch 1 one CTA per head left all but eight SMs idle through up to seven passes over
//      128k scores); smemKeys then counts per CTA, and the launch gives 1 KiB more shared memory.
template <int CL>
__device__ __forceinline__ void decTopkChoose(const float* scores, int width, int* meta, const sparsa::DecodeScalars& S,
                                              int tokens, long long oUnits, int smemKeys, unsigned int* sOrder) {
    const int e = blockIdx.x / CL, b = e / (int)S.kvHeads, tid = threadIdx.x;
    const bool first = blockIdx.x % CL == 0;  // the CTA that writes the sinks and the window
    const int length = meta[b];
    const int* u = meta + oUnits + 4 * (long long)e;
    const int from = u[0], ranked = u[1], to = u[2];
    int* list = meta + S.oLists + (long long)e * S.listWidth;
    if (first)
        for (int i = tid; i < from; i += blockDim.x) list[i] = i;
    int kept = 0;
    if (ranked > 0) {
        if (CL == 1 && ranked <= 8 * (int)blockDim.x)
            decChooseBestRegs<8>(scores + (long long)e * width, ranked, tokens, list + from, from);
        else if (CL == 1 && ranked <= 16 * (int)blockDim.x)
            decChooseBestRegs<16>(scores + (long long)e * width, ranked, tokens, list + from, from);
        else
            decChooseBest<CL>(scores + (long long)e * width, ranked, tokens, list + from, sOrder, smemKeys, from);
        kept = tokens;
    } else {
        if (tokens > 0 && first)
            for (int i = tid; i < to - from; i += blockDim.x) list[from + i] = from + i;
        kept = tokens > 0 ? to - from : 0;
    }
    if (first)
        for (int i = tid; i < length - to; i += blockDim.x) list[from + kept + i] = to + i;
}

extern "C" __global__ void __launch_bounds__(1024) sparsa_decode_topk_choose(const float* scores, int width, int* meta,
                                                                             const sparsa::DecodeScalars S, int tokens,
                                                                             long long oUnits, int smemKeys) {
    extern __shared__ unsigned int sOrder[];
    sparsa::gridDependencyWait();
    gridDependentsMayLaunch();
    decTopkChoose<1>(scores, width, meta, S, tokens, oUnits, smemKeys, sOrder);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(1024)
    sparsa_decode_topk_choose_c8(const float* scores, int width, int* meta, const sparsa::DecodeScalars S, int tokens,
                                 long long oUnits, int smemKeys) {
    extern __shared__ unsigned int sOrder[];
    sparsa::gridDependencyWait();
    gridDependentsMayLaunch();
    decTopkChoose<8>(scores, width, meta, S, tokens, oUnits, smemKeys, sOrder);
}
#else
// before sm_90 there are no clusters: the host launches sparsa_decode_topk_choose there
extern "C" __global__ void __launch_bounds__(1024) sparsa_decode_topk_choose_c8(const float*, int, int*,
                                                                                const sparsa::DecodeScalars, int,
                                                                                long long, int) {
    __trap();
}
#endif
