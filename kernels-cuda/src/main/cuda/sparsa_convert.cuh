// Sparsa: element conversion shared by the kernels: two f32 values packed into one 32-bit register of
// bf16 or f16 (the A fragments of P·V), and the stores of one or two output elements of the call's
// output kind (OUT_F32/OUT_F16/OUT_BF16 of sparsa_plan.cuh).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "sparsa_plan.cuh"

namespace sparsa {

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

}  // namespace sparsa
