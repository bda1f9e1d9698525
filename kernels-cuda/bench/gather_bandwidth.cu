// gather_bandwidth: how fast the SMs of one GPU can gather K and V rows named by per-row index lists into
// shared memory, with nothing else to do. It is the ceiling for the head-packed gather kernel (sparsa_tcg_*):
// a DSA-style top-2048 call at 32k keys, one KV head, moves 2048 x (256 + 256) bytes per (query row, KV head)
// from the L2-resident K and V (16 MiB) into shared memory, and at half the dense kernel's TFLOP/s it would have
// to do so at about 5.6 TB/s.
//
// Modes (all copy 64-key chunks of K and V rows, head dim 128, bf16-sized rows of 256 bytes, through a ring of
// STAGES chunk buffers in shared memory, the whole index list first staged in shared memory):
//   cp16  : cp.async of 16 bytes per thread and instruction (what sparsa_tcg_* does), commit groups per chunk
//   bulk  : cp.async.bulk of one 256-byte row per instruction, completion counted on an mbarrier per stage,
//           issued by ISSUERS threads
// Workloads:
//   gather: 32768-row K and V tables (8 MiB each, L2-resident), random sorted lists of 2048 distinct keys
//   stream: K and V tables of 4M rows (1 GiB each), each CTA reads 2048 consecutive rows of one of 8 interleaved
//           heads (stride 8 rows), so the bytes come from HBM (a decode-like read)
//
// Build: nvcc -O3 -std=c++17 -arch=sm_90a -o gather_bandwidth kernels-cuda/bench/gather_bandwidth.cu
// Run:   ./gather_bandwidth [iters]   (prints one line per variant: mode, workload, stages, threads, CTAs per
//        SM, median ms, gathered GB/s)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda_check.cuh"

constexpr int TOP = 2048;           // keys per list
constexpr int CHUNK = 64;           // keys per chunk
constexpr int ROW = 256;            // bytes per K (or V) row: 128 bf16
constexpr int STAGE = 2 * CHUNK * ROW;  // K and V rows of one chunk

__device__ __forceinline__ unsigned smemAddr(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp16(void* dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smemAddr(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void waitGroup() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void mbarInit(uint64_t* b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smemAddr(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarExpect(uint64_t* b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smemAddr(b)), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbarWait(uint64_t* b, unsigned parity) {
    asm volatile(
        "{\n .reg .pred P1;\n WAIT:\n"
        " mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
        " @!P1 bra WAIT;\n}\n" ::"r"(smemAddr(b)),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void bulkRow(void* dst, const void* src, uint64_t* bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
            smemAddr(dst)),
        "l"(src), "r"(ROW), "r"(smemAddr(bar))
        : "memory");
}

// Stages the list of CTA `blockIdx.x` (list index blockIdx.x % lists) in shared memory.
__device__ __forceinline__ const int* stageList(int* sList, const int* lists, int nLists) {
    const int* list = lists + (size_t)(blockIdx.x % nLists) * TOP;
    for (int i = threadIdx.x; i < TOP; i += blockDim.x) sList[i] = list[i];
    __syncthreads();
    return sList;
}

template <int STAGES>
__global__ void gatherCp16(const uint4* k, const uint4* v, const int* lists, int nLists, float* sink) {
    extern __shared__ __align__(128) unsigned char smem[];
    int* sList = reinterpret_cast<int*>(smem + STAGES * STAGE);
    const int* list = stageList(sList, lists, nLists);
    constexpr int PIECES = ROW / 16;  // 16-byte pieces per row
    auto issue = [&](int c) {
        uint4* sK = reinterpret_cast<uint4*>(smem + (c % STAGES) * STAGE);
        uint4* sV = sK + CHUNK * PIECES;
        for (int idx = threadIdx.x; idx < CHUNK * PIECES; idx += blockDim.x) {
            const int key = idx / PIECES, piece = idx % PIECES;
            const size_t row = (size_t)list[c * CHUNK + key] * PIECES + piece;
            cp16(sK + idx, k + row);
            cp16(sV + idx, v + row);
        }
    };
    constexpr int CHUNKS = TOP / CHUNK;
    for (int c = 0; c < STAGES - 1; c++) {
        issue(c);
        commit();
    }
    float acc = 0.f;
    for (int c = 0; c < CHUNKS; c++) {
        if (c + STAGES - 1 < CHUNKS) issue(c + STAGES - 1);
        commit();
        waitGroup<STAGES - 1>();
        __syncthreads();
        acc += reinterpret_cast<const float*>(smem + (c % STAGES) * STAGE)[threadIdx.x];
        __syncthreads();
    }
    if (acc == 1234.5f) sink[blockIdx.x] = acc;  // keeps the reads; never true for the data written
}

template <int STAGES>
__global__ void gatherBulk(const unsigned char* k, const unsigned char* v, const int* lists, int nLists, int issuers,
                           float* sink) {
    extern __shared__ __align__(128) unsigned char smem[];
    int* sList = reinterpret_cast<int*>(smem + STAGES * STAGE);
    __shared__ uint64_t full[STAGES];
    if (threadIdx.x == 0)
        for (int s = 0; s < STAGES; s++) mbarInit(&full[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    const int* list = stageList(sList, lists, nLists);
    auto issue = [&](int c) {
        const int s = c % STAGES;
        unsigned char* sK = smem + s * STAGE;
        unsigned char* sV = sK + CHUNK * ROW;
        if (threadIdx.x < issuers) {
            asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
            if (threadIdx.x == 0) mbarExpect(&full[s], STAGE);
            for (int j = threadIdx.x; j < 2 * CHUNK; j += issuers) {
                const int key = j % CHUNK;
                const size_t off = (size_t)list[c * CHUNK + key] * ROW;
                if (j < CHUNK)
                    bulkRow(sK + key * ROW, k + off, &full[s]);
                else
                    bulkRow(sV + key * ROW, v + off, &full[s]);
            }
        }
    };
    constexpr int CHUNKS = TOP / CHUNK;
    for (int c = 0; c < STAGES - 1; c++) issue(c);
    float acc = 0.f;
    for (int c = 0; c < CHUNKS; c++) {
        if (c + STAGES - 1 < CHUNKS) issue(c + STAGES - 1);
        mbarWait(&full[c % STAGES], (c / STAGES) & 1);
        acc += reinterpret_cast<const float*>(smem + (c % STAGES) * STAGE)[threadIdx.x];
        __syncthreads();
    }
    if (acc == 1234.5f) sink[blockIdx.x] = acc;
}

struct Workload {
    const char* name;
    unsigned char* k;
    unsigned char* v;
    int* lists;
    int nLists;
    int ctas;
};

static std::vector<int> gatherLists(int nLists, int keys, unsigned seed) {
    std::vector<int> out((size_t)nLists * TOP);
    std::mt19937 rng(seed);
    std::vector<char> taken(keys);
    for (int r = 0; r < nLists; r++) {
        std::fill(taken.begin(), taken.end(), 0);
        int n = 0;
        int* row = out.data() + (size_t)r * TOP;
        while (n < TOP) {
            const int key = (int)(rng() % (unsigned)keys);
            if (!taken[key]) {
                taken[key] = 1;
                row[n++] = key;
            }
        }
        std::sort(row, row + TOP);
    }
    return out;
}

template <typename F> static float medianMs(F launch, int iters) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    launch();  // warm-up
    CHECK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < iters; i++) {
        CHECK(cudaEventRecord(a));
        launch();
        CHECK(cudaEventRecord(b));
        CHECK(cudaEventSynchronize(b));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    CHECK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

template <int STAGES> static void run(const Workload& w, bool bulk, int threads, int issuers, float* sink, int iters) {
    const size_t smem = (size_t)STAGES * STAGE + TOP * sizeof(int);
    int perSm = 0;
    if (bulk) {
        CHECK(cudaFuncSetAttribute(gatherBulk<STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, gatherBulk<STAGES>, threads, smem));
    } else {
        CHECK(cudaFuncSetAttribute(gatherCp16<STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, gatherCp16<STAGES>, threads, smem));
    }
    const float ms = medianMs(
        [&] {
            if (bulk)
                gatherBulk<STAGES><<<w.ctas, threads, smem>>>(w.k, w.v, w.lists, w.nLists, issuers, sink);
            else
                gatherCp16<STAGES><<<w.ctas, threads, smem>>>(reinterpret_cast<const uint4*>(w.k),
                                                              reinterpret_cast<const uint4*>(w.v), w.lists,
                                                              w.nLists, sink);
        },
        iters);
    const double bytes = (double)w.ctas * TOP * 2 * ROW;
    std::printf("%-5s %-7s stages %d threads %3d issuers %3d ctas/SM %d  %8.3f ms  %7.1f GB/s\n", bulk ? "bulk" : "cp16",
                w.name, STAGES, threads, bulk ? issuers : threads, perSm, ms, bytes / ms / 1e6);
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    const int iters = argc > 1 ? std::atoi(argv[1]) : 10;
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("# %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);

    // gather: 32768 keys, one KV head; 8192 distinct lists over 32768 CTAs (one per query row)
    const int keys = 32768, nLists = 8192;
    std::vector<int> hl = gatherLists(nLists, keys, 7);
    Workload g{"gather", nullptr, nullptr, nullptr, nLists, 32768};
    CHECK(cudaMalloc(&g.k, (size_t)keys * ROW));
    CHECK(cudaMalloc(&g.v, (size_t)keys * ROW));
    CHECK(cudaMemset(g.k, 0, (size_t)keys * ROW));
    CHECK(cudaMemset(g.v, 0, (size_t)keys * ROW));
    CHECK(cudaMalloc(&g.lists, hl.size() * sizeof(int)));
    CHECK(cudaMemcpy(g.lists, hl.data(), hl.size() * sizeof(int), cudaMemcpyHostToDevice));

    // stream: 4M rows per table (8 heads interleaved), each CTA 2048 consecutive rows of one head
    const int rows = 4 << 20, heads = 8, streamCtas = rows / TOP;
    std::vector<int> sl((size_t)streamCtas * TOP);
    for (int c = 0; c < streamCtas; c++) {
        const int h = c % heads, base = (c / heads) * TOP;
        for (int i = 0; i < TOP; i++) sl[(size_t)c * TOP + i] = (base + i) * heads + h;
    }
    Workload s{"stream", nullptr, nullptr, nullptr, streamCtas, streamCtas};
    CHECK(cudaMalloc(&s.k, (size_t)rows * ROW));
    CHECK(cudaMalloc(&s.v, (size_t)rows * ROW));
    CHECK(cudaMemset(s.k, 0, (size_t)rows * ROW));
    CHECK(cudaMemset(s.v, 0, (size_t)rows * ROW));
    CHECK(cudaMalloc(&s.lists, sl.size() * sizeof(int)));
    CHECK(cudaMemcpy(s.lists, sl.data(), sl.size() * sizeof(int), cudaMemcpyHostToDevice));

    float* sink;
    CHECK(cudaMalloc(&sink, 1 << 20));
    for (const Workload* w : {&g, &s}) {
        run<2>(*w, false, 128, 0, sink, iters);
        run<3>(*w, false, 128, 0, sink, iters);
        run<3>(*w, false, 256, 0, sink, iters);
        run<6>(*w, false, 128, 0, sink, iters);
        run<2>(*w, true, 128, 32, sink, iters);
        run<3>(*w, true, 128, 32, sink, iters);
        run<3>(*w, true, 128, 128, sink, iters);
        run<3>(*w, true, 128, 1, sink, iters);
        run<6>(*w, true, 128, 32, sink, iters);
    }
    return 0;
}
