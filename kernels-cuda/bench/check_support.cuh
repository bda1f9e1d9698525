// What the dev-only kernel checks (wgmma-check.cu, e4m3-check.cu) share, without Java: device-format plans
// built on the host (tiles of block slices, gathered and unconditional keys with log-weights, listed rows, a
// predicate, and the cost-ordered work list, in the layout of sparsa_plan.cuh; makePlan(name, N, slices,
// seed) gives the named plans the checks and timings use: dense, causal, window (causal, 1024 keys),
// window-full, one-block, blocks10 (random blocks at 10 %), and mixed; upload and freePlan for any struct with
// the fields ints, floats, work and items), the call scalars of B=1, H query and Hkv KV heads, N rows and keys
// at head dim D, 128 unless given (scalars), the comparison of two kernels' bf16 outputs and LSEs (compareRuns), the micro-tests' accumulator store
// (storeFragment), running two kernels on the same call (runBoth), the Hopper kernel's tensor maps of K, V and Q
// (wgMaps: on unless SPARSA_TMA=0 in the environment; cuTensorMapEncodeTiled comes from the driver through the
// runtime, so nothing links the driver library), and CK. Included after sparsa_prefill_wgmma.cuh.
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

// every CUDA runtime call checked: a failure prints the call and its error and exits with status 2
#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(2);                                                                            \
        }                                                                                       \
    } while (0)

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


// Two runs' bf16 outputs (n elements, raw bits) and f32 LSEs (rows): the relative Frobenius difference of the
// outputs, the largest absolute LSE difference, and the count of NaN/infinity mismatches (a NaN or an
// infinity on one side only).
struct RunDiff {
    double rel, lse;
    long nanBad;
};
static RunDiff compareRuns(const std::vector<uint16_t>& o1, const std::vector<uint16_t>& o2, const std::vector<float>& l1,
                           const std::vector<float>& l2) {
    double e = 0, n = 0, le = 0;
    long nanBad = 0;
    for (size_t i = 0; i < o1.size(); i++) {
        __nv_bfloat16 a, b;
        memcpy(&a, &o1[i], 2);
        memcpy(&b, &o2[i], 2);
        float x = __bfloat162float(a), y = __bfloat162float(b);
        if (std::isnan(x) != std::isnan(y)) { nanBad++; continue; }
        if (std::isnan(x)) continue;
        e += (double)(x - y) * (x - y);
        n += (double)x * x;
    }
    for (size_t i = 0; i < l1.size(); i++) {
        if (std::isinf(l1[i]) || std::isinf(l2[i])) { if (l1[i] != l2[i]) nanBad++; continue; }
        if (std::isnan(l1[i]) != std::isnan(l2[i])) { nanBad++; continue; }
        if (!std::isnan(l1[i])) le = std::max(le, (double)fabs(l1[i] - l2[i]));
    }
    return {sqrt(e / std::max(n, 1e-30)), le, nanBad};
}

static Scalars scalars(int H, int Hkv, int N, int headDim = 128) {
    Scalars s;
    const long long D = headDim;
    s.qsb = (long long)H * N * D; s.qsh = (long long)N * D; s.qss = D;
    s.ksb = (long long)Hkv * N * D; s.ksh = (long long)N * D; s.kss = D;
    s.vsb = s.ksb; s.vsh = s.ksh; s.vss = D;
    s.osb = s.qsb; s.osh = s.qsh; s.oss = D;
    s.lsb = (long long)H * N; s.lsh = N; s.lss = 1;
    s.qHeads = H; s.group = H / Hkv; s.queryLength = N; s.keyLength = N; s.blockCols = 128; s.outKind = OUT_BF16;
    s.valueDim = headDim; s.scale = 1.0 / sqrt((double)headDim); s.softCap = 0.0;
    return s;
}

// a plan's arrays on the device, in any struct with the fields ints, floats, work (device pointers) and items
template <typename P>
static void upload(P& d, const HostPlan& hp) {
    CK(cudaMalloc(&d.ints, hp.ints.size() * 4));
    CK(cudaMalloc(&d.floats, hp.floats.size() * 4 + 4));
    CK(cudaMalloc(&d.work, hp.work.size() * 4));
    CK(cudaMemcpy(d.ints, hp.ints.data(), hp.ints.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.floats, hp.floats.data(), hp.floats.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.work, hp.work.data(), hp.work.size() * 4, cudaMemcpyHostToDevice));
    d.items = (int)hp.work.size() / 8;
}
template <typename P>
static void freePlan(P& d) {
    cudaFree(d.ints);
    cudaFree(d.floats);
    cudaFree(d.work);
}

// A warpgroup's wgmma accumulator fragment (NB n-blocks of 8 columns, 64 rows) stored row-major into out
// (64 × 8·NB floats); t is the thread's index in the warpgroup.
template <int NB>
__device__ void storeFragment(const float (&a)[NB][4], float* out, int t) {
    const int warp = t >> 5, lane = t & 31, g = lane >> 2, t4 = lane & 3;
    for (int nb = 0; nb < NB; nb++)
        for (int e = 0; e < 4; e++)
            out[(warp * 16 + g + (e >= 2 ? 8 : 0)) * (8 * NB) + nb * 8 + 2 * t4 + (e & 1)] = a[nb][e];
}

// Runs launch(0) and launch(1) (two kernels on the same inputs and plan) one after the other, each into a
// NaN-filled output and LSE, and copies their bf16 outputs (o1.size() elements) and LSEs back.
template <typename F>
static void runBoth(F launch, void* out, float* lse, std::vector<uint16_t>& o1, std::vector<uint16_t>& o2,
                    std::vector<float>& l1, std::vector<float>& l2) {
    for (int which = 0; which < 2; which++) {
        CK(cudaMemset(out, 0xff, o1.size() * 2));
        CK(cudaMemset(lse, 0xff, l1.size() * 4));
        launch(which);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy((which ? o2 : o1).data(), out, o1.size() * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy((which ? l2 : l1).data(), lse, l1.size() * 4, cudaMemcpyDeviceToHost));
    }
}

// The Hopper kernel's TMA maps of K, V and Q (B = 1, kvHeads and qHeads heads, keyLength keys and queryLength rows,
// head dim D, elements of esz bytes, strides of s), as CudaTensorMaps builds them: off (cp.async for every chunk
// and Q) when SPARSA_TMA=0.
static WgMaps wgMaps(const void* q, const void* k, const void* v, const Scalars& s, int kvHeads, int D, int esz) {
    WgMaps m;
    memset(&m, 0, sizeof m);
    const char* env = getenv("SPARSA_TMA");
    if (env && strcmp(env, "0") == 0) return m;
    // the driver's entry point through the runtime, so that the programs need no driver library to link
    typedef CUresult (*Encode)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                               const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                               CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
    static Encode encode = nullptr;
    if (!encode) {
        cudaDriverEntryPointQueryResult q;
        CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", reinterpret_cast<void**>(&encode), 12000,
                                            cudaEnableDefault, &q));
        if (q != cudaDriverEntryPointSuccess || !encode) {
            fprintf(stderr, "cuTensorMapEncodeTiled: not found in the driver\n");
            exit(2);
        }
    }
    const CUtensorMapDataType dt = esz == 2 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8;
    const long long strides[3][3] = {{s.kss, s.ksh, s.ksb}, {s.vss, s.vsh, s.vsb}, {s.qss, s.qsh, s.qsb}};
    const void* base[3] = {k, v, q};
    CUtensorMap* out[3] = {&m.k, &m.v, &m.q};
    for (int i = 0; i < 3; i++) {
        cuuint64_t dims[4] = {(cuuint64_t)D, (cuuint64_t)(i < 2 ? s.keyLength : s.queryLength),
                              (cuuint64_t)(i < 2 ? kvHeads : s.qHeads), 1};
        cuuint64_t str[3] = {(cuuint64_t)(strides[i][0] * esz), (cuuint64_t)(strides[i][1] * esz),
                             (cuuint64_t)(strides[i][2] * esz)};
        cuuint32_t box[4] = {(cuuint32_t)(128 / esz), i < 2 ? 64u : 128u, 1, 1}, es[4] = {1, 1, 1, 1};
        CUresult r = encode(out[i], dt, 4, const_cast<void*>(base[i]), dims, str, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
        if (r != CUDA_SUCCESS) {
            fprintf(stderr, "cuTensorMapEncodeTiled: error %d\n", (int)r);
            exit(2);
        }
    }
    m.on = 1;
    return m;
}
