// How fast can one kernel read memory on this GPU, and with which loads? A question for the decode kernel, which
// streams K and V once (docs/PERFORMANCE.md, "What SDPA's decode kernel does differently"). Without Java: R CTAs
// (default 128, one per SM: their shared memory keeps a second one off), CTA i reading its own contiguous region of
// MiB megabytes, in one of these ways:
//   ldg      each warp its contiguous share, 16-byte __ldcg loads into registers, eight in flight per thread
//   cp       each warp its share through its own ring of STAGES stages of STAGE bytes, 16-byte cp.async.cg
//            (as the decode kernel does), with the L2 prefetch hint HINT (0, 128 or 256 bytes)
//   bulk     the same rings filled by one cp.async.bulk per stage (one lane issues it, an mbarrier per stage)
//   block    the CTA reads its region in blocks of STAGE bytes, STAGES blocks in flight, every thread copying
//            16 bytes at a time with cp.async.cg (a CTA-wide barrier per block, as FlashAttention-2's loads)
// Every stage is touched in shared memory after it lands (one word per lane), so no load is dead. Per run: the
// kernel's median time of 7 launches (CUDA events, a 256 MiB memset before each to flush the L2) and the bytes read
// per second. Build and run (sm_90a):
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o stream-read kernels-cuda/bench/stream-read.cu
//   ./stream-read [MiB per CTA, default 32] [CTAs, default 128]
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <algorithm>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

__device__ __forceinline__ uint32_t sAddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
template <int HINT> __device__ __forceinline__ void cp16(void* dst, const void* src) {
    if constexpr (HINT == 128) asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16;" ::"r"(sAddr(dst)), "l"(src));
    else if constexpr (HINT == 256) asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;" ::"r"(sAddr(dst)), "l"(src));
    else asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(sAddr(dst)), "l"(src));
}
__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cpWait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }
__device__ __forceinline__ void mbarInit(uint64_t* b) { asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(sAddr(b))); }
__device__ __forceinline__ void mbarExpect(uint64_t* b, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sAddr(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk(void* dst, const void* src, uint32_t bytes, uint64_t* b) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(sAddr(dst)), "l"(src), "r"(bytes), "r"(sAddr(b)) : "memory");
}
__device__ __forceinline__ void mbarWait(uint64_t* b, uint32_t phase) {
    asm volatile("{\n .reg .pred p;\n W%=:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra W%=;\n}"
                 ::"r"(sAddr(b)), "r"(phase) : "memory");
}

__global__ void ldgRead(const uint4* p, size_t perCta, uint32_t* sink) {
    extern __shared__ __align__(128) unsigned char smem[];
    const size_t warps = blockDim.x / 32, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t share = perCta / warps / 256 * 256, begin = blockIdx.x * perCta + w * share, end = begin + share;
    uint32_t acc = 0;
    for (size_t i = begin + lane; i < end; i += 8 * 32) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = __ldcg(p + i + u * 32);
#pragma unroll
        for (int u = 0; u < 8; u++) acc ^= v[u].x ^ v[u].w;
    }
    if (acc == 0x9e3779b9u) sink[0] = acc + smem[threadIdx.x];
}

// per warp: a ring of STAGES stages of `stage` bytes; cp.async (BULK = false) or one bulk copy per stage
template <bool BULK, int HINT, int STAGES>
__global__ void ringRead(const uint4* p, size_t perCta, int stage, uint32_t* sink) {
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ __align__(8) uint64_t bars[32 * STAGES];
    const int warps = blockDim.x / 32, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t sv = stage / 16;                    // 16-byte vectors per stage
    const size_t share = perCta / warps / sv * sv;   // whole stages
    const uint4* src = p + blockIdx.x * perCta + w * share;
    const int n = (int)(share / sv);
    unsigned char* ring = smem + (size_t)w * STAGES * stage;
    uint64_t* bar = bars + w * STAGES;
    if (BULK && lane < STAGES) mbarInit(bar + lane);
    if (BULK) asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    auto issue = [&](int t) {
        unsigned char* dst = ring + (t % STAGES) * stage;
        if constexpr (BULK) {
            if (lane == 0) {
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the stage's last reads before the copy
                mbarExpect(bar + t % STAGES, stage);
                bulk(dst, src + t * sv, stage, bar + t % STAGES);
            }
        } else {
            for (size_t i = lane; i < sv; i += 32) cp16<HINT>(dst + i * 16, src + t * sv + i);
            cpCommit();
        }
    };
    for (int t = 0; t < STAGES - 1 && t < n; t++) issue(t);
    uint32_t acc = 0;
    for (int t = 0; t < n; t++) {
        if (t + STAGES - 1 < n) issue(t + STAGES - 1); else if (!BULK) cpCommit();
        if constexpr (BULK) mbarWait(bar + t % STAGES, (t / STAGES) & 1);
        else cpWait<STAGES - 1>();
        __syncwarp();
        acc ^= reinterpret_cast<const uint32_t*>(ring + (t % STAGES) * stage)[lane * (stage / 128)];
        __syncwarp();
    }
    if (acc == 0x9e3779b9u) sink[0] = acc;
}

// the CTA reads blocks of `block` bytes, STAGES in flight, a barrier per block
template <int STAGES>
__global__ void blockRead(const uint4* p, size_t perCta, int block, uint32_t* sink) {
    extern __shared__ __align__(128) unsigned char smem[];
    const size_t bv = block / 16;
    const uint4* src = p + blockIdx.x * perCta;
    const int n = (int)(perCta / bv);
    auto issue = [&](int t) {
        unsigned char* dst = smem + (size_t)(t % STAGES) * block;
        for (size_t i = threadIdx.x; i < bv; i += blockDim.x) cp16<128>(dst + i * 16, src + t * bv + i);
        cpCommit();
    };
    for (int t = 0; t < STAGES - 1 && t < n; t++) issue(t);
    uint32_t acc = 0;
    for (int t = 0; t < n; t++) {
        if (t + STAGES - 1 < n) issue(t + STAGES - 1); else cpCommit();
        cpWait<STAGES - 1>();
        __syncthreads();
        acc ^= reinterpret_cast<const uint32_t*>(smem + (size_t)(t % STAGES) * block)[threadIdx.x * (block / 4 / blockDim.x)];
        __syncthreads();
    }
    if (acc == 0x9e3779b9u) sink[0] = acc;
}

int main(int argc, char** argv) {
    const size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 32;
    const int ctas = argc > 2 ? atoi(argv[2]) : 128;
    if (mib < 1 || ctas < 1) { fprintf(stderr, "stream-read: need MiB >= 1 and CTAs >= 1\n"); return 2; }
    const size_t perCta = mib << 20, total = perCta * ctas, vecs = perCta / 16;
    uint4* buf; uint32_t* sink; void* flush;
    CK(cudaMalloc(&buf, total)); CK(cudaMemset(buf, 1, total)); CK(cudaMalloc(&sink, 4)); CK(cudaMalloc(&flush, 256 << 20));
    cudaEvent_t a, b; CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    printf("# %d CTAs, %zu MiB per CTA, %.3f GB in all; median of 7 launches, L2 flushed before each\n", ctas, mib, total / 1e9);
    printf("# %-44s %10s %8s\n", "way", "median_ms", "GB/s");
    // bytes a way reads: each warp (or the CTA) reads whole units of `unit` bytes of its share
    auto readBytes = [&](int warps, size_t unit) { return (double)ctas * warps * (perCta / warps / unit * unit); };
    auto run = [&](const char* name, double bytes, auto kernel, int threads, size_t smem, auto... args) {
        CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)std::max<size_t>(smem, 200 << 10)));
        std::vector<float> ms;
        for (int it = -1; it < 7; it++) {
            CK(cudaMemsetAsync(flush, it, 256 << 20));
            CK(cudaEventRecord(a));
            kernel<<<ctas, threads, std::max<size_t>(smem, 200 << 10)>>>(buf, vecs, args...);
            CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b)); CK(cudaGetLastError());
            float t; CK(cudaEventElapsedTime(&t, a, b)); if (it >= 0) ms.push_back(t);
        }
        std::sort(ms.begin(), ms.end());
        printf("  %-44s %10.4f %8.0f\n", name, ms[3], bytes / (ms[3] * 1e6));
    };
    for (int w : {4, 8, 12}) {
        char n[64]; snprintf(n, sizeof n, "ldg, %d warps", w); run(n, readBytes(w, 4096), ldgRead, 32 * w, 0, sink);
    }
    for (int w : {4, 8, 12}) {
        char n[64];
        snprintf(n, sizeof n, "cp, %d warps, 2 x 8 KB, no hint", w); run(n, readBytes(w, 8192), ringRead<false, 0, 2>, 32 * w, (size_t)w * 2 * 8192, 8192, sink);
        snprintf(n, sizeof n, "cp, %d warps, 2 x 8 KB, L2::128B", w); run(n, readBytes(w, 8192), ringRead<false, 128, 2>, 32 * w, (size_t)w * 2 * 8192, 8192, sink);
        snprintf(n, sizeof n, "bulk, %d warps, 2 x 8 KB", w); run(n, readBytes(w, 8192), ringRead<true, 0, 2>, 32 * w, (size_t)w * 2 * 8192, 8192, sink);
    }
    run("cp, 12 warps, 4 x 4 KB, L2::128B", readBytes(12, 4096), ringRead<false, 128, 4>, 384, 12 * 4 * 4096, 4096, sink);
    run("bulk, 12 warps, 4 x 4 KB", readBytes(12, 4096), ringRead<true, 0, 4>, 384, 12 * 4 * 4096, 4096, sink);
    run("bulk, 4 warps, 4 x 12 KB", readBytes(4, 12288), ringRead<true, 0, 4>, 128, 4 * 4 * 12288, 12288, sink);
    run("block, 4 warps, 2 x 32 KB", readBytes(1, 32768), blockRead<2>, 128, 2 * 32768, 32768, sink);
    run("block, 4 warps, 3 x 32 KB", readBytes(1, 32768), blockRead<3>, 128, 3 * 32768, 32768, sink);
    run("block, 8 warps, 3 x 64 KB", readBytes(1, 65536), blockRead<3>, 256, 3 * 65536, 65536, sink);
    run("block, 12 warps, 3 x 48 KB", readBytes(1, 49152), blockRead<3>, 384, 3 * 49152, 49152, sink);
    CK(cudaDeviceSynchronize());
    return 0;
}
