// Dev-only check of the sm_90a e4m3 wgmma kernel, without Java: a single-tile layout micro-test (S = Q·Kᵀ
// from e4m3 codes through the 128-byte-swizzled descriptors, O = P·V with P as e4m3 codes in registers and
// V written transposed in P's key order by transposeV8, against a host fp64 reference on the same codes),
// then the full kernel sparsa_wg_e4m3_d128_r128 against the bf16 kernel sparsa_wg_bf16_d128_r128 on the
// same values (e4m3 codes × power-of-two per-head scales are exact in bf16; the two differ by P's rounding
// to e4m3 rather than bf16) on device-format plans (dense, causal, window, random blocks, a mixed plan with
// listed rows, partial blocks, gathered and unconditional keys with log-weights, GQA), then timings of both
// at B=1, H=32, D=128 (CUDA events, median).
// Build: nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o e4m3check kernels-cuda/bench/e4m3-check.cu
// Run (on an H100/H200): ./e4m3check [N for timing, default 32768; 0 skips timing] [iters]
// -DSPARSA_WG8_QK_CHAINS=2 (or 4) builds the kernel with Q·Kᵀ split into that many f32-added chains (an experiment).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include "../src/main/cuda/sparsa_plan.cuh"

using namespace sparsa;

#include "../src/main/cuda/sparsa_prefill_wgmma.cuh"

SPARSA_WG_NAMED(sparsa_wg_bf16_d128_r128, __nv_bfloat16, 128)
SPARSA_WG8_NAMED(sparsa_wg_e4m3_d128_r128, 128)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "check_support.cuh"


typedef __nv_bfloat16 bf;
typedef __nv_fp8_e4m3 f8;

static float e4m3f(uint8_t c) {
    __nv_fp8_e4m3 x;
    memcpy(&x, &c, 1);
    return (float)x;
}
static uint8_t toE4m3(float f) {
    __nv_fp8_e4m3 x(f);
    uint8_t c;
    memcpy(&c, &x, 1);
    return c;
}

// ---------------------------------------------------------------- micro-test: one warpgroup, one 64-key chunk
__global__ void microWg8(const uint8_t* q, const uint8_t* k, const uint8_t* v, float* sOut, float* oOut) {
    __shared__ __align__(1024) uint8_t sm[4 * 8192];
    uint8_t* sQ = sm;            // 64 rows × 128 B, swizzled
    uint8_t* sK = sm + 8192;     // 64 keys × 128 B, swizzled
    uint8_t* sVr = sm + 16384;   // V as landed: 64 keys × 128 B, swizzled
    uint8_t* sVt = sm + 24576;   // Vᵀ in P's key order
    int t = threadIdx.x;
    for (int i = t; i < 64 * 8; i += 128) {
        int r = i / 8, c = i % 8;
        *reinterpret_cast<uint4*>(sQ + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(q + r * 128 + c * 16);
        *reinterpret_cast<uint4*>(sK + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(k + r * 128 + c * 16);
        *reinterpret_cast<uint4*>(sVr + swz(r, c, 64)) = *reinterpret_cast<const uint4*>(v + r * 128 + c * 16);
    }
    __syncthreads();
    if (t < 32) transposeV8(sVr, sVt, t);
    fenceProxyAsync();
    __syncthreads();
    float s[8][4];
    wgFence();
    for (int kk = 0; kk < 4; kk++)
        wgmmaQK<f8>(s, wgDesc(smemAddr(sQ) + kk * 32, 16, 1024), wgDesc(smemAddr(sK) + kk * 32, 16, 1024), kk > 0);
    wgCommit();
    wgWait<0>();
    for (int i = 0; i < 8; i++)
        for (int e = 0; e < 4; e++) regFence(s[i][e]);
    storeFragment(s, sOut, t);
    // P = S / 64 rounded to e4m3, O = P V
    float o[16][4];
    for (int i = 0; i < 16; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    uint32_t p[2][4];
    for (int nb = 0; nb < 8; nb++)
        for (int e = 0; e < 4; e++) s[nb][e] /= 64;
    for (int kk = 0; kk < 2; kk++) {
        p[kk][0] = packE4m3x4(s[4 * kk][0], s[4 * kk][1], s[4 * kk + 1][0], s[4 * kk + 1][1]);
        p[kk][1] = packE4m3x4(s[4 * kk][2], s[4 * kk][3], s[4 * kk + 1][2], s[4 * kk + 1][3]);
        p[kk][2] = packE4m3x4(s[4 * kk + 2][0], s[4 * kk + 2][1], s[4 * kk + 3][0], s[4 * kk + 3][1]);
        p[kk][3] = packE4m3x4(s[4 * kk + 2][2], s[4 * kk + 2][3], s[4 * kk + 3][2], s[4 * kk + 3][3]);
    }
    for (int i = 0; i < 16; i++)
        for (int e = 0; e < 4; e++) regFence(o[i][e]);
    wgFence();
    for (int kk = 0; kk < 2; kk++) wgmmaPV8(o, p[kk], wgDescPlain(smemAddr(sVt) + kk * 2 * WG8_V_LBO, WG8_V_LBO, WG8_V_SBO));
    wgCommit();
    wgWait<0>();
    for (int i = 0; i < 16; i++)
        for (int e = 0; e < 4; e++) regFence(o[i][e]);
    storeFragment(o, oOut, t);
}

static int microTest() {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<uint8_t> hq(64 * 128), hk(64 * 128), hv(64 * 128);
    for (auto* a : {&hq, &hk, &hv})
        for (auto& x : *a) x = toE4m3(nd(rng) * 2);
    uint8_t *dq, *dk, *dv;
    float *ds, *dO;
    CK(cudaMalloc(&dq, 64 * 128));
    CK(cudaMalloc(&dk, 64 * 128));
    CK(cudaMalloc(&dv, 64 * 128));
    CK(cudaMalloc(&ds, 64 * 64 * 4));
    CK(cudaMalloc(&dO, 64 * 128 * 4));
    CK(cudaMemcpy(dq, hq.data(), 64 * 128, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dk, hk.data(), 64 * 128, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv, hv.data(), 64 * 128, cudaMemcpyHostToDevice));
    CK(cudaMemset(ds, 0xff, 64 * 64 * 4));
    CK(cudaMemset(dO, 0xff, 64 * 128 * 4));
    microWg8<<<1, 128>>>(dq, dk, dv, ds, dO);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<float> hs(64 * 64), ho(64 * 128);
    CK(cudaMemcpy(hs.data(), ds, hs.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ho.data(), dO, ho.size() * 4, cudaMemcpyDeviceToHost));
    double es = 0, ns = 0, eo = 0, no = 0;
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++) {
            double a = 0;
            for (int d = 0; d < 128; d++) a += (double)e4m3f(hq[i * 128 + d]) * e4m3f(hk[j * 128 + d]);
            double dd = hs[i * 64 + j] - a;
            es += std::isnan(hs[i * 64 + j]) ? 1e30 : dd * dd;
            ns += a * a;
        }
    for (int i = 0; i < 64; i++)
        for (int n = 0; n < 128; n++) {
            double a = 0;  // P from the kernel's own S, rounded to e4m3 as the kernel does
            for (int j = 0; j < 64; j++) a += (double)e4m3f(toE4m3(hs[i * 64 + j] / 64)) * e4m3f(hv[j * 128 + n]);
            double dd = ho[i * 128 + n] - a;
            eo += std::isnan(ho[i * 128 + n]) ? 1e30 : dd * dd;
            no += a * a;
        }
    double rs = sqrt(es / ns), ro = sqrt(eo / no);
    // Hopper's FP8 wgmma accumulates with about 14 bits (not f32): 1.4e-4 and 7e-5 on an H100; a wrong layout
    // (descriptor, Vᵀ order, fragment) gives errors of order 1
    bool ok = rs < 5e-4 && ro < 5e-4;
    printf("micro e4m3: S rel err %.3e, O rel err %.3e %s\n", rs, ro, ok ? "ok" : "FAIL");
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(ds); cudaFree(dO);
    return ok ? 0 : 1;
}

// ---------------------------------------------------------------- runs
struct Plan {
    int *ints, *work;
    float* floats;
    int items;
};

// e4m3 codes of values in about ±3.4 (a hash per element), and the same values as bf16 (exact)
__global__ void fillCodes(uint8_t* c8, bf* c16, long n, unsigned seed) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        float f = ((x & 0xffff) / 65536.f - 0.5f) * 6.8f;
        __nv_fp8_e4m3 e(f);
        c8[i] = e.__x;
        c16[i] = __float2bfloat16((float)e);
    }
}
// bf16 values × a per-head scale (powers of two: exact), in place; rows of D = 128
__global__ void scaleHeads(bf* p, long n, long perHead, const float* sc) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        p[i] = __float2bfloat16(__bfloat162float(p[i]) * sc[i / perHead]);
}

// each (head, row)'s score magnitude over all keys: max_j scale · Σ_d |q_d · k_jd| (the numerics contract's A, exact
// for the dense plan and an upper bound for the others), from the bf16 copies (the scaled values); rows of D = 128
__global__ void scoreMagnitude(const bf* q, const bf* k, float* mag, int H, int Hkv, int N, float scale) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * N) return;
    const int h = i / N, kvh = h / (H / Hkv);
    const bf* qr = q + (long)i * 128;
    float best = 0.f;
    for (int j = 0; j < N; j++) {
        const bf* kr = k + ((long)kvh * N + j) * 128;
        float s = 0.f;
        for (int d = 0; d < 128; d++) s += fabsf(__bfloat162float(qr[d]) * __bfloat162float(kr[d]));
        best = fmaxf(best, s);
    }
    mag[i] = best * scale;
}

struct Inputs {
    uint8_t *q8, *k8, *v8;
    bf *q16, *k16, *v16, *out;
    float* lse;
    WgScales sc;
};

static int sms() {
    static int n = 0;
    if (n == 0) CK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
    return n;
}
static void launch(bool e4m3, const Inputs& in, const Plan& d, const Scalars& s) {
    int grid = std::min(d.items, sms());
    if (e4m3)
        sparsa_wg_e4m3_d128_r128<<<grid, 384, WgConfig<f8, 128>::SMEM>>>(
            (const f8*)in.q8, (const f8*)in.k8, (const f8*)in.v8, in.out, in.lse, nullptr, nullptr, d.ints, d.floats, d.work,
            s, d.items, wgMaps(in.q8, in.k8, in.v8, s, (int)(s.qHeads / s.group), 128, 1), in.sc);
    else
        sparsa_wg_bf16_d128_r128<<<grid, 384, WgConfig<bf, 128>::SMEM>>>(in.q16, in.k16, in.v16, in.out, in.lse, nullptr,
                                                                           nullptr, d.ints, d.floats, d.work, s, d.items,
                                                                           wgMaps(in.q16, in.k16, in.v16, s, (int)(s.qHeads / s.group), 128, 2));
}

static void alloc(Inputs& in, int H, int Hkv, int N) {
    long nq = (long)H * N * 128, nk = (long)Hkv * N * 128;
    CK(cudaMalloc(&in.q8, nq)); CK(cudaMalloc(&in.k8, nk)); CK(cudaMalloc(&in.v8, nk));
    CK(cudaMalloc(&in.q16, nq * 2)); CK(cudaMalloc(&in.k16, nk * 2)); CK(cudaMalloc(&in.v16, nk * 2));
    CK(cudaMalloc(&in.out, nq * 2)); CK(cudaMalloc(&in.lse, (long)H * N * 4));
}
static void release(Inputs& in) {
    cudaFree(in.q8); cudaFree(in.k8); cudaFree(in.v8); cudaFree(in.q16); cudaFree(in.k16); cudaFree(in.v16);
    cudaFree(in.out); cudaFree(in.lse);
}
// fills codes and bf16 twins; scales: powers of two per head (all 1 when unit), applied to the bf16 twins
static void fill(Inputs& in, int H, int Hkv, int N, unsigned seed, bool unit) {
    long nq = (long)H * N * 128, nk = (long)Hkv * N * 128;
    fillCodes<<<256, 256>>>(in.q8, in.q16, nq, seed);
    fillCodes<<<256, 256>>>(in.k8, in.k16, nk, seed * 3 + 1);
    fillCodes<<<256, 256>>>(in.v8, in.v16, nk, seed * 5 + 2);
    for (int h = 0; h < WG_MAX_HEADS; h++) {
        in.sc.q[h] = unit ? 1.f : ldexpf(1.f, (int)((h * 7 + seed) % 5) - 2);
        in.sc.k[h] = unit ? 1.f : ldexpf(1.f, (int)((h * 3 + seed) % 4) - 2);
        in.sc.v[h] = unit ? 1.f : ldexpf(1.f, (int)((h * 5 + seed) % 3) - 1);
    }
    float* dsc;
    CK(cudaMalloc(&dsc, 3 * WG_MAX_HEADS * 4));
    CK(cudaMemcpy(dsc, &in.sc, 3 * WG_MAX_HEADS * 4, cudaMemcpyHostToDevice));
    scaleHeads<<<256, 256>>>(in.q16, nq, (long)N * 128, dsc);
    scaleHeads<<<256, 256>>>(in.k16, nk, (long)N * 128, dsc + WG_MAX_HEADS);
    scaleHeads<<<256, 256>>>(in.v16, nk, (long)N * 128, dsc + 2 * WG_MAX_HEADS);
    CK(cudaDeviceSynchronize());
    cudaFree(dsc);
}

int main(int argc, char** argv) {
    int NT = argc > 1 ? atoi(argv[1]) : 32768;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    CK(cudaFuncSetAttribute(sparsa_wg_bf16_d128_r128, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)WgConfig<bf, 128>::SMEM));
    CK(cudaFuncSetAttribute(sparsa_wg_e4m3_d128_r128, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)WgConfig<f8, 128>::SMEM));
    printf("shared memory: bf16 %zu B, e4m3 %zu B\n", WgConfig<bf, 128>::SMEM, WgConfig<f8, 128>::SMEM);
    int fails = microTest();

    // correctness: e4m3 vs bf16 on the same values (GQA 4/2), unit and per-head scales
    {
        int H = 4, Hkv = 2, N = 2048;
        Inputs in;
        alloc(in, H, Hkv, N);
        long nq = (long)H * N * 128;
        std::vector<uint16_t> o1(nq), o2(nq);
        std::vector<float> l1((long)H * N), l2((long)H * N), mag((long)H * N);
        float* dMag;
        CK(cudaMalloc(&dMag, mag.size() * 4));
        const char* names[] = {"dense", "causal", "window", "blocks10", "mixed"};
        for (int rep = 0; rep < 2; rep++)
            for (const char* nm : names) {
                unsigned seed = 1234 + rep * 77 + (unsigned)strlen(nm);
                fill(in, H, Hkv, N, seed, rep == 0);
                HostPlan hp = makePlan(nm, N, H, seed);
                Plan d;
                upload(d, hp);
                Scalars s = scalars(H, Hkv, N);
                runBoth([&](int e8) { launch(e8, in, d, s); }, in.out, in.lse, o1, o2, l1, l2);
                const RunDiff df = compareRuns(o1, o2, l1, l2);
                const double rel = df.rel, le = df.lse;
                const long nanBad = df.nanBad;
                scoreMagnitude<<<(H * N + 127) / 128, 128>>>(in.q16, in.k16, dMag, H, Hkv, N, (float)s.scale);
                CK(cudaMemcpy(mag.data(), dMag, mag.size() * 4, cudaMemcpyDeviceToHost));
                double ratio = 0, magMax = 0;
                for (size_t i = 0; i < l1.size(); i++) {
                    magMax = std::max(magMax, (double)mag[i]);
                    if (std::isfinite(l1[i]) && std::isfinite(l2[i]))
                        ratio = std::max(ratio, fabs(l1[i] - l2[i]) / (1e-2 + mag[i] / 2048.0));
                }
                // the numerics contract's e4m3 bounds (docs/numerics.md): output 5e-2 (P rounded to e4m3), LSE
                // 1e-2 + A / 2048 per row (FP8 accumulation); the bf16 kernel's own errors are far below both
                bool ok = rel < 5e-2 && ratio <= 1 && nanBad == 0;
                printf("check %-9s %s scales: e4m3 vs bf16 rel err %.3e, max lse diff %.3e (%.2f of the bound, max A %.0f), "
                       "nan/inf mismatches %ld %s\n", nm, rep == 0 ? "unit    " : "per-head", rel, le, ratio, magMax, nanBad,
                       ok ? "ok" : "FAIL");
                if (!ok) fails++;
                freePlan(d);
            }
        cudaFree(dMag);
        release(in);
    }

    // timing
    if (NT > 0) {
        int H = 32, N = NT;
        Inputs in;
        alloc(in, H, H, N);
        fill(in, H, H, N, 11, true);
        Scalars s = scalars(H, H, N);
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        const char* names[] = {"dense", "causal", "window", "blocks10"};
        printf("timing N=%d H=32 D=128, TFLOP/s on admitted pairs (median of %d)\n", N, iters);
        for (const char* nm : names) {
            HostPlan hp = makePlan(nm, N, H, 42);
            Plan d;
            upload(d, hp);
            double t[2];
            for (int e8 = 1; e8 >= 0; e8--) {
                std::vector<float> ms;
                for (int i = 0; i < iters + 2; i++) {
                    CK(cudaEventRecord(e0));
                    launch(e8, in, d, s);
                    CK(cudaEventRecord(e1));
                    CK(cudaEventSynchronize(e1));
                    CK(cudaGetLastError());
                    float x;
                    CK(cudaEventElapsedTime(&x, e0, e1));
                    if (i >= 2) ms.push_back(x);
                }
                std::sort(ms.begin(), ms.end());
                t[e8] = ms[ms.size() / 2];
            }
            double fl = 4.0 * 128 * H * hp.admitted;
            printf("%-9s e4m3 %8.3f ms %6.1f TFLOP/s | bf16 %8.3f ms %6.1f TFLOP/s | e4m3/bf16 speed %.2f\n", nm, t[1],
                   fl / t[1] / 1e9, t[0], fl / t[0] / 1e9, t[0] / t[1]);
            freePlan(d);
        }
        release(in);
    }
    printf("%s\n", fails ? "FAILURES" : "all checks passed");
    return fails ? 1 : 0;
}
