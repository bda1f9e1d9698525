// Sparsa: the device-side view of an uploaded SparsePlan and the call's scalars.
//
// A plan travels as two pools (int and float) plus a work list. Layout l's description is 32 ints
// at ints[l * 32] (the LI_* indices below): offsets into the pools of its CSR arrays and its element
// predicate. The Java side (dev.sparsa.cuda.DevicePlan) writes exactly this format.
#pragma once
#include <stdint.h>

namespace sparsa {

enum LayoutInfoIndex {
    LI_ROW_START = 0, LI_ROW_COUNT = 1, LI_ROW_LIST_OFFSET = 2, LI_ROW_LIST = 3,
    LI_FULL_OFFSETS = 4, LI_FULL_BLOCKS = 5, LI_PARTIAL_OFFSETS = 6, LI_PARTIAL_BLOCKS = 7,
    LI_GATHER_OFFSETS = 8, LI_GATHER_KEYS = 9, LI_UNCOND_OFFSETS = 10, LI_UNCOND_KEYS = 11,
    LI_GATHER_LW = 12, LI_UNCOND_LW = 13,
    LI_CAUSAL = 14, LI_BAND_LO = 15, LI_BAND_HI = 16, LI_SINKS = 17, LI_STRIDE_M = 18, LI_STRIDE_R = 19,
    LI_STRIDE_ON_KEY = 20, LI_NEIGHBOURHOOD = 21, LI_QUERY_OFFSET = 22,
    LI_ROW_ENTRY_OFFSETS = 23, LI_ROW_ENTRIES = 24,
    LI_STRIDE = 32
};

// One work item (a CTA): 8 ints. entryBase < 0: write the output directly (the layout covers every
// row once); otherwise write f32 partials to scratch entries entryBase + i, merged later by LSE.
// A head-packed item (packHeads > 1, mma.sync kernel only) stacks packHeads consecutive query heads
// of one GQA group that share the layout, from the slice's head on: its row i is query head (slice's
// head + i / packRows), tile row rowBegin + i % packRows (scratch entry entryBase + (i / packRows) *
// packEntryStride + i % packRows), and every row reads the same gathered keys. packHeads 0 or 1: one
// head, rows rowBegin + i.
enum WorkIndex { W_SLICE = 0, W_LAYOUT = 1, W_TILE = 2, W_ROW_BEGIN = 3, W_ENTRY_BASE = 4, W_PACK_HEADS = 5,
                 W_PACK_ROWS = 6, W_PACK_ENTRY_STRIDE = 7, W_STRIDE = 8 };

// Output element kinds.
enum OutKind { OUT_F32 = 0, OUT_F16 = 1, OUT_BF16 = 2 };

// Chunk modes: how a chunk of up to 64 keys is admitted.
enum ChunkMode { MODE_FULL = 0, MODE_PARTIAL = 1, MODE_GATHER = 2, MODE_UNCOND = 3 };

// The call's scalars; all fields 8 bytes wide so that the host can fill a long[] in this order.
struct Scalars {
    long long qsb, qsh, qss;   // element strides of q: batch, head, sequence (dim stride is 1)
    long long ksb, ksh, kss;
    long long vsb, vsh, vss;
    long long osb, osh, oss;
    long long lsb, lsh, lss;   // lse strides (dim is 1)
    long long qHeads, group, queryLength, keyLength, blockCols, outKind, valueDim;
    double scale, softCap;
};

// ElementPredicate.admits, with the same 64-bit arithmetic as the Java record.
__device__ __forceinline__ bool admits(const int* L, long long qPos, int kPos, int keyLength) {
    long long delta = qPos - (long long)kPos;
    if (L[LI_CAUSAL] && delta < 0) return false;
    if (kPos < L[LI_SINKS]) return true;
    if (delta < (long long)L[LI_BAND_LO] || delta > (long long)L[LI_BAND_HI]) return false;
    int m = L[LI_STRIDE_M];
    if (m > 0) {
        long long x = L[LI_STRIDE_ON_KEY] ? (long long)kPos : delta;
        long long r = x % m;
        if (r < 0) r += m;
        if (r != L[LI_STRIDE_R]) return false;
    }
    int w = L[LI_NEIGHBOURHOOD];
    if (w > 0) {
        long long start = qPos - w / 2;
        long long hi = (long long)keyLength - w;
        if (start > hi) start = hi;
        if (start < 0) start = 0;
        return kPos >= start && kPos < start + w;
    }
    return true;
}

// A chunk of at most 64 keys of one tile: a 64-key slice of a full or partial block, or 64
// consecutive entries of the gathered or unconditional list.
struct Chunk {
    int mode;
    int base;            // first key of a block slice
    int count;           // valid keys (0..64)
    const int* keys;     // gathered/unconditional key positions, or null for block slices
    const float* lws;    // their log-weights
};

struct TileKeys {
    int fs, nFull, ps, nPart, gs, ge, us, ue, chunksPerBlock, nChunks;
};

__device__ __forceinline__ TileKeys tileKeys(const int* ints, const int* L, int tile, int blockCols) {
    TileKeys t;
    t.chunksPerBlock = (blockCols + 63) / 64;
    t.fs = ints[L[LI_FULL_OFFSETS] + tile];
    t.nFull = (ints[L[LI_FULL_OFFSETS] + tile + 1] - t.fs) * t.chunksPerBlock;
    t.ps = ints[L[LI_PARTIAL_OFFSETS] + tile];
    t.nPart = (ints[L[LI_PARTIAL_OFFSETS] + tile + 1] - t.ps) * t.chunksPerBlock;
    t.gs = ints[L[LI_GATHER_OFFSETS] + tile];
    t.ge = ints[L[LI_GATHER_OFFSETS] + tile + 1];
    t.us = ints[L[LI_UNCOND_OFFSETS] + tile];
    t.ue = ints[L[LI_UNCOND_OFFSETS] + tile + 1];
    t.nChunks = t.nFull + t.nPart + (t.ge - t.gs + 63) / 64 + (t.ue - t.us + 63) / 64;
    return t;
}

__device__ __forceinline__ Chunk chunkOf(const int* ints, const float* floats, const int* L, const TileKeys& t,
                                         int c, int blockCols, int keyLength) {
    Chunk ch;
    ch.keys = nullptr;
    ch.lws = nullptr;
    ch.base = 0;
    if (c < t.nFull + t.nPart) {
        bool full = c < t.nFull;
        int i = full ? c : c - t.nFull;
        int blk = full ? ints[L[LI_FULL_BLOCKS] + t.fs + i / t.chunksPerBlock]
                       : ints[L[LI_PARTIAL_BLOCKS] + t.ps + i / t.chunksPerBlock];
        int sub = (i % t.chunksPerBlock) * 64;
        ch.mode = full ? MODE_FULL : MODE_PARTIAL;
        ch.base = blk * blockCols + sub;
        int w = min(blockCols - sub, 64);
        w = min(w, keyLength - ch.base);
        ch.count = max(w, 0);
        return ch;
    }
    c -= t.nFull + t.nPart;
    int nGather = (t.ge - t.gs + 63) / 64;
    if (c < nGather) {
        int off = t.gs + c * 64;
        ch.mode = MODE_GATHER;
        ch.count = min(64, t.ge - off);
        ch.keys = ints + L[LI_GATHER_KEYS] + off;
        ch.lws = floats + L[LI_GATHER_LW] + off;
        return ch;
    }
    c -= nGather;
    int off = t.us + c * 64;
    ch.mode = MODE_UNCOND;
    ch.count = min(64, t.ue - off);
    ch.keys = ints + L[LI_UNCOND_KEYS] + off;
    ch.lws = floats + L[LI_UNCOND_LW] + off;
    return ch;
}

// The query row (index) of position i of a tile, or -1 past its row count.
__device__ __forceinline__ int tileRow(const int* ints, const int* L, int tile, int i) {
    int count = ints[L[LI_ROW_COUNT] + tile];
    if (i >= count) return -1;
    int listOff = ints[L[LI_ROW_LIST_OFFSET] + tile];
    return listOff < 0 ? ints[L[LI_ROW_START] + tile] + i : ints[L[LI_ROW_LIST] + listOff + i];
}

}  // namespace sparsa
