// Sparsa: masks and the online softmax's pieces shared by the tensor-core prefill kernels (mma.sync and
// wgmma) and decode: the exponent on the special-function unit (log2 domain), the rows a thread holds,
// the predicate data hoisted out of the chunk loop, and the masking of one m-tile's chunk of scores
// (scale, soft-cap, log-weight, element predicate) that yields the row maxima of the softmax update.
#pragma once
#include <stdint.h>
#include "sparsa_plan.cuh"

#define SPARSA_LOG2E 1.4426950408889634f
#define SPARSA_LN2 0.6931471805599453f

namespace sparsa {

// 2^x on the special-function unit (flush-to-zero; 2^-inf = 0): the tensor-core path's exponent
__device__ __forceinline__ float fastExp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
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

// The keys k that row `row` (at absolute position pos) admits under the simple predicate (no stride or
// neighbourhood): [lo, hi] ∪ [0, sinkEnd), in key positions, lo >= 0 so that the -1 of a missing key
// never passes; empty for a missing row. The same pairs as admits() (band on delta = pos - k, causal
// before sinks).
__device__ __forceinline__ void keyInterval(int row, int pos, const PredFast& pf, int& lo, int& hi, int& sinkEnd) {
    if (row < 0) {
        lo = 1; hi = 0; sinkEnd = 0;
        return;
    }
    long long kLo = (long long)pos - pf.hi, kHi = (long long)pos - pf.lo;
    if (pf.causal && kHi > pos) kHi = pos;
    lo = kLo < 0 ? 0 : kLo > 0x7fffffffLL ? 0x7fffffff : (int)kLo;
    hi = kHi < -1 ? -1 : kHi > 0x7fffffffLL ? 0x7fffffff : (int)kHi;
    long long se = pf.sinks;
    if (pf.causal && se > (long long)pos + 1) se = (long long)pos + 1;
    sinkEnd = se < 0 ? 0 : (int)se;
}

// Scores of one m-tile's share of a chunk to the log2 domain: scale, soft-cap, log-weight, mask. Returns
// row maxima. The share is NB n8 blocks (8: all 64 keys) starting at key jOff of the chunk. GF: gathered
// and unconditional keys under the simple predicate take an interval test on their positions (the
// gather kernel) instead of the general element predicate; the same pairs, the same arithmetic.
template <int NB = 8, bool GF = false>
__device__ __forceinline__ void maskScores(float (&s)[NB][4], const RowPair& rp, const Chunk& cur, int mode, bool plain,
                                           const PredFast& pf, const int* L, const int* cKpos, const float* cLw,
                                           float scale, float cap, int keyLength, long long queryOffset, int t4,
                                           float& mxA, float& mxB, int jOff = 0) {
    mxA = -INFINITY;
    mxB = -INFINITY;
    if (plain) {
        // raw q·k: the caller folds scale·log2(e) into the exponent's FFMA (scale > 0 keeps the max)
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
            mxA = fmaxf(mxA, fmaxf(s[nb][0], s[nb][1]));
            mxB = fmaxf(mxB, fmaxf(s[nb][2], s[nb][3]));
        }
    } else if (GF && (mode == MODE_GATHER || mode == MODE_UNCOND) && pf.simple) {
        int loA, hiA, seA, loB, hiB, seB;
        if (mode == MODE_GATHER) {
            keyInterval(rp.rowA, rp.posA32, pf, loA, hiA, seA);
            keyInterval(rp.rowB, rp.posB32, pf, loB, hiB, seB);
        } else {
            // unconditional keys: every listed key, for rows that exist
            loA = rp.rowA >= 0 ? 0 : 1; hiA = rp.rowA >= 0 ? 0x7fffffff : 0; seA = 0;
            loB = rp.rowB >= 0 ? 0 : 1; hiB = rp.rowB >= 0 ? 0x7fffffff : 0; seB = 0;
        }
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = jOff + nb * 8 + 2 * t4 + (e & 1);
                int kp = cKpos[j];
                bool upper = e < 2;
                bool ok = upper ? ((kp >= loA && kp <= hiA) || (kp >= 0 && kp < seA))
                                : ((kp >= loB && kp <= hiB) || (kp >= 0 && kp < seB));
                float x = s[nb][e] * scale;
                if (cap > 0.f) x = cap * tanhf(x / cap);
                x += cLw[j];
                x = ok ? x * SPARSA_LOG2E : -INFINITY;
                s[nb][e] = x;
                if (upper) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
            }
        }
    } else if (mode != MODE_GATHER && mode != MODE_UNCOND && pf.simple) {
        // A block slice (keys base + j, no log-weights). Without stride or neighbourhood, a row admits
        // the keys of one interval (band ∩ causal) plus the sinks (still causal): in j, per row,
        // [lo, hi] ∪ [0, sinkEnd), so each element costs a few compares against constants.
        int loA, hiA, seA, loB, hiB, seB;
        rowInterval(rp.rowA, rp.posA32, cur, mode, pf, loA, hiA, seA);
        rowInterval(rp.rowB, rp.posB32, cur, mode, pf, loB, hiB, seB);
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = jOff + nb * 8 + 2 * t4 + (e & 1);
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
        for (int nb = 0; nb < NB; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = jOff + nb * 8 + 2 * t4 + (e & 1);
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

}  // namespace sparsa
