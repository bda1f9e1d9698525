// Dev-only check of the sm_90a wgmma kernel, without Java: a single-tile layout micro-test (S = Q·Kᵀ and
// O = P·V through the swizzled descriptors against a host fp64 reference), then the full kernel
// sparsa_wg_bf16_d128_r128 against the validated mma.sync kernel sparsa_tc_bf16_d128_r128 on the same
// device-format plans (dense, causal, window, random blocks, and a mixed plan with listed rows, partial
// blocks under a band+sinks+causal predicate, gathered and unconditional keys with log-weights, GQA),
// then timings of both at B=1, H=32, D=128 (CUDA events, median).
// Build: nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o wgcheck kernels-cuda/bench/wgmma-check.cu
// Run (on the H200, from a carried folder): ./wgcheck [N for timing, default 32768; 0 skips timing] [iters]
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "../src/main/cuda/sparsa_plan.cuh"

using namespace sparsa;

#include "../src/main/cuda/sparsa_prefill_mma.cuh"
#include "../src/main/cuda/sparsa_prefill_wgmma.cuh"

// the two kernels compared, as the rows of sparsa_kernels.def define them
SPARSA_TC_NAMED(sparsa_tc_bf16_d128_r128, __nv_bfloat16, 128, 128, 128)
SPARSA_WG_NAMED(sparsa_wg_bf16_d128_r128, __nv_bfloat16, 128)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(2);                                                                            \
        }                                                                                       \
    } while (0)

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
    int warp = t >> 5, lane = t & 31, g = lane >> 2, t4 = lane & 3;
    for (int nb = 0; nb < 8; nb++)
        for (int e = 0; e < 4; e++) {
            int row = warp * 16 + g + (e >= 2 ? 8 : 0), col = nb * 8 + 2 * t4 + (e & 1);
            sOut[row * 64 + col] = s[nb][e];
        }
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
    for (int nb = 0; nb < 16; nb++)
        for (int e = 0; e < 4; e++) {
            int row = warp * 16 + g + (e >= 2 ? 8 : 0), col = nb * 8 + 2 * t4 + (e & 1);
            oOut[row * 128 + col] = o[nb][e];
        }
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

// ---------------------------------------------------------------- plans in the device format
struct TilePlan {
    std::vector<int> rows;     // empty: contiguous from rowStart
    int rowStart = 0, rowCount = 0;
    std::vector<int> full, partial, gather, uncond;
    std::vector<float> gatherLw, uncondLw;
};
struct Pred {
    int causal = 0, bandLo = INT32_MIN, bandHi = INT32_MAX, sinks = 0;
};
struct HostPlan {
    std::vector<int> ints, work;
    std::vector<float> floats;
    double admitted = 0;  // per head
};

static int addI(std::vector<int>& pool, const std::vector<int>& a) {
    int at = (int)pool.size();
    pool.insert(pool.end(), a.begin(), a.end());
    return at;
}
static int addF(std::vector<float>& pool, const std::vector<float>& a) {
    int at = (int)pool.size();
    pool.insert(pool.end(), a.begin(), a.end());
    return at;
}

static HostPlan build(const std::vector<TilePlan>& tiles, const Pred& p, int slices) {
    HostPlan hp;
    hp.ints.assign(32, 0);
    int T = (int)tiles.size();
    std::vector<int> rs(T), rc(T), rlo(T), rl, fo(T + 1), fb, po(T + 1), pb, go(T + 1), gk, uo(T + 1), uk;
    std::vector<float> gl, ul;
    for (int t = 0; t < T; t++) {
        const TilePlan& tp = tiles[t];
        rs[t] = tp.rowStart;
        rc[t] = tp.rows.empty() ? tp.rowCount : (int)tp.rows.size();
        rlo[t] = tp.rows.empty() ? -1 : (int)rl.size();
        rl.insert(rl.end(), tp.rows.begin(), tp.rows.end());
        fo[t] = (int)fb.size(); fb.insert(fb.end(), tp.full.begin(), tp.full.end());
        po[t] = (int)pb.size(); pb.insert(pb.end(), tp.partial.begin(), tp.partial.end());
        go[t] = (int)gk.size(); gk.insert(gk.end(), tp.gather.begin(), tp.gather.end());
        gl.insert(gl.end(), tp.gatherLw.begin(), tp.gatherLw.end());
        uo[t] = (int)uk.size(); uk.insert(uk.end(), tp.uncond.begin(), tp.uncond.end());
        ul.insert(ul.end(), tp.uncondLw.begin(), tp.uncondLw.end());
    }
    fo[T] = (int)fb.size(); po[T] = (int)pb.size(); go[T] = (int)gk.size(); uo[T] = (int)uk.size();
    int li[32] = {0};
    li[0] = addI(hp.ints, rs); li[1] = addI(hp.ints, rc); li[2] = addI(hp.ints, rlo); li[3] = addI(hp.ints, rl);
    li[4] = addI(hp.ints, fo); li[5] = addI(hp.ints, fb); li[6] = addI(hp.ints, po); li[7] = addI(hp.ints, pb);
    li[8] = addI(hp.ints, go); li[9] = addI(hp.ints, gk); li[10] = addI(hp.ints, uo); li[11] = addI(hp.ints, uk);
    hp.floats.push_back(0.f);
    li[12] = addF(hp.floats, gl); li[13] = addF(hp.floats, ul);
    li[14] = p.causal; li[15] = p.bandLo; li[16] = p.bandHi; li[17] = p.sinks;
    li[18] = 0; li[19] = 0; li[20] = 0; li[21] = 0; li[22] = 0; li[23] = -1; li[24] = -1;
    for (int i = 0; i < 32; i++) hp.ints[i] = li[i];
    hp.ints.push_back(0);
    std::vector<std::pair<long, int>> order;
    for (int t = 0; t < T; t++) {
        long cost = 2L * (tiles[t].full.size() + tiles[t].partial.size()) + (tiles[t].gather.size() + 63) / 64
                    + (tiles[t].uncond.size() + 63) / 64;
        order.push_back({-cost, t});
    }
    std::stable_sort(order.begin(), order.end());
    for (int s = 0; s < slices; s++)
        for (auto& o : order) {
            int w[8] = {s, 0, o.second, 0, -1, 0, 0, 0};
            hp.work.insert(hp.work.end(), w, w + 8);
        }
    return hp;
}

// contiguous tiles of 128 rows over N; block b of tile t: 0 = skip, 1 = full, 2 = partial
template <typename F>
static std::vector<TilePlan> blockTiles(int N, F cls) {
    std::vector<TilePlan> v;
    for (int t = 0; t < N / 128; t++) {
        TilePlan tp;
        tp.rowStart = t * 128;
        tp.rowCount = 128;
        for (int b = 0; b < N / 128; b++) {
            int c = cls(t, b);
            if (c == 1) tp.full.push_back(b);
            if (c == 2) tp.partial.push_back(b);
        }
        v.push_back(tp);
    }
    return v;
}

static HostPlan makePlan(const char* name, int N, int slices, unsigned seed) {
    Pred p;
    std::vector<TilePlan> tiles;
    double adm = 0;
    if (!strcmp(name, "dense")) {
        tiles = blockTiles(N, [](int, int) { return 1; });
        adm = (double)N * N;
    } else if (!strcmp(name, "causal")) {
        p.causal = 1;
        tiles = blockTiles(N, [](int t, int b) { return b < t ? 1 : b == t ? 2 : 0; });
        adm = (double)N * (N + 1) / 2;
    } else if (!strcmp(name, "window")) {
        p.causal = 1; p.bandLo = 0; p.bandHi = 1023;
        tiles = blockTiles(N, [&](int t, int b) {
            long rmin = 128L * t, rmax = rmin + 127, kmin = 128L * b, kmax = kmin + 127;
            if (kmin > rmax || kmax < rmin - 1023) return 0;
            return (kmax <= rmin && kmin >= rmax - 1023) ? 1 : 2;
        });
        for (long i = 0; i < N; i++) adm += std::min<long>(i + 1, 1024);
    } else if (!strcmp(name, "window-full")) {  // the window's blocks, all marked full: no masking cost
        tiles = blockTiles(N, [&](int t, int b) { return (b <= t && b >= t - 8) ? 1 : 0; });
        long cnt = 0;
        for (int t = 0; t < N / 128; t++) cnt += std::min(t, 8) + 1;
        adm = (double)cnt * 128 * 128;
    } else if (!strcmp(name, "one-block")) {  // one full block per tile: per-tile fixed cost
        tiles = blockTiles(N, [&](int t, int b) { return b == t ? 1 : 0; });
        adm = (double)N * 128;
    } else if (!strcmp(name, "blocks10")) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<double> u;
        long count = 0;
        tiles = blockTiles(N, [&](int t, int b) { int c = u(rng) < 0.1 ? 1 : 0; count += c; return c; });
        adm = (double)count * 128 * 128;
    } else {  // mixed
        p.causal = 1; p.bandLo = 0; p.bandHi = 300; p.sinks = 4;
        std::mt19937 rng(seed);
        std::vector<int> perm(N);
        for (int i = 0; i < N; i++) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::uniform_real_distribution<float> u(-1.f, 0.f);
        for (int t = 0; t < N / 128; t++) {
            TilePlan tp;  // listed rows: 128 of a permutation, some tiles cut short (their other rows stay unwritten)
            tp.rows.assign(perm.begin() + t * 128, perm.begin() + t * 128 + 128);
            if (t % 5 == 1) tp.rows.resize(77);
            if (t % 7 == 3) tp.rows.resize(40);
            for (int b = 0; b < N / 128; b++) {
                int r = rng() % 10;
                if (r == 0) tp.full.push_back(b);
                else if (r < 3) tp.partial.push_back(b);
            }
            int ng = rng() % 150, nu = rng() % 40;
            for (int i = 0; i < ng; i++) { tp.gather.push_back(rng() % N); tp.gatherLw.push_back(u(rng)); }
            for (int i = 0; i < nu; i++) { tp.uncond.push_back(rng() % N); tp.uncondLw.push_back(u(rng)); }
            if (t == 2) { tp.full.clear(); tp.partial.clear(); tp.gather.clear(); tp.gatherLw.clear(); tp.uncond.clear(); tp.uncondLw.clear(); }
            tiles.push_back(tp);
        }
    }
    HostPlan hp = build(tiles, p, slices);
    hp.admitted = adm;
    return hp;
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

static Scalars scalars(int H, int Hkv, int N) {
    Scalars s;
    long long D = 128;
    s.qsb = (long long)H * N * D; s.qsh = (long long)N * D; s.qss = D;
    s.ksb = (long long)Hkv * N * D; s.ksh = (long long)N * D; s.kss = D;
    s.vsb = s.ksb; s.vsh = s.ksh; s.vss = D;
    s.osb = s.qsb; s.osh = s.qsh; s.oss = D;
    s.lsb = (long long)H * N; s.lsh = N; s.lss = 1;
    s.qHeads = H; s.group = H / Hkv; s.queryLength = N; s.keyLength = N; s.blockCols = 128; s.outKind = OUT_BF16;
    s.valueDim = 128; s.scale = 1.0 / sqrt(128.0); s.softCap = 0.0;
    return s;
}

static void upload(Dev& d, const HostPlan& hp) {
    CK(cudaMalloc(&d.ints, hp.ints.size() * 4));
    CK(cudaMalloc(&d.floats, hp.floats.size() * 4 + 4));
    CK(cudaMalloc(&d.work, hp.work.size() * 4));
    CK(cudaMemcpy(d.ints, hp.ints.data(), hp.ints.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.floats, hp.floats.data(), hp.floats.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.work, hp.work.data(), hp.work.size() * 4, cudaMemcpyHostToDevice));
    d.items = (int)hp.work.size() / 8;
}
static void freePlan(Dev& d) { cudaFree(d.ints); cudaFree(d.floats); cudaFree(d.work); }

static void launch(bool wg, const Dev& d, const Scalars& s) {
    if (wg) {
        static int sms = 0;  // the persistent kernel's grid: one CTA per multiprocessor
        if (sms == 0) CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
        sparsa_wg_bf16_d128_r128<<<std::min(d.items, sms), 384, WgConfig<bf, 128>::SMEM>>>(
            d.q, d.k, d.v, d.out, d.lse, nullptr, nullptr, d.ints, d.floats, d.work, s, d.items);
    } else {
        using C = TcConfig<bf, 128, 128, 128>;
        sparsa_tc_bf16_d128_r128<<<d.items, C::THREADS, C::SMEM>>>(d.q, d.k, d.v, d.out, d.lse, nullptr, nullptr, d.ints,
                                                                   d.floats, d.work, s);
    }
}

int main(int argc, char** argv) {
    int NT = argc > 1 ? atoi(argv[1]) : 32768;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    CK(cudaFuncSetAttribute(sparsa_wg_bf16_d128_r128, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)WgConfig<bf, 128>::SMEM));
    CK(cudaFuncSetAttribute(sparsa_tc_bf16_d128_r128, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)TcConfig<bf, 128, 128, 128>::SMEM));
    int fails = microTest();

    // correctness: wg vs tc on small problems (GQA 4/2)
    {
        int H = 4, Hkv = 2, N = 2048;
        Dev d;
        long nq = (long)H * N * 128, nk = (long)Hkv * N * 128;
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
                Scalars s = scalars(H, Hkv, N);
                for (int wg = 0; wg < 2; wg++) {
                    CK(cudaMemset(d.out, 0xff, nq * 2));
                    CK(cudaMemset(d.lse, 0xff, (long)H * N * 4));
                    launch(wg, d, s);
                    CK(cudaGetLastError());
                    CK(cudaDeviceSynchronize());
                    CK(cudaMemcpy((wg ? o2 : o1).data(), d.out, nq * 2, cudaMemcpyDeviceToHost));
                    CK(cudaMemcpy((wg ? l2 : l1).data(), d.lse, (long)H * N * 4, cudaMemcpyDeviceToHost));
                }
                double e = 0, n = 0, le = 0;
                long nanBad = 0;
                for (long i = 0; i < nq; i++) {
                    bf a, b;
                    memcpy(&a, &o1[i], 2); memcpy(&b, &o2[i], 2);
                    float x = b2f(a), y = b2f(b);
                    if (std::isnan(x) != std::isnan(y)) { nanBad++; continue; }
                    if (std::isnan(x)) continue;
                    e += (double)(x - y) * (x - y); n += (double)x * x;
                }
                for (long i = 0; i < (long)H * N; i++) {
                    if (std::isinf(l1[i]) || std::isinf(l2[i])) { if (l1[i] != l2[i]) nanBad++; continue; }
                    if (std::isnan(l1[i]) != std::isnan(l2[i])) { nanBad++; continue; }
                    if (!std::isnan(l1[i])) le = std::max(le, (double)fabs(l1[i] - l2[i]));
                }
                double rel = sqrt(e / std::max(n, 1e-30));
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
        long n = (long)H * N * 128;
        CK(cudaMalloc(&d.q, n * 2)); CK(cudaMalloc(&d.k, n * 2)); CK(cudaMalloc(&d.v, n * 2));
        CK(cudaMalloc(&d.out, n * 2)); CK(cudaMalloc(&d.lse, (long)H * N * 4));
        fillRandom<<<1024, 256>>>(d.q, n, 11); fillRandom<<<1024, 256>>>(d.k, n, 12); fillRandom<<<1024, 256>>>(d.v, n, 13);
        Scalars s = scalars(H, H, N);
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        const char* names[] = {"dense", "causal", "window", "blocks10", "window-full", "one-block"};
        printf("timing N=%d H=32 D=128 bf16, TFLOP/s on admitted pairs (median of %d)\n", N, iters);
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
            double fl = 4.0 * 128 * H * hp.admitted;
            printf("%-9s wg %8.3f ms %6.1f TFLOP/s | tc %8.3f ms %6.1f TFLOP/s\n", nm, t[1], fl / t[1] / 1e9, t[0],
                   fl / t[0] / 1e9);
            freePlan(d);
        }
    }
    printf("%s\n", fails ? "FAILURES" : "all checks passed");
    return fails ? 1 : 0;
}
