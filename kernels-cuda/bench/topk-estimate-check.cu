// Dev-only check of TopKPerQueryBlock's device estimate (sparsa_topk_estimate.cuh), without Java: 240
// random contexts (64/128-row tiles, head dims 64/128, causal and not, Nq != Nk, query offsets, GQA,
// f32/f16/bf16, random keys, constant keys, keys repeated mod 7, sinks and windows, k above the keys,
// up to 53248 keys): sparsa_tk_mean's tile means bit for bit against host f32 sums, sparsa_tk_select's
// lists against a host top-k (std::fmaf chains, ties to the lower key, NaN never, forced keys out), and
// sparsa_tk_emit's CSR arrays against tkTileLists run on the host per tile; then the times of the mean
// and selection kernels at bf16 B=1 H=32 D=128 N=32768 causal, k = 2048, sinks 64, window 1024 (CUDA
// events). Prints PASS or FAIL.
// Build: nvcc -O2 -std=c++17 -arch=sm_90a -o tkcheck kernels-cuda/bench/topk-estimate-check.cu
// Run (on the H200): ./tkcheck

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
#include <random>
#include <cstring>
#include "../src/main/cuda/sparsa_topk_estimate.cuh"

// The one-kernel forms of the selection and the layout, which this check holds against host references (the
// library runs the split kernels of the header, which make the same selection and arrays).

// The one-kernel form of sparsa_tk_scores + sparsa_tk_rank (the same selection). Grid (tiles, slices), TK_THREADS
// threads (a multiple of 32); dynamic shared memory: dim floats (rounded up to 4), then one order key per key of the
// tile's candidates (at most nk).
// means: [slice][tile][dim]; K by element strides (kind: its dtype). Writes sel[(slice * tiles + t) * k + r]
// ascending and selCount.
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_select(const float* means, const void* kx, int kind,
                                                                   long long ksb, long long ksh, long long kss,
                                                                   int qHeads, int group, int tiles, int dim, int rows,
                                                                   int nq, int nk, int causal, int queryOffset,
                                                                   int sinks, int window, int k, int* sel,
                                                                   int* selCount) {
    using namespace sparsa;
    if (kind == OUT_BF16) {
        tkSelect<__nv_bfloat16>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset,
                                sinks, window, k, sel, selCount);
    } else if (kind == OUT_F16) {
        tkSelect<__half>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset, sinks,
                         window, k, sel, selCount);
    } else {
        tkSelect<float>(means, kx, ksb, ksh, kss, qHeads, group, tiles, dim, rows, nq, nk, causal, queryOffset, sinks,
                        window, k, sel, selCount);
    }
}

// The serial form of sparsa_tk_emit_counts + sparsa_tk_emit_offsets + sparsa_tk_emit_tiles (the same arrays;
// CudaTopKEstimatedPlan runs those).
// Grid (slices), 512 threads. Slice s's arrays start at ints[base + s * sliceStride]: full offsets, partial
// offsets, gather offsets, unconditional offsets (tiles + 1 each), then full blocks (tiles * capB), partial
// blocks (tiles * capB), gathered keys (tiles * capG), unconditional keys (tiles * k). The predicate is the
// layout's (causal ∧ band [bandLo, bandHi] ∨ sinks).
extern "C" __global__ void __launch_bounds__(512) sparsa_tk_emit(const int* sel, const int* selCount, int k, int tiles,
                                                                 int rows, int bc, int nq, int nk, int queryOffset,
                                                                 int causal, int bandLo, int bandHi, int sinks,
                                                                 int window, int capB, int capG, int* ints,
                                                                 long long base, long long sliceStride) {
    using namespace sparsa;
    __shared__ int sA[512], sB[512], sC[512], sD[512];
    int s = blockIdx.x;
    int tid = threadIdx.x;
    int nt = blockDim.x;
    int per = (tiles + nt - 1) / nt;
    int t0 = min(tiles, tid * per);
    int t1 = min(tiles, t0 + per);
    const TkSliceLists l = tkSliceLists(ints, base, sliceStride, s, tiles, capB, capG);
    int *fullOff = l.off[0], *partOff = l.off[1], *gathOff = l.off[2], *uncOff = l.off[3];
    int *fullBlk = l.data[0], *partBlk = l.data[1], *gathKey = l.data[2], *uncKey = l.data[3];
    const int* selS = sel + (long long)s * tiles * k;
    const int* cntS = selCount + (long long)s * tiles;
    int4 mine = make_int4(0, 0, 0, 0);
    for (int t = t0; t < t1; t++) {
        int4 c = tkTileLists(selS + (long long)t * k, cntS[t], t, rows, bc, nq, nk, queryOffset, causal, bandLo, bandHi,
                             sinks, window, nullptr, nullptr, nullptr, nullptr);
        mine.x += c.x;
        mine.y += c.y;
        mine.z += c.z;
        mine.w += c.w;
    }
    int4 at = mine;
    sparsa::tkScan2(at.x, at.y, sA, sB);
    sparsa::tkScan2(at.z, at.w, sC, sD);
    if (tid == 0) {
        fullOff[0] = 0;
        partOff[0] = 0;
        gathOff[0] = 0;
        uncOff[0] = 0;
    }
    for (int t = t0; t < t1; t++) {
        int4 c = tkTileLists(selS + (long long)t * k, cntS[t], t, rows, bc, nq, nk, queryOffset, causal, bandLo, bandHi,
                             sinks, window, fullBlk + at.x, partBlk + at.y, gathKey + at.z, uncKey + at.w);
        at.x += c.x;
        at.y += c.y;
        at.z += c.z;
        at.w += c.w;
        fullOff[t + 1] = at.x;
        partOff[t + 1] = at.y;
        gathOff[t + 1] = at.z;
        uncOff[t + 1] = at.w;
    }
}
using namespace sparsa;
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
int fails = 0;
int main() {
  std::mt19937_64 rng(5);
  int optin; CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, sparsa_tk_select)); printf("tk_select static smem %zu, optin %d\n", fa.sharedSizeBytes, optin);
  for (int cs = 0; cs < 240; cs++) {
    int rows = cs % 2 ? 128 : 64, bc = rows;
    int d = (cs / 2) % 2 ? 128 : 64;
    bool causal = (cs / 4) % 2 == 0;
    int kind = (cs / 8) % 3;   // OUT_F32, OUT_F16, OUT_BF16
    int data = (cs / 24) % 3;  // random keys, constant keys, keys repeated mod 7
    int nk = 1 + rng() % 3000; if (cs == 239) nk = 53248; if (cs == 238) nk = 32768;
    int mode = rng() % 3;
    int nq = mode == 0 ? nk : mode == 1 ? 1 + rng() % nk : 1 + rng() % 3000;
    if (cs >= 238) nq = 700;
    int off = causal ? nk - nq : 0;
    int qHeads = 2, group = 1 + rng() % 2, kvHeads = qHeads / group;
    int k = rng() % 4 == 0 ? nk + 5 : 1 + rng() % std::max(1, nk / 3);
    if (cs >= 238) k = 2048;
    int cap = std::min(k, nk);
    int sinks = rng() % 3 == 0 ? 0 : 1 + rng() % 150;
    int window = rows + rng() % 600;
    int tiles = (nq + rows - 1) / rows;
    std::vector<float> Q((size_t)qHeads * nq * d), K((size_t)kvHeads * nk * d);
    std::normal_distribution<float> nd;
    for (auto& x : Q) x = nd(rng);
    for (size_t i = 0; i < K.size(); i++) {
      size_t key = (i / d) % nk, h = i / ((size_t)nk * d), c = i % d;
      K[i] = data == 1 ? 0.75f : data == 2 && key >= 7 ? K[(h * nk + key % 7) * d + c] : nd(rng);
    }
    size_t esz = kind == 0 ? 4 : 2;
    std::vector<unsigned char> Qb(Q.size() * esz), Kb(K.size() * esz);
    auto conv = [&](std::vector<float>& v, std::vector<unsigned char>& b) {
      for (size_t i = 0; i < v.size(); i++) {
        if (kind == 0) memcpy(&b[i * 4], &v[i], 4);
        else if (kind == 2) { __nv_bfloat16 h = __float2bfloat16(v[i]); memcpy(&b[i * 2], &h, 2); v[i] = __bfloat162float(h); }
        else { __half h = __float2half(v[i]); memcpy(&b[i * 2], &h, 2); v[i] = __half2float(h); }
      }
    };
    conv(Q, Qb); conv(K, Kb);
    void *dQ, *dK; float* dM; int *dSel, *dCnt, *dInts;
    CK(cudaMalloc(&dQ, Qb.size())); CK(cudaMalloc(&dK, Kb.size()));
    CK(cudaMemcpy(dQ, Qb.data(), Qb.size(), cudaMemcpyHostToDevice)); CK(cudaMemcpy(dK, Kb.data(), Kb.size(), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dM, 4ull * qHeads * tiles * d)); CK(cudaMalloc(&dSel, 4ull * qHeads * tiles * std::max(1, cap))); CK(cudaMalloc(&dCnt, 4ull * qHeads * tiles));
    int thr = std::min(256, (d + 31) / 32 * 32);
    sparsa_tk_mean<<<dim3(tiles, qHeads, 1), thr>>>(dQ, kind, (long long)qHeads * nq * d, (long long)nq * d, d, qHeads, nq, d, rows, tiles, dM);
    int smem = 4 * ((d + 3) / 4 * 4) + 4 * nk;
    CK(cudaFuncSetAttribute(sparsa_tk_select, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    sparsa_tk_select<<<dim3(tiles, qHeads), 512, smem>>>(dM, dK, kind, (long long)kvHeads * nk * d, (long long)nk * d, d, qHeads, group, tiles, d, rows, nq, nk, causal, off, sinks, window, cap, dSel, dCnt);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    std::vector<float> M((size_t)qHeads * tiles * d); CK(cudaMemcpy(M.data(), dM, M.size() * 4, cudaMemcpyDeviceToHost));
    std::vector<int> Sel((size_t)qHeads * tiles * std::max(1, cap)), Cnt((size_t)qHeads * tiles);
    CK(cudaMemcpy(Sel.data(), dSel, Sel.size() * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(Cnt.data(), dCnt, Cnt.size() * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    std::vector<std::vector<int>> ref((size_t)qHeads * tiles);
    for (int h = 0; h < qHeads && bad < 3; h++) for (int t = 0; t < tiles && bad < 3; t++) {
      int r0 = t * rows, r1 = std::min(nq, r0 + rows);
      std::vector<float> m(d);
      for (int c = 0; c < d; c++) { float s = 0.f; for (int r = r0; r < r1; r++) s = s + Q[((size_t)h * nq + r) * d + c]; volatile float cnt = (float)(r1 - r0); m[c] = s / cnt; }
      for (int c = 0; c < d; c++) if (memcmp(&m[c], &M[((size_t)h * tiles + t) * d + c], 4)) { if (bad++ < 3) printf("case %d mean h%d t%d c%d %a vs %a\n", cs, h, t, c, m[c], M[((size_t)h * tiles + t) * d + c]); break; }
      long long last = causal ? std::min((long long)nk - 1, (long long)r1 - 1 + off) : nk - 1;
      int n = last < 0 ? 0 : (int)last + 1;
      long long pLo = r0 + off, pHi = r1 - 1 + off;
      std::vector<std::pair<float, int>> cand;
      for (int key = 0; key < n; key++) {
        bool forced = key < sinks || (key >= std::max(0ll, pHi - window + 1) && key <= pLo);
        if (forced) continue;
        float s = 0.f; const float* kr = &K[((size_t)(h / group) * nk + key) * d];
        for (int c = 0; c < d; c++) s = fmaf(m[c], kr[c], s);
        if (s != s) continue;
        if (s == 0.f) s = 0.f;
        cand.push_back({s, key});
      }
      std::sort(cand.begin(), cand.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
      std::vector<int> want;
      for (size_t i = 0; i < cand.size() && (int)i < cap; i++) want.push_back(cand[i].second);
      std::sort(want.begin(), want.end());
      ref[(size_t)h * tiles + t] = want;
      int got = Cnt[(size_t)h * tiles + t];
      bool same = got == (int)want.size();
      for (int i = 0; same && i < got; i++) same = Sel[((size_t)h * tiles + t) * cap + i] == want[i];
      if (!same && bad++ < 3) printf("case %d sel h%d t%d: count %d vs %zu (n %d k %d)\n", cs, h, t, got, want.size(), n, cap);
    }
    int sinkBlocks = sinks == 0 ? 0 : (std::min(sinks, nk) - 1) / bc + 1, capB = 1;
    for (int t = 0; t < tiles; t++) {
      long long pLo = (long long)t * rows + off, pHi = pLo + std::min(rows, nq - t * rows) - 1;
      long long lo = std::max(0ll, pLo - window + 1), hi = std::min((long long)nk - 1, pHi);
      long long bLo = hi < lo ? 1 : lo / bc, bHi = hi < lo ? 0 : hi / bc, second = std::max((long long)sinkBlocks, bLo);
      capB = std::max(capB, (int)(sinkBlocks + std::max(0ll, bHi - second + 1)));
    }
    int capG = capB * bc;
    long long stride = 4ll * (tiles + 1) + (long long)tiles * (2ll * capB + capG + cap);
    CK(cudaMalloc(&dInts, 4ull * stride * qHeads)); CK(cudaMemset(dInts, 0xff, 4ull * stride * qHeads));
    int bandHi = window - 1;
    sparsa_tk_emit<<<qHeads, 512>>>(dSel, dCnt, cap, tiles, rows, bc, nq, nk, off, causal, 0, bandHi, sinks, window, capB, capG, dInts, 0, stride);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    std::vector<int> I((size_t)stride * qHeads); CK(cudaMemcpy(I.data(), dInts, I.size() * 4, cudaMemcpyDeviceToHost));
    for (int h = 0; h < qHeads && !bad; h++) {
      const int* base = &I[(size_t)h * stride];
      const int* offs[4] = {base, base + tiles + 1, base + 2 * (tiles + 1), base + 3 * (tiles + 1)};
      const int* dat[4]; dat[0] = base + 4 * (tiles + 1); dat[1] = dat[0] + (size_t)tiles * capB; dat[2] = dat[1] + (size_t)tiles * capB; dat[3] = dat[2] + (size_t)tiles * capG;
      int at[4] = {0, 0, 0, 0};
      for (int t = 0; t < tiles && !bad; t++) {
        std::vector<int> f(capB), p(capB), g(capG), u(std::max(1, cap));
        auto& w = ref[(size_t)h * tiles + t];
        int4 c = tkTileLists(w.data(), (int)w.size(), t, rows, bc, nq, nk, off, causal, 0, bandHi, sinks, window, f.data(), p.data(), g.data(), u.data());
        int cnts[4] = {c.x, c.y, c.z, c.w}; std::vector<int>* v[4] = {&f, &p, &g, &u};
        for (int j = 0; j < 4 && !bad; j++) {
          if (offs[j][t] != at[j] || offs[j][t + 1] != at[j] + cnts[j]) { bad++; printf("case %d emit h%d t%d list %d offsets %d..%d want %d+%d\n", cs, h, t, j, offs[j][t], offs[j][t+1], at[j], cnts[j]); }
          for (int i = 0; i < cnts[j] && !bad; i++) if (dat[j][at[j] + i] != (*v[j])[i]) { bad++; printf("case %d emit h%d t%d list %d item %d\n", cs, h, t, j, i); }
          at[j] += cnts[j];
        }
      }
    }
    if (bad) fails++;
    if (cs % 40 == 0 || cs >= 238) printf("case %d nq %d nk %d d %d rows %d causal %d kind %d data %d k %d sinks %d window %d: %s\n", cs, nq, nk, d, rows, causal, kind, data, cap, sinks, window, bad ? "FAIL" : "ok");
    cudaFree(dQ); cudaFree(dK); cudaFree(dM); cudaFree(dSel); cudaFree(dCnt); cudaFree(dInts);
  }
  {
    int nq = 32768, nk = 32768, d = 128, H = 32, rows = 64, tiles = nq / rows, cap = 2048;
    size_t el = (size_t)H * nq * d;
    void *dQ, *dK; float* dM; int *dSel, *dCnt;
    CK(cudaMalloc(&dQ, el * 2)); CK(cudaMalloc(&dK, el * 2)); CK(cudaMemset(dQ, 0x3c, el * 2)); 
    std::vector<__nv_bfloat16> kh(el); std::normal_distribution<float> nd; for (auto& x : kh) x = __float2bfloat16(nd(rng));
    CK(cudaMemcpy(dK, kh.data(), el * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dQ, kh.data(), el * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dM, 4ull * H * tiles * d)); CK(cudaMalloc(&dSel, 4ull * H * tiles * cap)); CK(cudaMalloc(&dCnt, 4ull * H * tiles));
    int smem = 4 * d + 4 * nk;
    CK(cudaFuncSetAttribute(sparsa_tk_select, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    for (int it = 0; it < 4; it++) {
      cudaEventRecord(a);
      sparsa_tk_mean<<<dim3(tiles, H, 1), 128>>>(dQ, 2, el, (long long)nq * d, d, H, nq, d, rows, tiles, dM);
      cudaEventRecord(b); cudaEventSynchronize(b); float ms1; cudaEventElapsedTime(&ms1, a, b);
      cudaEventRecord(a);
      sparsa_tk_select<<<dim3(tiles, H), 512, smem>>>(dM, dK, 2, el, (long long)nk * d, d, H, 1, tiles, d, rows, nq, nk, 1, 0, 64, 1024, cap, dSel, dCnt);
      cudaEventRecord(b); cudaEventSynchronize(b); float ms2; cudaEventElapsedTime(&ms2, a, b);
      CK(cudaGetLastError());
      printf("bench shape: tk_mean %.3f ms, tk_select %.3f ms\n", ms1, ms2);
    }
  }
  printf("%s: %d failing cases\n", fails ? "FAIL" : "PASS", fails);
  return fails != 0;
}
