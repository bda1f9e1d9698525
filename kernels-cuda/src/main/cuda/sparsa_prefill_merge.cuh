// Sparsa: the prefill merge kernel.
//
//  sparsa_merge: merges, through their LSEs, the f32 partials that the prefill kernels (sparsa_tc_*,
//      sparsa_wg_*, sparsa_f32_*) wrote to scratch for rows that several tiles hold (or none).
#pragma once
#include <stdint.h>
#include "sparsa_plan.cuh"
#include "sparsa_convert.cuh"

using namespace sparsa;

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
