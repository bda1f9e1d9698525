// Do the SMs of a GPU stream memory at equal rates? A question for the decode kernel, whose CTAs each read the same
// number of bytes yet finish apart (docs/PERFORMANCE.md, "What SDPA's decode kernel does differently"). Without Java:
// one CTA of 384 threads per SM (its shared memory keeps a second one off), each reading one contiguous region of a
// buffer with 16-byte loads, eight in flight per thread, and recording its SM and its start and end time. Runs:
//   static P   CTA i reads region (i * P) mod R (R = the CTAs): the same regions on other SMs for each P, so a
//              duration that follows the SM, not the region, says the rate is the SM's
//   dynamic C  the CTAs take chunks of C bytes from a counter until the buffer is read: the balance a work queue gives
// Per run: the kernel's time (CUDA events, median of 5 after a warm-up, L2 flushed by a memset before each), the
// bytes read per second, and the spread of the CTAs' end times (min, median, max, relative to the kernel's start).
// Build and run (sm_90a; any nvcc 12 or 13):
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o stream-balance kernels-cuda/bench/stream-balance.cu
//   ./stream-balance [MiB per CTA, default 32] [CTAs, default 128]
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <algorithm>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

__device__ __forceinline__ uint64_t now() { uint64_t t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }
__device__ __forceinline__ unsigned smid() { unsigned s; asm volatile("mov.u32 %0, %%smid;" : "=r"(s)); return s; }

// the threads of a CTA read [begin, end) (16-byte vectors) in strides of the CTA, eight loads in flight per thread
__device__ __forceinline__ uint32_t readRange(const uint4* p, size_t begin, size_t end) {
    uint32_t acc = 0;
    const size_t step = blockDim.x;
    size_t i = begin + threadIdx.x;
    for (; i + 7 * step < end; i += 8 * step) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = __ldcg(p + i + u * step);
#pragma unroll
        for (int u = 0; u < 8; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < end; i += step) { uint4 v = __ldcg(p + i); acc ^= v.x ^ v.y ^ v.z ^ v.w; }
    return acc;
}

__global__ void __launch_bounds__(384, 1) staticRead(const uint4* p, size_t perCta, int perm, int regions,
                                                     unsigned long long* rec, uint32_t* sink) {
    extern __shared__ unsigned char keepOneCtaPerSm[];
    const uint64_t t0 = now();
    const size_t r = ((size_t)blockIdx.x * perm) % regions;
    uint32_t acc = readRange(p, r * perCta, (r + 1) * perCta);
    if (acc == 0x9e3779b9u) sink[0] = acc + keepOneCtaPerSm[threadIdx.x];
    __syncthreads();
    if (threadIdx.x == 0) { rec[3 * blockIdx.x] = smid(); rec[3 * blockIdx.x + 1] = t0; rec[3 * blockIdx.x + 2] = now(); }
}

__global__ void __launch_bounds__(384, 1) dynamicRead(const uint4* p, size_t total, size_t chunk, unsigned* counter,
                                                      unsigned* done, unsigned long long* rec, uint32_t* sink) {
    extern __shared__ unsigned char keepOneCtaPerSm[];
    __shared__ unsigned next;
    const uint64_t t0 = now();
    uint32_t acc = 0;
    for (;;) {
        if (threadIdx.x == 0) next = atomicAdd(counter, 1u);
        __syncthreads();
        const size_t c = next;
        __syncthreads();
        if (c * chunk >= total) break;
        acc ^= readRange(p, c * chunk, (c + 1) * chunk < total ? (c + 1) * chunk : total);
    }
    if (acc == 0x9e3779b9u) sink[0] = acc + keepOneCtaPerSm[threadIdx.x];
    if (threadIdx.x == 0) {
        rec[3 * blockIdx.x] = smid(); rec[3 * blockIdx.x + 1] = t0; rec[3 * blockIdx.x + 2] = now();
        if (atomicAdd(done, 1u) == gridDim.x - 1) { *counter = 0; *done = 0; }  // ready for the next launch
    }
}

int main(int argc, char** argv) {
    const size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 32;
    const int ctas = argc > 2 ? atoi(argv[2]) : 128;
    if (mib < 1 || ctas < 1) { fprintf(stderr, "stream-balance: need MiB >= 1 and CTAs >= 1\n"); return 2; }
    const size_t perCta = mib << 20, total = perCta * ctas, vecs = perCta / 16;
    uint4* buf; unsigned long long* rec; uint32_t* sink; unsigned* ctr; void* flush;
    CK(cudaMalloc(&buf, total)); CK(cudaMemset(buf, 1, total));
    CK(cudaMalloc(&rec, 3 * sizeof(unsigned long long) * ctas)); CK(cudaMalloc(&sink, 4));
    CK(cudaMalloc(&ctr, 8)); CK(cudaMemset(ctr, 0, 8));
    CK(cudaMalloc(&flush, 256 << 20));
    const int smem = 200 * 1024;
    CK(cudaFuncSetAttribute(staticRead, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    CK(cudaFuncSetAttribute(dynamicRead, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    cudaEvent_t a, b; CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    printf("# %d SMs, %d CTAs of 384 threads, %zu MiB per CTA, %.2f GB in all\n", sms, ctas, mib, total / 1e9);
    printf("# run                 median_ms   GB/s   CTA end: min / median / max (ms after the first start)\n");
    std::vector<unsigned long long> h(3 * ctas);
    std::vector<std::vector<double>> bySm(sms);  // per SM: its CTA's duration in each static run
    auto run = [&](const char* name, auto launch) {
        std::vector<float> ms;
        for (int it = -1; it < 5; it++) {
            CK(cudaMemsetAsync(flush, it, 256 << 20));
            CK(cudaEventRecord(a)); launch(); CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
            float t; CK(cudaEventElapsedTime(&t, a, b)); if (it >= 0) ms.push_back(t);
        }
        CK(cudaMemcpy(h.data(), rec, h.size() * 8, cudaMemcpyDeviceToHost));
        std::sort(ms.begin(), ms.end());
        unsigned long long first = ~0ull; for (int i = 0; i < ctas; i++) first = std::min(first, h[3 * i + 1]);
        std::vector<double> ends; for (int i = 0; i < ctas; i++) ends.push_back((h[3 * i + 2] - first) / 1e6);
        std::vector<double> e2 = ends; std::sort(e2.begin(), e2.end());
        printf("%-20s %10.4f %7.0f   %.4f / %.4f / %.4f\n", name, ms[2], total / (ms[2] * 1e6), e2[0], e2[ctas / 2], e2[ctas - 1]);
        return ends;
    };
    for (int perm : {1, 37, 85}) {
        char name[32]; snprintf(name, sizeof name, "static P=%d", perm);
        run(name, [&] { staticRead<<<ctas, 384, smem>>>(buf, vecs, perm, ctas, rec, sink); });
        for (int i = 0; i < ctas; i++) bySm[h[3 * i]].push_back((h[3 * i + 2] - h[3 * i + 1]) / 1e6);  // its duration
    }
    // does a slow CTA stay slow on the same SM when it reads another region? rank correlation of the per-SM durations
    auto ranks = [](std::vector<double> v) { std::vector<int> idx(v.size()); for (size_t i = 0; i < v.size(); i++) idx[i] = i;
        std::sort(idx.begin(), idx.end(), [&](int x, int y) { return v[x] < v[y]; }); std::vector<double> r(v.size());
        for (size_t i = 0; i < v.size(); i++) r[idx[i]] = i; return r; };
    std::vector<double> e0, e1, e2;
    for (int s = 0; s < sms; s++) if (bySm[s].size() == 3) { e0.push_back(bySm[s][0]); e1.push_back(bySm[s][1]); e2.push_back(bySm[s][2]); }
    auto spearman = [&](const std::vector<double>& x, const std::vector<double>& y) {
        std::vector<double> rx = ranks(x), ry = ranks(y); double n = rx.size(), d = 0;
        for (size_t i = 0; i < rx.size(); i++) d += (rx[i] - ry[i]) * (rx[i] - ry[i]);
        return 1 - 6 * d / (n * (n * n - 1)); };
    printf("# per-SM CTA durations, rank correlation between static runs (same SM, other region): P1-P37 %.2f, P1-P85 %.2f, "
           "P37-P85 %.2f over %zu SMs\n", spearman(e0, e1), spearman(e0, e2), spearman(e1, e2), e0.size());
    for (size_t chunkKib : {4096, 1024, 256}) {
        char name[32]; snprintf(name, sizeof name, "dynamic %zu KiB", chunkKib);
        run(name, [&] { dynamicRead<<<ctas, 384, smem>>>(buf, total / 16, (chunkKib << 10) / 16, ctr, ctr + 1, rec, sink); });
    }
    CK(cudaDeviceSynchronize());
    return 0;
}
