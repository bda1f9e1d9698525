// choice_bench: Quest's page choice (decQuestChoose of sparsa_quest.cuh, one CTA of 1024 threads per (sequence, KV
// head)) timed alone on synthetic page bounds, in its two forms side by side:
//   passes:    decChooseBest, radix passes of up to 8 bits over every candidate (kept in shared memory) until the
//              order key of the k-th best is known, then a count and a compaction pass;
//   registers: decChooseBestRegs (8 candidates per thread up to 8192 per CTA, 16 up to 16384), each thread's
//              candidates in registers, one histogram of up to 11 bits, the keys of the chosen bin ranked against
//              each other, one compaction.
// Both must choose the same pages (the registers form also with 4 bytes of dynamic shared memory, which it does
// not use); each case is also checked against a host reference (the best budget - 1 of the
// first n - 1 pages by (-score, index), NaN below every number, plus the last page, in page order).
// Cases: batch 1 x 8 KV heads, n pages per head (1000, 2048, 4096, 8192, 8193, 16383: 32k or 128k keys in pages of
// 16, 32 or 64, and the edges of the registers forms), budgets n / 16, n / 64 and 2, scores drawn as
//   normal:  N(10, 1) (sums of many products, as the bounds of a real cache are);
//   uniform: U(0, 1000);
//   ties:    eight distinct values;
//   special: normal with 1 % NaN, 1 % +inf and 1 % -inf.
// Timing: each form's 200 launches captured in one CUDA graph (so that the host's launch rate does not pace them);
// the two graphs alternate, 3 replays each between CUDA events (the scores stay in L2, as they do between the bounds
// kernel and the choice in a decode step); the line gives the median of the replays' microseconds per launch. The
// first line times an empty kernel of the same launch shape alike: the part of each figure that is the launch.
//
// Build: nvcc -O3 -std=c++17 -arch=sm_90a -I kernels-cuda/src/main/cuda -o choice_bench kernels-cuda/bench/choice_bench.cu
// Run:   ./choice_bench [--check]   (--check: the comparisons only, no timing, for compute-sanitizer; one line per case: distribution, n, budget, passes us, registers us, their ratio, same)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <cstdio>
#include <random>
#include <vector>

#include "sparsa_plan.cuh"
using namespace sparsa;
#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"
#include "sparsa_decode.cuh"
#include "sparsa_quest.cuh"

#include "cuda_check.cuh"

template <bool REGS>
__global__ void __launch_bounds__(1024) choose(const float* scores, int width, int* meta, const DecodeScalars S,
                                               int budget, int smemKeys) {
    extern __shared__ unsigned int benchKeys[];
    decQuestChoose<1, REGS>(scores, width, meta, S, budget, smemKeys, benchKeys);
}

__global__ void __launch_bounds__(1024) nothing(int* meta) {
    extern __shared__ unsigned int benchKeys[];
    if (threadIdx.x == 0 && meta[0] < -1) meta[1] = 0;
}

static constexpr int LAUNCHES = 200;

static unsigned int orderKey(float s) {  // questOrder on the host
    int ordered;
    if (std::isnan(s)) {
        ordered = (int)0x80000000;
    } else {
        float z = s == 0.f ? 0.f : s;
        int bits;
        std::memcpy(&bits, &z, 4);
        ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
    }
    return ((unsigned int)~ordered) ^ 0x80000000u;
}

static std::vector<int> reference(const float* sc, int n, int budget) {
    std::vector<int> out;
    if (n <= budget) {
        for (int i = 0; i < n; i++) out.push_back(i);
        return out;
    }
    std::vector<int> idx(n - 1);
    for (int i = 0; i < n - 1; i++) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](int a, int b) {
        unsigned int ka = orderKey(sc[a]), kb = orderKey(sc[b]);
        return ka != kb ? ka < kb : a < b;
    });
    out.assign(idx.begin(), idx.begin() + (budget - 1));
    std::sort(out.begin(), out.end());
    out.push_back(n - 1);
    return out;
}

int main(int argc, char** argv) {
    const bool timed = !(argc > 1 && std::string(argv[1]) == "--check");
    const int heads = 8, pageShift = 4;
    const char* dists[] = {"normal", "uniform", "ties", "special"};
    const int ns[] = {1000, 2048, 4096, 8192, 8193, 16383};
    const int maxN = 16383, maxBudget = maxN / 16;
    float* dScores;
    int* dMeta;
    CHECK(cudaMalloc(&dScores, sizeof(float) * heads * maxN));
    CHECK(cudaMalloc(&dMeta, sizeof(int) * (16 + 2 * heads * maxBudget)));
    const int smemKeys = maxN;
    const size_t smem = 4 * (size_t)smemKeys;
    CHECK(cudaFuncSetAttribute(choose<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CHECK(cudaFuncSetAttribute(choose<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CHECK(cudaFuncSetAttribute(nothing, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    cudaStream_t stream;
    CHECK(cudaStreamCreate(&stream));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    // microseconds per launch of a graph of LAUNCHES launches (one replay)
    auto timeGraph = [&](cudaGraphExec_t exec) {
        CHECK(cudaEventRecord(e0, stream));
        CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaEventRecord(e1, stream));
        CHECK(cudaEventSynchronize(e1));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, e0, e1));
        return ms * 1000.f / LAUNCHES;
    };
    // the floor: a kernel that does nothing, launched alike
    if (timed) {
        cudaGraph_t g;
        cudaGraphExec_t exec;
        CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        for (int it = 0; it < LAUNCHES; it++) nothing<<<heads, 1024, smem, stream>>>(dMeta);
        CHECK(cudaStreamEndCapture(stream, &g));
        CHECK(cudaGraphInstantiate(&exec, g, 0));
        std::vector<float> us;
        for (int round = 0; round < 3; round++) us.push_back(timeGraph(exec));
        std::sort(us.begin(), us.end());
        std::printf("# an empty kernel of the same launch shape: %.2f us per launch\n", us[1]);
        CHECK(cudaGraphExecDestroy(exec));
        CHECK(cudaGraphDestroy(g));
    }
    std::printf("# distribution n budget passes_us registers_us passes/registers same\n");
    int failures = 0;
    for (const char* dist : dists) {
        for (int n : ns) {
            for (int budget : {n / 16, n / 64, 2}) {
                std::mt19937 rng(1206u + n + budget);
                std::normal_distribution<float> normal(10.f, 1.f);
                std::uniform_real_distribution<float> uni(0.f, 1000.f);
                std::vector<float> sc((size_t)heads * n);
                for (size_t i = 0; i < sc.size(); i++) {
                    std::string d = dist;
                    if (d == "normal") sc[i] = normal(rng);
                    else if (d == "uniform") sc[i] = uni(rng);
                    else if (d == "ties") sc[i] = (float)(rng() % 8);
                    else {
                        unsigned int r = rng() % 100;
                        sc[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : normal(rng);
                    }
                }
                CHECK(cudaMemcpy(dScores, sc.data(), sizeof(float) * sc.size(), cudaMemcpyHostToDevice));
                DecodeScalars S{};
                S.kvHeads = heads;
                S.pageShift = pageShift;
                S.oLists = 16;
                S.listWidth = budget;
                int length = n << pageShift;
                CHECK(cudaMemcpy(dMeta, &length, sizeof(int), cudaMemcpyHostToDevice));
                // the third: the registers form with a small share of shared memory (it uses none of it)
                std::vector<int> lists[3];
                for (int w = 0; w < 3; w++) {
                    CHECK(cudaMemset(dMeta + 16, 0xFF, sizeof(int) * heads * budget));
                    if (w == 0) choose<false><<<heads, 1024, smem>>>(dScores, n, dMeta, S, budget, smemKeys);
                    else if (w == 1) choose<true><<<heads, 1024, smem>>>(dScores, n, dMeta, S, budget, smemKeys);
                    else choose<true><<<heads, 1024, 4>>>(dScores, n, dMeta, S, budget, 1);
                    CHECK(cudaGetLastError());
                    CHECK(cudaDeviceSynchronize());
                    lists[w].resize((size_t)heads * budget);
                    CHECK(cudaMemcpy(lists[w].data(), dMeta + 16, sizeof(int) * heads * budget, cudaMemcpyDeviceToHost));
                }
                bool same = lists[0] == lists[1] && lists[1] == lists[2];
                for (int h = 0; h < heads && same; h++) {
                    std::vector<int> ref = reference(sc.data() + (size_t)h * n, n, budget);
                    same = std::equal(ref.begin(), ref.end(), lists[1].begin() + (size_t)h * budget);
                }
                if (!same) failures++;
                if (!timed) {
                    std::printf("%-8s %6d %5d same: %s\n", dist, n, budget, same ? "yes" : "NO");
                    continue;
                }
                std::vector<float> us[2];
                cudaGraphExec_t graphs[2];
                for (int w = 0; w < 2; w++) {
                    cudaGraph_t g;
                    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
                    for (int it = 0; it < LAUNCHES; it++) {
                        if (w == 0) choose<false><<<heads, 1024, smem, stream>>>(dScores, n, dMeta, S, budget, smemKeys);
                        else choose<true><<<heads, 1024, smem, stream>>>(dScores, n, dMeta, S, budget, smemKeys);
                    }
                    CHECK(cudaStreamEndCapture(stream, &g));
                    CHECK(cudaGraphInstantiate(&graphs[w], g, 0));
                    CHECK(cudaGraphDestroy(g));
                }
                for (int round = 0; round < 3; round++)
                    for (int w = 0; w < 2; w++) us[w].push_back(timeGraph(graphs[w]));
                for (auto& g : graphs) CHECK(cudaGraphExecDestroy(g));
                for (auto& v : us) std::sort(v.begin(), v.end());
                std::printf("%-8s %6d %5d %8.2f %8.2f %6.2f %s\n", dist, n, budget, us[0][1], us[1][1],
                            us[0][1] / us[1][1], same ? "yes" : "NO");
            }
        }
    }
    std::printf("# %d case(s) differ\n", failures);
    return failures == 0 ? 0 : 2;
}
