// chunk_read: how long one kernel takes to read 33.5 MB from device memory, by the size and order of the pieces it
// reads and by what the L2 cache holds when it starts. 33.5 MB is what Quest's page bounds kernel reads at batch
// 1 x 128k keys (8192 pages x 8 KV heads x 512 bytes of bf16 minima and maxima at D = 128), and about what the
// decode of its chosen pages reads, so this is the floor of each of those kernels as the decode harness times them.
//
// The kernel: warps take chunks in turn, four chunks in flight per warp, each chunk read by the warp's 32 lanes 16
// bytes at a time and folded into a register; 8 CTAs of 256 threads per SM.
// Chunk orders: sequential; random (the chunks of the region shuffled); for 512-byte chunks also "random pages,
// 8 warps": 4 KB pages in random order, their eight 512-byte pieces taken by eight consecutive warps (how the
// bounds kernel's CTAs of the eight KV heads read a page).
// Before each launch (15 launches, the first 3 not counted, median of the others between CUDA events):
//   memset:             a 256 MiB memset (what CudaDecodeBench and torch_decode_bench.py do with --l2-flush on):
//                       L2 is left full of dirty lines, which the timed kernel's reads write back
//   memset, then read:  the same memset, then a kernel that reads the 256 MiB buffer (L2 left clean)
//   no flush:           the timed kernel's own read just before (part of the 33.5 MB still in the 50 MB L2)
//   memset, DtoH:       the memset, then a 64 MiB device-to-host copy of another buffer
//
// Build: nvcc -O3 -std=c++17 -arch=sm_90a -o chunk_read kernels-cuda/bench/chunk_read.cu
// Run:   ./chunk_read   (one line per case: before-launch kind, chunk size, order, CTAs per SM, median us, GB/s)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#define CHECK(x)                                                                                 \
    do {                                                                                         \
        cudaError_t e_ = (x);                                                                    \
        if (e_ != cudaSuccess) {                                                                 \
            std::printf("%s: %s\n", #x, cudaGetErrorString(e_));                                 \
            return 1;                                                                            \
        }                                                                                        \
    } while (0)

// reads n 16-byte words, grid-stride
__global__ void readAll(const uint4* buf, long long n, float* sink) {
    uint32_t acc = 0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        uint4 v = buf[i];
        acc ^= v.x ^ v.w;
    }
    if (acc == 0x12345678u) sink[0] = 1.f;
}

// warp w reads chunks k = w, w + W, ...: chunk k starts at byte order[k] * 512 and spans `pieces` 512-byte pieces
__global__ void readChunks(const uint4* buf, const int* order, int chunks, int pieces, float* sink) {
    const int lane = threadIdx.x & 31, w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int W = (gridDim.x * blockDim.x) >> 5;
    uint32_t acc = 0;
    for (int k = w; k < chunks; k += 4 * W) {
        uint4 v[4][8];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int kk = k + u * W;
#pragma unroll
            for (int p = 0; p < 8; p++)
                v[u][p] = (kk < chunks && p < pieces) ? buf[(long long)order[kk] * 32 + p * 32 + lane] : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int p = 0; p < 8; p++) acc ^= v[u][p].x ^ v[u][p].y ^ v[u][p].z ^ v[u][p].w;
    }
    if (acc == 0x12345678u) sink[0] = 1.f;
}

int main() {
    const long long bytes = 33554432LL;  // 8192 pages x 8 KV heads x 512 bytes
    const int pieces512 = (int)(bytes / 512);
    const long long flushBytes = 256LL << 20, otherBytes = 64LL << 20;
    uint4* buf;
    float* sink;
    int* order;
    char* flush;
    char* other;
    void* host;
    CHECK(cudaMalloc(&buf, bytes));
    CHECK(cudaMalloc(&sink, 4));
    CHECK(cudaMalloc(&order, pieces512 * 4));
    CHECK(cudaMalloc(&flush, flushBytes));
    CHECK(cudaMalloc(&other, otherBytes));
    CHECK(cudaMallocHost(&host, otherBytes));
    CHECK(cudaMemset(buf, 1, bytes));
    CHECK(cudaMemset(other, 3, otherBytes));
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const int ctas = 8 * sms;
    std::mt19937 rng(7);
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    const char* kinds[] = {"memset", "memset, then read", "no flush", "memset, DtoH"};
    for (int kind = 0; kind < 4; kind++) {
        for (int pieces : {1, 8}) {
            for (int mode = 0; mode < 3; mode++) {
                if (mode == 2 && pieces != 1) continue;
                const int chunks = pieces512 / pieces;
                std::vector<int> o(chunks);
                if (mode == 2) {
                    std::vector<int> pg(pieces512 / 8);
                    for (int i = 0; i < (int)pg.size(); i++) pg[i] = i;
                    std::shuffle(pg.begin(), pg.end(), rng);
                    for (int i = 0; i < chunks; i++) o[i] = pg[i / 8] * 8 + i % 8;
                } else {
                    std::vector<int> c(chunks);
                    for (int i = 0; i < chunks; i++) c[i] = i;
                    if (mode == 1) std::shuffle(c.begin(), c.end(), rng);
                    for (int i = 0; i < chunks; i++) o[i] = c[i] * pieces;
                }
                CHECK(cudaMemcpy(order, o.data(), chunks * 4, cudaMemcpyHostToDevice));
                std::vector<float> ms;
                for (int it = 0; it < 15; it++) {
                    if (kind != 2) CHECK(cudaMemset(flush, it, flushBytes));
                    if (kind == 1) readAll<<<4 * sms, 512>>>((const uint4*)flush, flushBytes / 16, sink);
                    if (kind == 2) readChunks<<<ctas, 256>>>(buf, order, chunks, pieces, sink);
                    if (kind == 3) CHECK(cudaMemcpyAsync(host, other, otherBytes, cudaMemcpyDeviceToHost));
                    CHECK(cudaEventRecord(a));
                    readChunks<<<ctas, 256>>>(buf, order, chunks, pieces, sink);
                    CHECK(cudaEventRecord(b));
                    CHECK(cudaEventSynchronize(b));
                    float t;
                    CHECK(cudaEventElapsedTime(&t, a, b));
                    if (it >= 3) ms.push_back(t);
                }
                CHECK(cudaGetLastError());
                std::sort(ms.begin(), ms.end());
                const float med = ms[ms.size() / 2];
                std::printf("%-18s chunk %5d B  %-22s ctas/SM 8: median %.2f us, %.0f GB/s\n", kinds[kind], pieces * 512,
                            mode == 0 ? "sequential" : mode == 1 ? "random" : "random pages, 8 warps", med * 1e3,
                            bytes / (med * 1e-3) / 1e9);
            }
        }
    }
    return 0;
}
