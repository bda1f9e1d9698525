// Sparsa: the exact f32 prefill kernel family on CUDA cores (FMA only, no tensor cores).
//
//  sparsa_f32_d<D>[v<DV>]: one CTA of 256 threads per (slice, 64-row sub-tile) work item, each 64-key
//      chunk of the plan processed as two halves of 32 keys through shared memory; scores, mask and the
//      online softmax in f32 with expf, the same plan semantics as sparsa_tc_* (sparsa_prefill_mma.cuh).
//
// This header holds the kernel body (f32Kernel) and SPARSA_F32_NAMED, the entry point's definition; the
// instantiations are rows of sparsa_kernels.def, expanded in sparsa_prefill_f32_merge.cu.
#pragma once
#include <stdint.h>
#include "sparsa_plan.cuh"

using namespace sparsa;

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
