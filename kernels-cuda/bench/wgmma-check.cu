// Dev-only check of the sm_90a wgmma kernel, without Java: a single-tile layout micro-test (S = Q·Kᵀ and
// O = P·V through the swizzled descriptors against a host fp64 reference; head dim 128 only), then the full
// kernel sparsa_wg_bf16_d<D>_r128 against the validated mma.sync kernel sparsa_tc_bf16_d<D>_r128 on the same
// device-format plans (dense, causal, window, random blocks, and a mixed plan with listed rows, partial
// blocks under a band+sinks+causal predicate, gathered and unconditional keys with log-weights, GQA),
// then timings of both at B=1, H=32 (CUDA events, median). D is 128 unless -DSPARSA_DEV_D=64 or 256 is given;
// the harness instantiates both kernels itself, so it also runs a head dim or build flag that no row of
// sparsa_kernels.def has (e.g. -DSPARSA_WG_SPLIT_KV=1 at head dim 128).
// Build: nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o wgcheck kernels-cuda/bench/wgmma-check.cu
// Run (on the H200, from a carried folder): ./wgcheck [N for timing, default 32768; 0 skips timing] [iters]
// (SPARSA_TMA=0 in the environment: every chunk and Q by cp.async)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "../src/main/cuda/sparsa_plan.cuh"

using namespace sparsa;

#include "../src/main/cuda/sparsa_prefill_mma.cuh"
#include "../src/main/cuda/sparsa_prefill_wgmma.cuh"

// the two kernels compared, as the rows of sparsa_kernels.def define them, at head dim DD
#ifndef SPARSA_DEV_D
#define SPARSA_DEV_D 128
#endif
#define DEV_NAME2(a, b, c) a##b##c
#define DEV_NAME(a, b, c) DEV_NAME2(a, b, c)
#define DEV_TC DEV_NAME(sparsa_tc_bf16_d, SPARSA_DEV_D, _r128)
#define DEV_WG DEV_NAME(sparsa_wg_bf16_d, SPARSA_DEV_D, _r128)
constexpr int DD = SPARSA_DEV_D;
SPARSA_TC_NAMED(DEV_TC, __nv_bfloat16, SPARSA_DEV_D, SPARSA_DEV_D, 128)
SPARSA_WG_NAMED(DEV_WG, __nv_bfloat16, SPARSA_DEV_D)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "check_support.cuh"


typedef __nv_bfloat16 bf;

// ---------------------------------------------------------------- micro-test: one warpgroup, one tile
__global__ void microWg(const bf* q, const bf* k, const bf* v, float* sOut, float* oOut, int vlbo, int vsbo) {
    __shared__ __align__(1024) uint8_t sm[3 * 16384];
    uint8_t* sQ = sm;
    uint8_t* sK = sm + 16384;
    uint8_t* sV = sm + 32768;
    int t = threadIdx.x;
    for (int i = t; i < 64 * 16; i += 128) {
        int r = i / 16, c = i % 16;
        *reinterpret_cast<uint4*>(sQ + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(q + r * 128 + c * 8);
        *reinterpret_cast<uint4*>(sK + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(k + r * 128 + c * 8);
        *reinterpret_cast<uint4*>(sV + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(v + r * 128 + c * 8);
    }
    fenceProxyAsync();
    __syncthreads();
    float s[8][4];
    wgFence();
    for (int kk = 0; kk < 8; kk++)
        wgmmaQK<bf>(s, wgDesc(smemAddr(sQ) + (kk >> 2) * 8192 + (kk & 3) * 32, 16, 1024),
                    wgDesc(smemAddr(sK) + (kk >> 2) * 8192 + (kk & 3) * 32, 16, 1024), kk > 0);
    wgCommit();
    wgWait<0>();
    for (int i = 0; i < 8; i++)
        for (int e = 0; e < 4; e++) regFence(s[i][e]);
    storeFragment(s, sOut, t);
    // P = S / 16 rounded to bf16, O = P V
    float o[16][4];
    for (int i = 0; i < 16; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    uint32_t p[4][4];
    for (int kk = 0; kk < 4; kk++) {
        p[kk][0] = Pack<bf>::two(s[2 * kk][0] / 16, s[2 * kk][1] / 16);
        p[kk][1] = Pack<bf>::two(s[2 * kk][2] / 16, s[2 * kk][3] / 16);
        p[kk][2] = Pack<bf>::two(s[2 * kk + 1][0] / 16, s[2 * kk + 1][1] / 16);
        p[kk][3] = Pack<bf>::two(s[2 * kk + 1][2] / 16, s[2 * kk + 1][3] / 16);
    }
    for (int i = 0; i < 16; i++)
        for (int e = 0; e < 4; e++) regFence(o[i][e]);
    wgFence();
    for (int kk = 0; kk < 4; kk++) wgmmaPV<bf>(o, p[kk], wgDesc(smemAddr(sV) + kk * 2048, vlbo, vsbo));
    wgCommit();
    wgWait<0>();
    for (int i = 0; i < 16; i++)
        for (int e = 0; e < 4; e++) regFence(o[i][e]);
    storeFragment(o, oOut, t);
}

static float b2f(bf x) { return __bfloat162float(x); }

static int microTest() {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<bf> hq(64 * 128), hk(64 * 128), hv(64 * 128);
    for (auto* a : {&hq, &hk, &hv})
        for (auto& x : *a) x = __float2bfloat16(nd(rng));
    bf *dq, *dk, *dv;
    float *ds, *dO;
    CK(cudaMalloc(&dq, 64 * 128 * 2));
    CK(cudaMalloc(&dk, 64 * 128 * 2));
    CK(cudaMalloc(&dv, 64 * 128 * 2));
    CK(cudaMalloc(&ds, 64 * 64 * 4));
    CK(cudaMalloc(&dO, 64 * 128 * 4));
    CK(cudaMemcpy(dq, hq.data(), 64 * 128 * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dk, hk.data(), 64 * 128 * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv, hv.data(), 64 * 128 * 2, cudaMemcpyHostToDevice));
    std::vector<double> sRef(64 * 64), oRef(64 * 128, 0.0);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++) {
            double a = 0;
            for (int d = 0; d < 128; d++) a += (double)b2f(hq[i * 128 + d]) * b2f(hk[j * 128 + d]);
            sRef[i * 64 + j] = a;
        }
    int bad = 0;
    int variants[2][2] = {{SPARSA_WG_V_LBO, SPARSA_WG_V_SBO}, {SPARSA_WG_V_SBO, SPARSA_WG_V_LBO}};
    for (auto& var : variants) {
        CK(cudaMemset(ds, 0xff, 64 * 64 * 4));
        CK(cudaMemset(dO, 0xff, 64 * 128 * 4));
        microWg<<<1, 128>>>(dq, dk, dv, ds, dO, var[0], var[1]);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        std::vector<float> hs(64 * 64), ho(64 * 128);
        CK(cudaMemcpy(hs.data(), ds, hs.size() * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(ho.data(), dO, ho.size() * 4, cudaMemcpyDeviceToHost));
        double es = 0, ns = 0, eo = 0, no = 0;
        for (int i = 0; i < 64 * 64; i++) {
            double d = hs[i] - sRef[i];
            es += std::isnan(hs[i]) ? 1e30 : d * d;
            ns += sRef[i] * sRef[i];
        }
        for (int i = 0; i < 64; i++)
            for (int n = 0; n < 128; n++) {
                double a = 0;
                for (int j = 0; j < 64; j++) a += (double)b2f(__float2bfloat16(hs[i * 64 + j] / 16)) * b2f(hv[j * 128 + n]);
                double d = ho[i * 128 + n] - a;
                eo += std::isnan(ho[i * 128 + n]) ? 1e30 : d * d;
                no += a * a;
            }
        double rs = sqrt(es / ns), ro = sqrt(eo / no);
        printf("micro: V lbo=%d sbo=%d: S rel err %.3e, O rel err %.3e\n", var[0], var[1], rs, ro);
        if (var[0] == SPARSA_WG_V_LBO && (rs > 1e-5 || ro > 1e-5)) bad = 1;
    }
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(ds); cudaFree(dO);
    return bad;
}

// ---------------------------------------------------------------- runs
struct Dev {
    bf *q, *k, *v, *out;
    float* lse;
    int *ints, *work;
    float* floats;
    int items;
};

__global__ void fillRandom(bf* p, long n, unsigned seed) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        float f = ((x & 0xffff) / 65536.f - 0.5f) * 3.4f;
        p[i] = __float2bfloat16(f);
    }
}


static void launch(bool wg, const Dev& d, const Scalars& s) {
    if (wg) {
        static int sms = 0;  // the persistent kernel's grid: one CTA per multiprocessor
        if (sms == 0) CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
        DEV_WG<<<std::min(d.items, sms), 384, WgConfig<bf, DD>::SMEM>>>(
            d.q, d.k, d.v, d.out, d.lse, nullptr, nullptr, d.ints, d.floats, d.work, s, d.items,
            wgMaps(d.q, d.k, d.v, s, (int)(s.qHeads / s.group), DD, 2));
    } else {
        using C = TcConfig<bf, DD, DD, 128>;
        DEV_TC<<<d.items, C::THREADS, C::SMEM>>>(d.q, d.k, d.v, d.out, d.lse, nullptr, nullptr, d.ints, d.floats, d.work, s);
    }
}

int main(int argc, char** argv) {
    int NT = argc > 1 ? atoi(argv[1]) : 32768;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    CK(cudaFuncSetAttribute(DEV_WG, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)WgConfig<bf, DD>::SMEM));
    CK(cudaFuncSetAttribute(DEV_TC, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)TcConfig<bf, DD, DD, 128>::SMEM));
    int fails = DD == 128 ? microTest() : 0;  // the micro-test's tile is head dim 128

    // correctness: wg vs tc on small problems (GQA 4/2)
    {
        int H = 4, Hkv = 2, N = 2048;
        Dev d;
        long nq = (long)H * N * DD, nk = (long)Hkv * N * DD;
        CK(cudaMalloc(&d.q, nq * 2)); CK(cudaMalloc(&d.k, nk * 2)); CK(cudaMalloc(&d.v, nk * 2));
        CK(cudaMalloc(&d.out, nq * 2)); CK(cudaMalloc(&d.lse, (long)H * N * 4));
        std::vector<uint16_t> o1(nq), o2(nq);
        std::vector<float> l1((long)H * N), l2((long)H * N);
        const char* names[] = {"dense", "causal", "window", "blocks10", "mixed"};
        for (int rep = 0; rep < 2; rep++)
            for (const char* nm : names) {
                unsigned seed = 1234 + rep * 77 + (unsigned)strlen(nm);
                fillRandom<<<256, 256>>>(d.q, nq, seed);
                fillRandom<<<256, 256>>>(d.k, nk, seed * 3 + 1);
                fillRandom<<<256, 256>>>(d.v, nk, seed * 5 + 2);
                HostPlan hp = makePlan(nm, N, H, seed);
                upload(d, hp);
                Scalars s = scalars(H, Hkv, N, DD);
                runBoth([&](int wg) { launch(wg, d, s); }, d.out, d.lse, o1, o2, l1, l2);
                const RunDiff df = compareRuns(o1, o2, l1, l2);
                const double rel = df.rel, le = df.lse;
                const long nanBad = df.nanBad;
                bool ok = rel < 4e-3 && le < 2e-3 && nanBad == 0;
                printf("check %-9s wg vs tc: rel err %.3e, max lse diff %.3e, nan/inf mismatches %ld %s\n", nm, rel, le, nanBad,
                       ok ? "ok" : "FAIL");
                if (!ok) fails++;
                freePlan(d);
            }
        cudaFree(d.q); cudaFree(d.k); cudaFree(d.v); cudaFree(d.out); cudaFree(d.lse);
    }

    // timing
    if (NT > 0) {
        int H = 32, N = NT;
        Dev d;
        long n = (long)H * N * DD;
        CK(cudaMalloc(&d.q, n * 2)); CK(cudaMalloc(&d.k, n * 2)); CK(cudaMalloc(&d.v, n * 2));
        CK(cudaMalloc(&d.out, n * 2)); CK(cudaMalloc(&d.lse, (long)H * N * 4));
        fillRandom<<<1024, 256>>>(d.q, n, 11); fillRandom<<<1024, 256>>>(d.k, n, 12); fillRandom<<<1024, 256>>>(d.v, n, 13);
        Scalars s = scalars(H, H, N, DD);
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        const char* names[] = {"dense", "causal", "window", "blocks10", "window-full", "one-block"};
        printf("timing N=%d H=32 D=%d bf16, TFLOP/s on admitted pairs (median of %d)\n", N, DD, iters);
        for (const char* nm : names) {
            HostPlan hp = makePlan(nm, N, H, 42);
            upload(d, hp);
            double t[2];
            for (int wg = 1; wg >= 0; wg--) {
                std::vector<float> ms;
                for (int i = 0; i < iters + 2; i++) {
                    CK(cudaEventRecord(e0));
                    launch(wg, d, s);
                    CK(cudaEventRecord(e1));
                    CK(cudaEventSynchronize(e1));
                    CK(cudaGetLastError());
                    float x;
                    CK(cudaEventElapsedTime(&x, e0, e1));
                    if (i >= 2) ms.push_back(x);
                }
                std::sort(ms.begin(), ms.end());
                t[wg] = ms[ms.size() / 2];
            }
            double fl = 4.0 * DD * H * hp.admitted;
            printf("%-9s wg %8.3f ms %6.1f TFLOP/s | tc %8.3f ms %6.1f TFLOP/s\n", nm, t[1], fl / t[1] / 1e9, t[0],
                   fl / t[0] / 1e9);
            freePlan(d);
        }
    }
    printf("%s\n", fails ? "FAILURES" : "all checks passed");
    return fails ? 1 : 0;
}
