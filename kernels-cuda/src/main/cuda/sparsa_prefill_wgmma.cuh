// Sparsa: the Hopper (sm_90a) prefill kernel family (wgmma, FlashAttention-3 style). It shares the masking
// and softmax helpers of sparsa_softmax.cuh with the mma.sync family (sparsa_prefill_mma.cuh).
//
//  sparsa_wg_<bf16|f16>_d<64|128|256>_r128, sparsa_wg_e4m3_d128_r128: persistent (one CTA per SM walks the
//      cost-sorted work list with a stride of gridDim.x; the item count follows the scalars, then the tensor
//      maps and, for e4m3, the scales), three warpgroups. Warpgroup 2 is the producer: per tile it writes the
//      rows and tile info to shared memory, loads Q once the consumers have taken the previous tile's Q into
//      registers, and copies each 64-key chunk's K and V rows into 128-byte-swizzled shared memory, STAGES
//      deep, each of its warps owning every 4th chunk and signalling a "full" mbarrier once its copies landed.
//      Block slices, and Q for tiles of consecutive rows, come by TMA (WgMaps); gathered keys, short slices
//      and listed rows by cp.async.
//      Warpgroups 0 and 1 are consumers of 64 query rows each, taking turns at the tensor cores (FA3's
//      ping-pong): S = Q·Kᵀ with wgmma (Q from registers, K from shared memory, K-major), the
//      mask and online softmax in registers, O += P·V with wgmma (P from registers, V from shared memory,
//      MN-major through the transpose bit; e4m3: Vᵀ) issued in the next turn, then the stage goes back
//      through an "empty" mbarrier. The e4m3 and head dim 64 kernels take two chunks per turn (128 keys, one
//      softmax update) from a ring of 8 stages (WgConfig::PAIR). Plan semantics are those of sparsa_tc_*: the
//      same chunk list, predicate paths, log-weights, LSE and scratch partials.
// The kernel is compiled only into the sm_90a image; every other target gets a stub that traps (the
// runtime picks it only on compute capability 9.0). This header holds the kernel body (wgKernel) and
// SPARSA_WG_NAMED, the entry point's definition; the instantiations are rows of sparsa_kernels.def.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include "sparsa_plan.cuh"
#include "sparsa_convert.cuh"
#include "sparsa_mma.cuh"
#include "sparsa_softmax.cuh"

using namespace sparsa;

// The e4m3 form (T = __nv_fp8_e4m3, head dim 128): Q and K rows of 128 bytes are one 128-byte swizzle row
// each, so Q·K is the bf16 head dim 64 form with k32 steps. wgmma reads an 8-bit B operand K-major only, so
// V (stored [key][dim]) is copied to a per-warp staging buffer and written transposed ([dim][key], 8 × 16 B
// core matrices without swizzle) by the producer warp that copied it. The scales arrive by value
// (WgScales): Q's and K's multiply the softmax scale per tile, V's the output.
template <typename T> struct WgElem {
    static constexpr bool E4M3 = false;
};
template <> struct WgElem<__nv_fp8_e4m3> {
    static constexpr bool E4M3 = true;
};

// Per-head scales of e4m3 inputs, passed by value (a kernel parameter): element (b, h, s, d) of Q is
// code × q[h]; K's and V's are indexed by KV head. Up to WG_MAX_HEADS heads (the Java side checks).
constexpr int WG_MAX_HEADS = 128;
struct WgScales {
    float q[WG_MAX_HEADS], k[WG_MAX_HEADS], v[WG_MAX_HEADS];
};

// Tensor maps of K, V and Q for the tensor memory accelerator (TMA), passed by value. With `on` set, the producer
// copies each block slice of 64 whole keys (or the slice that ends the keys) and the Q rows of a tile of
// consecutive rows with cp.async.bulk.tensor, one instruction per 64-column (128-byte) block, into the same
// 128-byte-swizzled layout its cp.async copies write (TMA's 128-byte swizzle on 1024-byte-aligned boxes of 64 keys
// or 128 rows × 128 B); e4m3's V lands in the warp's staging buffer and is transposed from there. Listed rows,
// gathered keys and short slices keep cp.async. Each map is 4-D over (dim, key or row, head, batch) with the
// tensor's strides, made on the host by cuTensorMapEncodeTiled (CudaTensorMaps.java); rows past the keys or
// queries arrive as zeros.
struct WgMaps {
    CUtensorMap k, v, q;  // q: a box of 128 rows × 128 B, for tiles of consecutive rows
    int on;
};

// Turns of 128 keys: where a 64-key stage of K and V takes 16 KiB (e4m3, head dim 64), a consumer's turn takes
// two chunks, with one softmax update over their 128 keys, and the ring has 8 stages. A turn then holds four
// stages (its two for Q·Kᵀ, the previous turn's two for P·V), so the ring must keep two turns ahead as well:
// with 6 stages the e4m3 kernel was slower on dense than with single chunks, with 8 and 10 1.10 x faster
// (kernels-cuda/NOTES.md). Head dim 128 at 16 bits (32 KiB a stage) cannot hold 8 stages beside Q and keeps
// single-chunk turns. SPARSA_WG_PAIR = 0 or 1 forces either form (experiments; the Java side sizes the shared
// memory for the shipped choice), SPARSA_WG_PAIR_STAGES the paired form's ring.
#ifndef SPARSA_WG_PAIR
#define SPARSA_WG_PAIR -1
#endif
#ifndef SPARSA_WG_PAIR_STAGES
#define SPARSA_WG_PAIR_STAGES 8
#endif
// Separate K and V rings (head dim 256): a chunk's K goes back once its scores are masked, its V after the P·V of the
// next turn, so that with two stages each copy has a turn to land. With one ring of two stages the copy of chunk
// c + 2 cannot start before the P·V of chunk c, issued in the turn of chunk c + 1, is done: every copy then lies
// on the consumers' path. SPARSA_WG_SPLIT_KV = 0 or 1 forces either form (experiments; the Java side sizes the
// shared memory for the shipped choice).
#ifndef SPARSA_WG_SPLIT_KV
#define SPARSA_WG_SPLIT_KV -1
#endif

template <typename T, int D>
struct WgConfig {
    // Head dim 256: two stages, separate K and V rings, Q read from shared memory (kernels-cuda/NOTES.md, w18).
    static_assert(D == 64 || D == 128 || D == 256, "the Hopper kernel body is written for head dims 64, 128 and 256");
    static constexpr bool E4M3 = WgElem<T>::E4M3;
    static_assert(!E4M3 || D == 128, "the e4m3 Hopper kernel is compiled for head dim 128");
    static constexpr int ESZ = (int)sizeof(T);
    static constexpr int ROWS = 128, KC = 64, THREADS = 384;
    static constexpr bool PAIR = SPARSA_WG_PAIR < 0 ? E4M3 || D == 64 : SPARSA_WG_PAIR != 0;
    // head dim 256 (a 64 KiB stage of K and V beside 64 KiB of Q): two stages are all that fit
    static constexpr int STAGES = D * ESZ >= 512 ? 2 : PAIR ? SPARSA_WG_PAIR_STAGES : 5;
    static constexpr bool SPLIT = SPARSA_WG_SPLIT_KV < 0 ? D * ESZ >= 512 : SPARSA_WG_SPLIT_KV != 0;
    static_assert(!SPLIT || (!PAIR && !E4M3), "separate K and V rings are built for single-chunk turns in 16 bits");
    // registers per thread after setmaxnreg: producer + 2 × consumer ≤ 3 × 168, the registers the CTA holds at
    // launch (__launch_bounds__(384, 1)); setmaxnreg.inc waits for registers its CTA released, so a split over
    // that total never starts. At head dim 256 O takes 128 of each consumer thread's registers. The two macros
    // move the split for experiments (both or neither): at 64 / 224 ptxas reported spills at head dim 128.
#ifdef SPARSA_WG_PRODUCER_REGS
    static constexpr int PRODUCER_REGS = SPARSA_WG_PRODUCER_REGS, CONSUMER_REGS = SPARSA_WG_CONSUMER_REGS;
#else
    static constexpr int PRODUCER_REGS = D >= 256 ? 72 : 80, CONSUMER_REGS = D >= 256 ? 216 : 208;
#endif
    static_assert(PRODUCER_REGS + 2 * CONSUMER_REGS <= 3 * 168, "more registers than the CTA holds at launch");
    static constexpr int Q_BYTES = ROWS * D * ESZ;  // Q: D·ESZ/128 column blocks of ROWS × 128 B
    static constexpr int KV_BYTES = KC * D * ESZ;   // one stage of K (or V): D·ESZ/128 blocks of 64 × 128 B
    static constexpr int VRAW_BYTES = E4M3 ? 4 * KV_BYTES : 0;  // e4m3: each copying warp's V before its transpose
    // 1 KiB of slack: the kernel aligns its tiles to 1024 bytes (the 128-byte swizzle's period)
    static constexpr size_t SMEM = 1024 + Q_BYTES + 2 * STAGES * KV_BYTES + VRAW_BYTES + STAGES * KC * 8 + STAGES * 16
                                   + 2 * ROWS * 4 + 16 * 4 + (2 * STAGES + 3 + (E4M3 ? 4 : 0) + (SPLIT ? 2 * STAGES : 0)) * 8;
};

// device code for sm_90a only (the host pass sees the declarations)
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || !defined(__CUDA_ARCH__)

__device__ __forceinline__ uint32_t smemAddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// wgmma matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets (all >> 4).
__device__ __forceinline__ uint64_t wgDesc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) | (1ull << 62);
}
// wgmma matrix descriptor without swizzle (8-row × 16-byte core matrices): LBO steps between core matrices
// along K, SBO between groups of 8 rows.
__device__ __forceinline__ uint64_t wgDescPlain(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32);
}
// Byte offset of 16-byte chunk c (0..D/8-1) of row r in a tile of `rows` rows stored as 64-column blocks
// of rows × 128 B with the 128-byte swizzle (chunk index XOR row mod 8).
__device__ __forceinline__ uint32_t swz(int r, int c, int rows) {
    return (uint32_t)((c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

__device__ __forceinline__ void wgFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgWait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// keeps the compiler from moving accumulator accesses across wgmma issue/wait
__device__ __forceinline__ void regFence(float& r) { asm volatile("" : "+f"(r)::"memory"); }

__device__ __forceinline__ void mbarInit(uint64_t* b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smemAddr(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarArrive(uint64_t* b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smemAddr(b)) : "memory");
}
__device__ __forceinline__ void mbarWait(uint64_t* b, int parity) {
    asm volatile(
        "{\n"
        ".reg .pred P1;\n"
        "LAB_WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
        "@P1 bra DONE;\n"
        "bra LAB_WAIT;\n"
        "DONE:\n"
        "}\n" ::"r"(smemAddr(b)),
        "r"(parity)
        : "memory");
}
// add `bytes` to the transaction count b's current phase waits for, without arriving
__device__ __forceinline__ void mbarExpectTx(uint64_t* b, uint32_t bytes) {
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(smemAddr(b)), "r"(bytes) : "memory");
}
// arrive on b and add `bytes` to the transaction count its phase waits for (the TMA copies complete it)
__device__ __forceinline__ void mbarArriveExpectTx(uint64_t* b, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smemAddr(b)), "r"(bytes) : "memory");
}
// one TMA box of map m (64 keys, or 128 query rows, × 128 B of one 64-column block) at element coordinates
// (c0, c1, c2, c3) into dst, completing on mbarrier b
__device__ __forceinline__ void tmaLoad4(void* dst, const CUtensorMap* m, int c0, int c1, int c2, int c3, uint64_t* b) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(
            smemAddr(dst)),
        "l"(reinterpret_cast<uint64_t>(m)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smemAddr(b))
        : "memory");
}
__device__ __forceinline__ void namedSync(int id, int n) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
__device__ __forceinline__ void namedArrive(int id, int n) { asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

#define SPARSA_WG_SS(TY)                                                                                               \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                                       \
    "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " "                                                        \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}," \
    " %32, %33, p, 1, 1, 0, 0;\n}\n"
#define SPARSA_WG_RS(TY)                                                                                               \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                                       \
    "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " "                                                       \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31," \
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}," \
    " {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
#define SPARSA_WG_RS64(TY)                                                                                             \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                                       \
    "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " "                                                        \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}," \
    " {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
// S[64×64] (+)= Q[64×16] (registers) · K[64×16]ᵀ (shared memory, K-major)
#define SPARSA_WG_RSK(TY)                                                                                              \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %36, 0;\n"                                                                       \
    "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " "                                                        \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}," \
    " {%32,%33,%34,%35}, %37, p, 1, 1, 0;\n}\n"
#define SPARSA_S32(s)                                                                                                 \
    "+f"(s[0][0]), "+f"(s[0][1]), "+f"(s[0][2]), "+f"(s[0][3]), "+f"(s[1][0]), "+f"(s[1][1]), "+f"(s[1][2]), "+f"(s[1][3]), \
    "+f"(s[2][0]), "+f"(s[2][1]), "+f"(s[2][2]), "+f"(s[2][3]), "+f"(s[3][0]), "+f"(s[3][1]), "+f"(s[3][2]), "+f"(s[3][3]), \
    "+f"(s[4][0]), "+f"(s[4][1]), "+f"(s[4][2]), "+f"(s[4][3]), "+f"(s[5][0]), "+f"(s[5][1]), "+f"(s[5][2]), "+f"(s[5][3]), \
    "+f"(s[6][0]), "+f"(s[6][1]), "+f"(s[6][2]), "+f"(s[6][3]), "+f"(s[7][0]), "+f"(s[7][1]), "+f"(s[7][2]), "+f"(s[7][3])
#define SPARSA_O8(o, i)                                                                                                \
    "+f"(o[i][0]), "+f"(o[i][1]), "+f"(o[i][2]), "+f"(o[i][3]), "+f"(o[i + 1][0]), "+f"(o[i + 1][1]), "+f"(o[i + 1][2]), \
    "+f"(o[i + 1][3])

// S[64×64] (+)= Q[64×16] · K[64×16]ᵀ, both K-major in shared memory
template <typename T> __device__ __forceinline__ void wgmmaQK(float (&s)[8][4], uint64_t a, uint64_t b, int accumulate);
template <> __device__ __forceinline__ void wgmmaQK<__nv_bfloat16>(float (&s)[8][4], uint64_t a, uint64_t b, int acc) {
    asm volatile(SPARSA_WG_SS("bf16") : SPARSA_S32(s) : "l"(a), "l"(b), "r"(acc));
}
template <> __device__ __forceinline__ void wgmmaQK<__half>(float (&s)[8][4], uint64_t a, uint64_t b, int acc) {
    asm volatile(SPARSA_WG_SS("f16") : SPARSA_S32(s) : "l"(a), "l"(b), "r"(acc));
}
// S[64×64] (+)= Q[64×16] (registers, the m16n8k16 A fragment per warp) · K[64×16]ᵀ (shared memory, K-major)
template <typename T> __device__ __forceinline__ void wgmmaQKr(float (&s)[8][4], const uint32_t (&a)[4], uint64_t b, int acc);
template <> __device__ __forceinline__ void wgmmaQKr<__nv_bfloat16>(float (&s)[8][4], const uint32_t (&a)[4], uint64_t b, int acc) {
    asm volatile(SPARSA_WG_RSK("bf16") : SPARSA_S32(s) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(acc), "l"(b));
}
template <> __device__ __forceinline__ void wgmmaQKr<__half>(float (&s)[8][4], const uint32_t (&a)[4], uint64_t b, int acc) {
    asm volatile(SPARSA_WG_RSK("f16") : SPARSA_S32(s) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(acc), "l"(b));
}
// O[64×D] += P[64×16] (registers) · V[16×D] (shared memory, MN-major), D = 128 or 64
template <typename T> __device__ __forceinline__ void wgmmaPV(float (&o)[16][4], const uint32_t (&p)[4], uint64_t b);
template <> __device__ __forceinline__ void wgmmaPV<__nv_bfloat16>(float (&o)[16][4], const uint32_t (&p)[4], uint64_t b) {
    asm volatile(SPARSA_WG_RS("bf16")
                 : SPARSA_O8(o, 0), SPARSA_O8(o, 2), SPARSA_O8(o, 4), SPARSA_O8(o, 6), SPARSA_O8(o, 8), SPARSA_O8(o, 10),
                   SPARSA_O8(o, 12), SPARSA_O8(o, 14)
                 : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(b), "r"(1));
}
template <> __device__ __forceinline__ void wgmmaPV<__half>(float (&o)[16][4], const uint32_t (&p)[4], uint64_t b) {
    asm volatile(SPARSA_WG_RS("f16")
                 : SPARSA_O8(o, 0), SPARSA_O8(o, 2), SPARSA_O8(o, 4), SPARSA_O8(o, 6), SPARSA_O8(o, 8), SPARSA_O8(o, 10),
                   SPARSA_O8(o, 12), SPARSA_O8(o, 14)
                 : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(b), "r"(1));
}
template <typename T> __device__ __forceinline__ void wgmmaPV(float (&o)[8][4], const uint32_t (&p)[4], uint64_t b);
template <> __device__ __forceinline__ void wgmmaPV<__nv_bfloat16>(float (&o)[8][4], const uint32_t (&p)[4], uint64_t b) {
    asm volatile(SPARSA_WG_RS64("bf16")
                 : SPARSA_O8(o, 0), SPARSA_O8(o, 2), SPARSA_O8(o, 4), SPARSA_O8(o, 6)
                 : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(b), "r"(1));
}
template <> __device__ __forceinline__ void wgmmaPV<__half>(float (&o)[8][4], const uint32_t (&p)[4], uint64_t b) {
    asm volatile(SPARSA_WG_RS64("f16")
                 : SPARSA_O8(o, 0), SPARSA_O8(o, 2), SPARSA_O8(o, 4), SPARSA_O8(o, 6)
                 : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(b), "r"(1));
}

// e4m3: S[64×64] (+)= Q[64×32] · K[64×32]ᵀ (both K-major, 128-byte swizzle; no transpose bits for 8-bit types)
template <> __device__ __forceinline__ void wgmmaQK<__nv_fp8_e4m3>(float (&s)[8][4], uint64_t a, uint64_t b, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31},"
        " %32, %33, p, 1, 1;\n}\n"
        : SPARSA_S32(s)
        : "l"(a), "l"(b), "r"(acc));
}
// e4m3: S[64×64] (+)= Q[64×32] (registers, the 8-bit A fragment: columns 4t..4t+3 and 16+4t..16+4t+3 of rows g
// and g + 8) · K[64×32]ᵀ (shared memory, K-major)
template <> __device__ __forceinline__ void wgmmaQKr<__nv_fp8_e4m3>(float (&s)[8][4], const uint32_t (&a)[4], uint64_t b, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %36, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31},"
        " {%32,%33,%34,%35}, %37, p, 1, 1;\n}\n"
        : SPARSA_S32(s)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(acc), "l"(b));
}
// e4m3: O[64×128] += P[64×32] (registers, 16 codes per thread) · V[32×128] (shared memory, K-major: Vᵀ)
__device__ __forceinline__ void wgmmaPV8(float (&o)[16][4], const uint32_t (&p)[4], uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
        "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63},"
        " {%64,%65,%66,%67}, %68, p, 1, 1;\n}\n"
        : SPARSA_O8(o, 0), SPARSA_O8(o, 2), SPARSA_O8(o, 4), SPARSA_O8(o, 6), SPARSA_O8(o, 8), SPARSA_O8(o, 10),
          SPARSA_O8(o, 12), SPARSA_O8(o, 14)
        : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(b), "r"(1));
}
// Four f32 as four e4m3 codes (round to nearest even, saturating to ±448), a in the lowest byte.
__device__ __forceinline__ uint32_t packE4m3x4(float a, float b, float c, float d) {
    uint16_t lo, hi;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(lo) : "f"(b), "f"(a));
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(hi) : "f"(d), "f"(c));
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

// e4m3 P·V's key order. The S accumulator gives a thread, per row, keys {2t, 2t+1, 8+2t, 9+2t} (+16, +32)
// of a chunk (t = lane % 4), and the 8-bit A fragment wants columns {4t..4t+3} (+16): so column 4t+i of a
// 32-key step holds key 2t + (i & 1) + 8 (i >> 1), and Vᵀ is written in that order. Byte offset of key
// position j (0..63, this order) of head-dim row n in a chunk's Vᵀ: core matrices of 8 rows × 16 keys,
// 128 B apart along the keys (LBO), 512 B apart per 8 rows (SBO).
constexpr int WG8_V_LBO = 128, WG8_V_SBO = 512;
__device__ __forceinline__ uint32_t vtOffset(int n, int j) {
    return (uint32_t)((n >> 3) * WG8_V_SBO + (j >> 4) * WG8_V_LBO + (n & 7) * 16 + (j & 15));
}

// One producer warp writes a 64-key chunk of V, landed [key][dim] in `raw` (the 128-byte swizzle of swz),
// as Vᵀ in P·V's key order into `vt`. Lane (a = lane % 4, b = lane / 4) handles position quads p4 = 4·ph + a
// and dim quads dq = 8·dh + b: four 32-bit loads (keys of the quad, dims 4dq..4dq+3), a 4×4 byte transpose,
// four 32-bit stores, the stores rotated by b / 2 so that the 32 lanes hit 32 banks (the loads do through
// the swizzle).
__device__ __forceinline__ void transposeV8(const uint8_t* raw, uint8_t* vt, int lane) {
    const int a = lane & 3, b = lane >> 2, rot = b >> 1;
#pragma unroll 2
    for (int u = 0; u < 16; u++) {
        const int p4 = (u & 3) * 4 + a, dq = (u >> 2) * 8 + b;
        const int k0 = (p4 >> 2) * 16 + 2 * (p4 & 3);  // keys k0, k0 + 1, k0 + 8, k0 + 9
        const int c = dq >> 2, w = (dq & 3) * 4;
        const uint32_t w0 = *reinterpret_cast<const uint32_t*>(raw + swz(k0, c, 64) + w);
        const uint32_t w1 = *reinterpret_cast<const uint32_t*>(raw + swz(k0 + 1, c, 64) + w);
        const uint32_t w2 = *reinterpret_cast<const uint32_t*>(raw + swz(k0 + 8, c, 64) + w);
        const uint32_t w3 = *reinterpret_cast<const uint32_t*>(raw + swz(k0 + 9, c, 64) + w);
        const uint32_t x01 = __byte_perm(w0, w1, 0x5140), x23 = __byte_perm(w2, w3, 0x5140);
        const uint32_t y01 = __byte_perm(w0, w1, 0x7362), y23 = __byte_perm(w2, w3, 0x7362);
        uint32_t r0 = __byte_perm(x01, x23, 0x5410), r1 = __byte_perm(x01, x23, 0x7632);
        uint32_t r2 = __byte_perm(y01, y23, 0x5410), r3 = __byte_perm(y01, y23, 0x7632);
        // r_i holds dim 4dq + i; store i writes dim 4dq + ((i + rot) & 3)
        if (rot & 1) { const uint32_t t = r0; r0 = r1; r1 = r2; r2 = r3; r3 = t; }
        if (rot & 2) { uint32_t t = r0; r0 = r2; r2 = t; t = r1; r1 = r3; r3 = t; }
        const int n0 = 4 * dq;
        *reinterpret_cast<uint32_t*>(vt + vtOffset(n0 + (rot & 3), 4 * p4)) = r0;
        *reinterpret_cast<uint32_t*>(vt + vtOffset(n0 + ((rot + 1) & 3), 4 * p4)) = r1;
        *reinterpret_cast<uint32_t*>(vt + vtOffset(n0 + ((rot + 2) & 3), 4 * p4)) = r2;
        *reinterpret_cast<uint32_t*>(vt + vtOffset(n0 + ((rot + 3) & 3), 4 * p4)) = r3;
    }
}

// SPARSA_WG8_QK_CHAINS (1, 2 or 4; an experiment, 1 in the shipped image): the e4m3 Q·Kᵀ's four 32-key steps
// accumulate in that many separate sets of registers, added in f32 after the wait. Hopper's FP8 wgmma
// accumulates with about 14 bits (S off by 1.4e-4 relative at head dim 128 on an H100), which puts the LSE
// over the e4m3 contract when scores are large; shorter chains should cut that error, at 32 registers per
// extra set.
#ifndef SPARSA_WG8_QK_CHAINS
#define SPARSA_WG8_QK_CHAINS 1
#endif
static_assert(SPARSA_WG8_QK_CHAINS == 1 || SPARSA_WG8_QK_CHAINS == 2 || SPARSA_WG8_QK_CHAINS == 4,
              "SPARSA_WG8_QK_CHAINS is 1, 2 or 4");

// The V descriptor's byte offsets (MN-major, 128-byte swizzle): LBO steps between 64-column blocks of
// V (64 keys × 128 B apart), SBO between groups of 8 keys (1024 B).
#ifndef SPARSA_WG_V_LBO
#define SPARSA_WG_V_LBO 8192
#define SPARSA_WG_V_SBO 1024
#endif

// SPARSA_WG_QREG (1 in the shipped image; 0 for the form that reads Q from shared memory in every Q·Kᵀ): the
// 16-bit kernels hold each consumer's Q rows in registers for the whole tile (D/16 A fragments of four
// registers, 32 at head dim 128) and release Q's shared memory as soon as they are loaded. With Q and K both in
// shared memory an m64n64k16 reads 4 KB for 32 cycles of tensor work, all of shared memory's 128 B per cycle;
// with Q in registers it reads 2 KB. SPARSA_WG_QREG_E4M3 (1 in the shipped image) does the same for the e4m3
// kernel (k32 steps, 16 registers), unless SPARSA_WG8_QK_CHAINS splits its Q·Kᵀ.
#ifndef SPARSA_WG_QREG
#define SPARSA_WG_QREG 1
#endif
#ifndef SPARSA_WG_QREG_E4M3
#define SPARSA_WG_QREG_E4M3 1
#endif

// Keys j of a 64-key chunk in [lo, hi] ∪ [0, se) as bits (rowInterval's output: lo <= 64, hi <= 63, se <= 64).
__device__ __forceinline__ uint64_t intervalBits(int lo, int hi, int se) {
    uint64_t m = 0;
    if (hi >= lo) m = (hi >= 63 ? ~0ull : (2ull << hi) - 1) & ~((1ull << lo) - 1);
    if (se > 0) m |= se >= 64 ? ~0ull : (1ull << se) - 1;
    return m;
}

// maskScores for a block slice under the plain predicate (no stride or neighbourhood), without soft-cap:
// the scores stay raw q·k (the caller folds scale·log2 e into the exponent, as for plain chunks) and each
// element is kept or set to -inf by one bit of its row's admitted-key mask. Returns the row maxima.
__device__ __forceinline__ void maskBits(float (&s)[8][4], const RowPair& rp, const Chunk& cur, int mode,
                                         const PredFast& pf, int t4, float& mxA, float& mxB) {
    int loA, hiA, seA, loB, hiB, seB;
    rowInterval(rp.rowA, rp.posA32, cur, mode, pf, loA, hiA, seA);
    rowInterval(rp.rowB, rp.posB32, cur, mode, pf, loB, hiB, seB);
    const uint64_t bA = intervalBits(loA, hiA, seA) >> (2 * t4), bB = intervalBits(loB, hiB, seB) >> (2 * t4);
    mxA = -INFINITY;
    mxB = -INFINITY;
#pragma unroll
    for (int nb = 0; nb < 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int bit = nb * 8 + (e & 1);
            const bool ok = ((e < 2 ? bA : bB) >> bit) & 1;
            const float x = ok ? s[nb][e] : -INFINITY;
            s[nb][e] = x;
            if (e < 2) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
        }
    }
}

template <typename T, int D>
__device__ __forceinline__ void wgKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                         void* __restrict__ out, float* __restrict__ lse, float* __restrict__ scratchO,
                                         float* __restrict__ scratchLse, const int* __restrict__ ints,
                                         const float* __restrict__ floats, const int* __restrict__ work,
                                         const Scalars& S, int items, const WgMaps& maps,
                                         const WgScales* __restrict__ scales) {
    using C = WgConfig<T, D>;
    static_assert(!C::PAIR || SPARSA_WG8_QK_CHAINS == 1, "turns of two chunks take one chain of Q·Kᵀ");
    constexpr int KC = C::KC, STAGES = C::STAGES, ROWS = C::ROWS;
    constexpr bool E4M3 = C::E4M3;
    extern __shared__ uint4 smemRaw[];
    uint8_t* base = reinterpret_cast<uint8_t*>(smemRaw);
    base += (1024 - (smemAddr(base) & 1023)) & 1023;
    uint8_t* sQ = base;
    uint8_t* sK = sQ + C::Q_BYTES;
    uint8_t* sV = sK + STAGES * C::KV_BYTES;
    uint8_t* sVraw = sV + STAGES * C::KV_BYTES;  // e4m3 only: 4 × KV_BYTES
    int* sKpos = reinterpret_cast<int*>(sVraw + C::VRAW_BYTES);
    float* sLw = reinterpret_cast<float*>(sKpos + STAGES * KC);
    int4* sChunk = reinterpret_cast<int4*>(sLw + STAGES * KC);  // per stage: mode, base, count
    int* sRow = reinterpret_cast<int*>(sChunk + STAGES);         // two buffers of ROWS: tile n uses n & 1
    int* sInfo = sRow + 2 * ROWS;                                // two buffers of 8: nChunks, entryBase, slice, layout
    uint64_t* full = reinterpret_cast<uint64_t*>(sInfo + 16);
    uint64_t* empty = full + STAGES;
    uint64_t* tReady = empty + STAGES;  // [2]: the tile's rows, info and Q are in place
    uint64_t* qEmpty = tReady + 2;      // the consumers hold Q in registers (or issued the tile's last Q·K)
    uint64_t* vRaw = qEmpty + 1;        // e4m3: [4], each producer warp's V staging buffer has landed (TMA)
    // SPLIT: full and empty barriers of the V ring (full and empty are then K's)
    uint64_t* fullV = vRaw + (E4M3 ? 4 : 0);
    uint64_t* emptyV = fullV + STAGES;
    constexpr bool SPLIT = C::SPLIT;

    const int tid = threadIdx.x;
    if (tid == 0) {
        for (int s = 0; s < STAGES; s++) {
            mbarInit(full + s, 32);
            mbarInit(empty + s, 256);
            if (SPLIT) {
                mbarInit(fullV + s, 32);
                mbarInit(emptyV + s, 256);
            }
        }
        for (int s = 0; s < 2; s++) mbarInit(tReady + s, 128);
        mbarInit(qEmpty, 256);
        if (E4M3)
            for (int w = 0; w < 4; w++) mbarInit(vRaw + w, 1);
    }
    __syncthreads();
    // warp-uniform for the compiler (a shuffle from lane 0), so that branches on it keep wgmma unserialized
    const int wg = __shfl_sync(0xffffffffu, tid >> 7, 0);
    const int keyLength = (int)S.keyLength, blockCols = (int)S.blockCols;

    if (wg == 2) {
        // ---------------- producer warpgroup. Per tile n: its rows and info into buffer n & 1, then (once the
        // consumers have taken tile n-1's Q into registers, or issued its last Q·K) Q, and the chunks; chunks
        // are numbered across the CTA's tiles (g), and warp g % PW copies chunk g (PW = 4; 2 at head dim 256, whose
        // ring has two stages), so up to PW are in flight while each warp waits only for its own copies before it
        // signals them.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(C::PRODUCER_REGS));
        const int pt = tid - 256, pw = pt >> 5, lane = pt & 31;
        constexpr int VEC = D * C::ESZ / 16;  // 16-byte chunks per row
        constexpr int EPC = 16 / C::ESZ;      // elements per 16-byte chunk
        constexpr int RPI = 32 / VEC;         // rows per warp instruction: 1 at D = 256, 2 at 128, 4 at 64 or e4m3
        const int c16 = lane % VEC, jh = lane / VEC;
        // warps copying chunks, each every PW-th: no more than the stages, so that a warp waiting for its stage's
        // release is never a whole phase of that stage's barriers ahead of the consumers (try_wait.parity would
        // pass at once)
        constexpr int PW = STAGES < 4 ? 2 : 4;
        static_assert(STAGES >= PW, "a producer warp may run at most one phase of a stage's barriers ahead");
        int g0 = 0;
        int vRawPhase = 0;  // e4m3: the phase of this warp's staging barrier
        for (int it = blockIdx.x, n = 0; it < items; it += gridDim.x, n++) {
            const int* W = work + (size_t)it * W_STRIDE;
            const int slice = W[W_SLICE], tile = W[W_TILE], rowBegin = W[W_ROW_BEGIN];
            const int* L = ints + (size_t)W[W_LAYOUT] * LI_STRIDE;
            const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads, kvh = h / (int)S.group;
            const int buf = n & 1;
            const TileKeys tk = tileKeys(ints, L, tile, blockCols);
            int* rows = sRow + buf * ROWS;
            rows[pt] = tileRow(ints, L, tile, rowBegin + pt);
            if (pt == 0) {
                sInfo[buf * 8 + 0] = tk.nChunks;
                sInfo[buf * 8 + 1] = W[W_ENTRY_BASE];
                sInfo[buf * 8 + 2] = slice;
                sInfo[buf * 8 + 3] = W[W_LAYOUT];
                sInfo[buf * 8 + 4] = tile;
            }
            namedSync(3, 128);
            if (n >= 1) mbarWait(qEmpty, (n - 1) & 1);
            bool ready = false;
            if (maps.on && ints[L[LI_ROW_LIST_OFFSET] + tile] < 0) {
                // consecutive rows: Q by TMA, 128 rows from the item's first (rows past the tile's own arrive too,
                // or as zeros past the queries, and are never stored), completing the tile's barrier
                if (pt == 0) {
                    fenceProxyAsync();  // the consumers' reads of the previous Q come before this write
                    mbarArriveExpectTx(tReady + buf, C::Q_BYTES);
                    const int first = ints[L[LI_ROW_START] + tile] + rowBegin;
#pragma unroll
                    for (int cb = 0; cb < D * C::ESZ / 128; cb++)
                        tmaLoad4(sQ + cb * ROWS * 128, &maps.q, cb * 128 / C::ESZ, first, h, b, tReady + buf);
                } else {
                    mbarArrive(tReady + buf);
                }
                ready = true;
            } else {
                const T* qBase = q + b * S.qsb + h * S.qsh;
#pragma unroll 4
                for (int r = pt / VEC; r < ROWS; r += 128 / VEC) {
                    const int row = rows[r];
                    cpAsync16(sQ + swz(r, pt % VEC, ROWS), qBase + (long long)max(row, 0) * S.qss + (pt % VEC) * EPC,
                              row >= 0);
                }
                cpAsyncCommit();
            }
            const T* kBase = k + b * S.ksb + kvh * S.ksh;
            const T* vBase = v + b * S.vsb + kvh * S.vsh;
            for (int c = (pw - (g0 & (PW - 1)) + PW) & (PW - 1); pw < PW && c < tk.nChunks; c += PW) {
                const int gc = g0 + c, st = gc % STAGES;
                if (gc >= STAGES) mbarWait(empty + st, ((gc / STAGES) - 1) & 1);
                const Chunk ch = chunkOf(ints, floats, L, tk, c, blockCols, keyLength);
                // lane holds the key rows `lane` and `lane + 32`; row j's key comes by shuffle from lane j % 32;
                // RPI rows per instruction, lane (jh, c16) copying 16-byte chunk c16 of row jh + RPI·i
                const bool okA = lane < ch.count, okB = lane + 32 < ch.count;
                const int kA = okA ? (ch.keys ? ch.keys[lane] : ch.base + lane) : -1;
                const int kB = okB ? (ch.keys ? ch.keys[lane + 32] : ch.base + lane + 32) : -1;
                sKpos[st * KC + lane] = kA;
                sKpos[st * KC + lane + 32] = kB;
                sLw[st * KC + lane] = okA && ch.lws ? ch.lws[lane] : 0.f;
                sLw[st * KC + lane + 32] = okB && ch.lws ? ch.lws[lane + 32] : 0.f;
                if (lane == 0) sChunk[st] = make_int4(ch.mode, ch.base, ch.count, 0);
                uint8_t* dK = sK + st * C::KV_BYTES;
                if (maps.on && ch.mode <= MODE_PARTIAL && ch.count > 0 && (ch.count == KC || ch.base + ch.count == keyLength)) {
                    // a block slice by TMA: lane 0 issues the boxes (one per 64-column block of K and of V)
                    if (!ready) cpAsyncWait<0>();  // this thread's part of Q
                    if constexpr (E4M3) {
                        // V lands in this warp's staging buffer (its own mbarrier), and the warp writes it transposed
                        // into the stage; the stage's barrier takes K's bytes and the warp's 32 arrivals after that
                        uint8_t* dV = sVraw + pw * C::KV_BYTES;
                        if (lane == 0) {
                            mbarExpectTx(full + st, C::KV_BYTES);
                            tmaLoad4(dK, &maps.k, 0, ch.base, kvh, b, full + st);
                            mbarArriveExpectTx(vRaw + pw, C::KV_BYTES);
                            tmaLoad4(dV, &maps.v, 0, ch.base, kvh, b, vRaw + pw);
                        }
                        mbarWait(vRaw + pw, vRawPhase);
                        vRawPhase ^= 1;
                        transposeV8(dV, sV + st * C::KV_BYTES, lane);
                        __syncwarp();  // the staging buffer is read before the next chunk's copies land in it
                        fenceProxyAsync();
                        mbarArrive(full + st);
                    } else if constexpr (SPLIT) {
                        // K into its ring now, V once the V ring's stage is back
                        if (lane == 0) {
                            mbarArriveExpectTx(full + st, C::KV_BYTES);
#pragma unroll
                            for (int cb = 0; cb < D * C::ESZ / 128; cb++)
                                tmaLoad4(dK + cb * KC * 128, &maps.k, cb * 128 / C::ESZ, ch.base, kvh, b, full + st);
                        } else {
                            mbarArrive(full + st);
                        }
                        if (gc >= STAGES) mbarWait(emptyV + st, ((gc / STAGES) - 1) & 1);
                        if (lane == 0) {
                            mbarArriveExpectTx(fullV + st, C::KV_BYTES);
#pragma unroll
                            for (int cb = 0; cb < D * C::ESZ / 128; cb++)
                                tmaLoad4(sV + st * C::KV_BYTES + cb * KC * 128, &maps.v, cb * 128 / C::ESZ, ch.base, kvh,
                                         b, fullV + st);
                        } else {
                            mbarArrive(fullV + st);
                        }
                    } else {
                        if (lane == 0) {
                            mbarArriveExpectTx(full + st, 2 * C::KV_BYTES);
#pragma unroll
                            for (int cb = 0; cb < D * C::ESZ / 128; cb++) {
                                tmaLoad4(dK + cb * KC * 128, &maps.k, cb * 128 / C::ESZ, ch.base, kvh, b, full + st);
                                tmaLoad4(sV + st * C::KV_BYTES + cb * KC * 128, &maps.v, cb * 128 / C::ESZ, ch.base, kvh,
                                         b, full + st);
                            }
                        } else {
                            mbarArrive(full + st);
                        }
                    }
                    if (!ready) {
                        fenceProxyAsync();
                        mbarArrive(tReady + buf);
                        ready = true;
                    }
                    continue;
                }
                // e4m3: V lands in this warp's staging buffer, and is written transposed into the stage below
                uint8_t* dV = E4M3 ? sVraw + pw * C::KV_BYTES : sV + st * C::KV_BYTES;
                if (SPLIT && gc >= STAGES) mbarWait(emptyV + st, ((gc / STAGES) - 1) & 1);
#pragma unroll 8
                for (int i = 0; i < KC / RPI; i++) {
                    const int j = jh + RPI * i;
                    const int kr = __shfl_sync(0xffffffffu, i < 32 / RPI ? kA : kB, j & 31);
                    const bool ok = kr >= 0;
                    const long long kk = ok ? kr : 0;
                    cpAsync16(dK + swz(j, c16, KC), kBase + kk * S.kss + c16 * EPC, ok);
                    cpAsync16(dV + swz(j, c16, KC), vBase + kk * S.vss + c16 * EPC, ok);
                }
                cpAsyncCommit();
                cpAsyncWait<0>();
                if constexpr (E4M3) {
                    __syncwarp();
                    transposeV8(dV, sV + st * C::KV_BYTES, lane);
                    __syncwarp();  // the staging buffer is read before the next chunk's copies land in it
                }
                fenceProxyAsync();
                if (!ready) {
                    mbarArrive(tReady + buf);  // Q was committed before this chunk: it has landed too
                    ready = true;
                }
                mbarArrive(full + st);
                if (SPLIT) mbarArrive(fullV + st);
            }
            if (!ready) {
                cpAsyncWait<0>();
                fenceProxyAsync();
                mbarArrive(tReady + buf);
            }
            g0 += tk.nChunks;
        }
        return;
    }

    // ---------------- consumer warpgroups: rows wg*64 .. wg*64+63, warp w of the group rows 16w..16w+15.
    // Ping-pong schedule (FA3): the two consumer warpgroups take turns at the tensor cores, strictly
    // alternating through named barriers 1 and 2, in one sequence across the CTA's tiles. Turn c of a
    // tile issues S(c) = Q·K(c) and the deferred O += P(c-1)·V(c-1) together, hands the turn over, waits,
    // then runs chunk c's mask and softmax while the other warpgroup's MMAs run; turn nChunks issues only
    // the last P·V (a tile without chunks takes no turn).
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::CONSUMER_REGS));
    float scale = (float)S.scale;  // e4m3: set per tile (with Q's and K's scales)
    const float cap = (float)S.softCap;
    float scaleLog2 = scale * SPARSA_LOG2E;
    const int warp = tid >> 5, lane = tid & 31, t4 = lane & 3, g = lane >> 2;
    const int r0 = warp * 16;  // = wg * 64 + (warp % 4) * 16
    const int other = 1 - wg;
    const uint32_t kAddr0 = smemAddr(sK), vAddr0 = smemAddr(sV);
    if (wg == 1) namedArrive(1, 256);
    int g0 = 0;
    for (int it = blockIdx.x, n = 0; it < items; it += gridDim.x, n++) {
        const int buf = n & 1;
        mbarWait(tReady + buf, (n >> 1) & 1);
        const int nChunks = sInfo[buf * 8 + 0], entryBase = sInfo[buf * 8 + 1], slice = sInfo[buf * 8 + 2];
        const int* L = ints + (size_t)sInfo[buf * 8 + 3] * LI_STRIDE;
        const int b = slice / (int)S.qHeads, h = slice % (int)S.qHeads;
        float vScale = 1.f;
        if constexpr (E4M3) {
            // e4m3: the scores are codes' dot products, scaled by Q's and K's scales with the softmax scale
            const int kvh = h / (int)S.group;
            scale = (float)S.scale * scales->q[h] * scales->k[kvh];
            scaleLog2 = scale * SPARSA_LOG2E;
            vScale = scales->v[kvh];
        }
        const long long queryOffset = L[LI_QUERY_OFFSET];
        PredFast pf;
        pf.simple = L[LI_STRIDE_M] == 0 && L[LI_NEIGHBOURHOOD] == 0 && queryOffset > -(1LL << 30)
                    && queryOffset < (1LL << 30) && keyLength < (1 << 29) && S.queryLength < (1LL << 29);
        pf.causal = L[LI_CAUSAL] != 0;
        pf.sinks = L[LI_SINKS];
        pf.lo = (int)max((long long)L[LI_BAND_LO], -(1LL << 31) + 1);
        pf.hi = L[LI_BAND_HI];
        RowPair rp;
        rp.rowA = sRow[buf * ROWS + r0 + g];
        rp.rowB = sRow[buf * ROWS + r0 + g + 8];
        rp.posA32 = (int)(rp.rowA + queryOffset);
        rp.posB32 = (int)(rp.rowB + queryOffset);
        const bool allRows = rp.rowA >= 0 && rp.rowB >= 0;
        const uint32_t qAddr = smemAddr(sQ) + wg * 64 * 128;
        // head dim 256: O's 128 registers leave no room for Q's 64
        constexpr bool QREG = E4M3 ? SPARSA_WG_QREG_E4M3 && SPARSA_WG8_QK_CHAINS == 1 : SPARSA_WG_QREG && D <= 128;
        constexpr int QK_STEPS = D * C::ESZ / 32;  // k16 (16-bit) or k32 (e4m3) steps of Q·Kᵀ: 32 bytes of a row each
        // Q·Kᵀ's A fragments of this warp's rows r0 + g and r0 + g + 8: k-step kk holds the 4 bytes at 4·t4 of the
        // 32 bytes 32kk..32kk+31 of each row and those 16 bytes on (16-bit: columns 16kk + 2t4, +1 and 16kk + 8 +
        // 2t4, +1; e4m3: columns 32kk + 4t4..+3 and 32kk + 16 + 4t4..+3), i.e. 16-byte chunks 2kk and 2kk + 1
        uint32_t qf[QREG ? QK_STEPS : 1][4];
        if constexpr (QREG) {
#pragma unroll
            for (int kk = 0; kk < QK_STEPS; kk++) {
                qf[kk][0] = *reinterpret_cast<const uint32_t*>(sQ + swz(r0 + g, 2 * kk, ROWS) + 4 * t4);
                qf[kk][1] = *reinterpret_cast<const uint32_t*>(sQ + swz(r0 + g + 8, 2 * kk, ROWS) + 4 * t4);
                qf[kk][2] = *reinterpret_cast<const uint32_t*>(sQ + swz(r0 + g, 2 * kk + 1, ROWS) + 4 * t4);
                qf[kk][3] = *reinterpret_cast<const uint32_t*>(sQ + swz(r0 + g + 8, 2 * kk + 1, ROWS) + 4 * t4);
            }
            mbarArrive(qEmpty);  // Q's shared memory may take the next tile's rows
        }

        constexpr int ON = D / 8;  // n8 column groups of O per warp
        float o[ON][4];
        float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
        for (int i = 0; i < ON; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
        constexpr int PK = E4M3 ? 2 : 4;  // P·V k-steps per 64-key chunk
        if constexpr (C::PAIR) {
            // turn t: S of chunks 2t and 2t + 1 (those that exist), P·V of chunks 2t - 2 and 2t - 1
            uint32_t p[2 * PK][4];
            const int nTurns = (nChunks + 1) >> 1;
            for (int t = 0; nChunks > 0 && t <= nTurns; t++) {
                bool hasS[2];
                int st[2];
                Chunk cur[2];
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const int gc = g0 + 2 * t + j;
                    hasS[j] = 2 * t + j < nChunks;
                    st[j] = gc % STAGES;
                    if (hasS[j]) {
                        mbarWait(full + st[j], (gc / STAGES) & 1);
                        const int4 d = sChunk[st[j]];
                        cur[j].mode = d.x;
                        cur[j].base = d.y;
                        cur[j].count = d.z;
                        cur[j].keys = nullptr;
                        cur[j].lws = nullptr;
                    }
                }
                float s[2][8][4];
                namedSync(1 + wg, 256);
#pragma unroll
                for (int i = 0; i < ON; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) regFence(o[i][e]);
                wgFence();
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    if (!hasS[j]) continue;
                    const uint32_t kAddr = kAddr0 + st[j] * C::KV_BYTES;
                    if constexpr (QREG) {
#pragma unroll
                        for (int kk = 0; kk < QK_STEPS; kk++)
                            wgmmaQKr<T>(s[j], qf[kk], wgDesc(kAddr + (kk >> 2) * (KC * 128) + (kk & 3) * 32, 16, 1024), kk > 0);
                    } else {
#pragma unroll
                        for (int kk = 0; kk < QK_STEPS; kk++) {
                            const uint32_t off = (kk & 3) * 32;
                            wgmmaQK<T>(s[j], wgDesc(qAddr + (kk >> 2) * (ROWS * 128) + off, 16, 1024),
                                       wgDesc(kAddr + (kk >> 2) * (KC * 128) + off, 16, 1024), kk > 0);
                        }
                    }
                }
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const int pc = 2 * t - 2 + j;
                    if (t == 0 || pc >= nChunks) continue;
                    const uint32_t vAddr = vAddr0 + ((g0 + pc) % STAGES) * C::KV_BYTES;
                    if constexpr (E4M3) {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++)
                            wgmmaPV8(o, p[j * PK + kk], wgDescPlain(vAddr + kk * 2 * WG8_V_LBO, WG8_V_LBO, WG8_V_SBO));
                    } else {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++)
                            wgmmaPV<T>(o, p[j * PK + kk], wgDesc(vAddr + kk * 16 * 128, SPARSA_WG_V_LBO, SPARSA_WG_V_SBO));
                    }
                }
                wgCommit();
                namedArrive(1 + other, 256);
                wgWait<0>();
#pragma unroll
                for (int i = 0; i < ON; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) regFence(o[i][e]);
#pragma unroll
                for (int j = 0; j < 2; j++)
#pragma unroll
                    for (int i = 0; i < 8; i++)
#pragma unroll
                        for (int e = 0; e < 4; e++) regFence(s[j][i][e]);
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const int pc = 2 * t - 2 + j;
                    if (t > 0 && pc < nChunks) mbarArrive(empty + (g0 + pc) % STAGES);
                }
                if (!QREG && t == nTurns - 1) mbarArrive(qEmpty);  // the tile's last Q·K is done
                if (!hasS[0]) break;
                float f[2] = {1.f, 1.f}, mxA = -INFINITY, mxB = -INFINITY;
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    if (!hasS[j]) continue;
                    const int mode = cur[j].mode;
                    const bool plain = mode == MODE_FULL && cur[j].count == 64 && cap == 0.f && allRows;
                    const bool bits = !plain && mode != MODE_GATHER && mode != MODE_UNCOND && pf.simple && cap == 0.f;
                    float a, bb;
                    if (bits) {
                        maskBits(s[j], rp, cur[j], mode, pf, t4, a, bb);
                    } else {
                        maskScores(s[j], rp, cur[j], mode, plain, pf, L, sKpos + st[j] * KC, sLw + st[j] * KC, scale, cap,
                                   keyLength, queryOffset, t4, a, bb);
                    }
                    f[j] = plain || bits ? scaleLog2 : 1.f;
                    mxA = fmaxf(mxA, a * f[j]);
                    mxB = fmaxf(mxB, bb * f[j]);
                }
                mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
                mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
                mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
                mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
                const float nA = fmaxf(m[0], mxA), nB = fmaxf(m[1], mxB);
                const float uA = nA == -INFINITY ? 0.f : nA, uB = nB == -INFINITY ? 0.f : nB;
                const float alA = fastExp2(m[0] - uA), alB = fastExp2(m[1] - uB);
                m[0] = nA;
                m[1] = nB;
                float sumA = 0.f, sumB = 0.f;
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    if (!hasS[j]) continue;
#pragma unroll
                    for (int nb = 0; nb < 8; nb++) {
                        s[j][nb][0] = fastExp2(fmaf(s[j][nb][0], f[j], -uA));
                        s[j][nb][1] = fastExp2(fmaf(s[j][nb][1], f[j], -uA));
                        s[j][nb][2] = fastExp2(fmaf(s[j][nb][2], f[j], -uB));
                        s[j][nb][3] = fastExp2(fmaf(s[j][nb][3], f[j], -uB));
                        sumA += s[j][nb][0] + s[j][nb][1];
                        sumB += s[j][nb][2] + s[j][nb][3];
                    }
                }
                l[0] = l[0] * alA + sumA;
                l[1] = l[1] * alB + sumB;
#pragma unroll
                for (int i = 0; i < ON; i++) {
                    o[i][0] *= alA; o[i][1] *= alA;
                    o[i][2] *= alB; o[i][3] *= alB;
                }
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    if constexpr (E4M3) {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++) {
                            p[j * PK + kk][0] = packE4m3x4(s[j][4 * kk][0], s[j][4 * kk][1], s[j][4 * kk + 1][0], s[j][4 * kk + 1][1]);
                            p[j * PK + kk][1] = packE4m3x4(s[j][4 * kk][2], s[j][4 * kk][3], s[j][4 * kk + 1][2], s[j][4 * kk + 1][3]);
                            p[j * PK + kk][2] = packE4m3x4(s[j][4 * kk + 2][0], s[j][4 * kk + 2][1], s[j][4 * kk + 3][0], s[j][4 * kk + 3][1]);
                            p[j * PK + kk][3] = packE4m3x4(s[j][4 * kk + 2][2], s[j][4 * kk + 2][3], s[j][4 * kk + 3][2], s[j][4 * kk + 3][3]);
                        }
                    } else {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++) {
                            p[j * PK + kk][0] = Pack<T>::two(s[j][2 * kk][0], s[j][2 * kk][1]);
                            p[j * PK + kk][1] = Pack<T>::two(s[j][2 * kk][2], s[j][2 * kk][3]);
                            p[j * PK + kk][2] = Pack<T>::two(s[j][2 * kk + 1][0], s[j][2 * kk + 1][1]);
                            p[j * PK + kk][3] = Pack<T>::two(s[j][2 * kk + 1][2], s[j][2 * kk + 1][3]);
                        }
                    }
                }
            }
        } else {
            uint32_t p[PK][4];
            for (int c = 0; nChunks > 0 && c <= nChunks; c++) {
                const bool hasS = c < nChunks;
                const int gc = g0 + c, st = gc % STAGES;
                Chunk cur;
                if (hasS) {
                    mbarWait(full + st, (gc / STAGES) & 1);
                    const int4 d = sChunk[st];
                    cur.mode = d.x;
                    cur.base = d.y;
                    cur.count = d.z;
                    cur.keys = nullptr;
                    cur.lws = nullptr;
                }
                if (SPLIT && c > 0) mbarWait(fullV + (gc - 1) % STAGES, ((gc - 1) / STAGES) & 1);
                float s[8][4];
#if SPARSA_WG8_QK_CHAINS > 1
                // e4m3 experiment: the other chains of Q·Kᵀ (SPARSA_WG8_QK_CHAINS)
                float sx[SPARSA_WG8_QK_CHAINS - 1][8][4];
#endif
                namedSync(1 + wg, 256);
#pragma unroll
                for (int i = 0; i < ON; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) regFence(o[i][e]);
                wgFence();
                if (hasS) {
                    const uint32_t kAddr = kAddr0 + st * C::KV_BYTES;
#if SPARSA_WG8_QK_CHAINS > 1
                    if constexpr (E4M3) {
                        // step kk goes to chain kk % CHAINS; chain 0 is s
                        constexpr int CH = SPARSA_WG8_QK_CHAINS;
#pragma unroll
                        for (int kk = 0; kk < 4; kk++) {
                            const uint64_t a = wgDesc(qAddr + kk * 32, 16, 1024), bk = wgDesc(kAddr + kk * 32, 16, 1024);
                            if (kk % CH == 0) wgmmaQK<T>(s, a, bk, kk > 0);
                            else wgmmaQK<T>(sx[kk % CH - 1], a, bk, kk >= CH);
                        }
                    } else
#endif
                    if constexpr (QREG) {
#pragma unroll
                        for (int kk = 0; kk < QK_STEPS; kk++)
                            wgmmaQKr<T>(s, qf[kk], wgDesc(kAddr + (kk >> 2) * (KC * 128) + (kk & 3) * 32, 16, 1024), kk > 0);
                    } else {
#pragma unroll
                        for (int kk = 0; kk < D * C::ESZ / 32; kk++) {
                            const uint32_t off = (kk & 3) * 32;
                            wgmmaQK<T>(s, wgDesc(qAddr + (kk >> 2) * (ROWS * 128) + off, 16, 1024),
                                       wgDesc(kAddr + (kk >> 2) * (KC * 128) + off, 16, 1024), kk > 0);
                        }
                    }
                }
                if (c > 0) {
                    const uint32_t vAddr = vAddr0 + ((gc - 1) % STAGES) * C::KV_BYTES;
                    if constexpr (E4M3) {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++)
                            wgmmaPV8(o, p[kk], wgDescPlain(vAddr + kk * 2 * WG8_V_LBO, WG8_V_LBO, WG8_V_SBO));
                    } else if constexpr (D == 256) {
                        // two n128 halves: V's 64-column blocks 0-1 and 2-3 (KC × 128 B each)
#pragma unroll
                        for (int kk = 0; kk < PK; kk++) {
                            wgmmaPV<T>(reinterpret_cast<float(&)[16][4]>(o[0]), p[kk],
                                       wgDesc(vAddr + kk * 16 * 128, SPARSA_WG_V_LBO, SPARSA_WG_V_SBO));
                            wgmmaPV<T>(reinterpret_cast<float(&)[16][4]>(o[16]), p[kk],
                                       wgDesc(vAddr + 2 * KC * 128 + kk * 16 * 128, SPARSA_WG_V_LBO, SPARSA_WG_V_SBO));
                        }
                    } else {
#pragma unroll
                        for (int kk = 0; kk < PK; kk++)
                            wgmmaPV<T>(o, p[kk], wgDesc(vAddr + kk * 16 * 128, SPARSA_WG_V_LBO, SPARSA_WG_V_SBO));
                    }
                }
                wgCommit();
                namedArrive(1 + other, 256);
                wgWait<0>();
#pragma unroll
                for (int i = 0; i < ON; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) regFence(o[i][e]);
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) regFence(s[i][e]);
#if SPARSA_WG8_QK_CHAINS > 1
                if constexpr (E4M3) {
                    if (hasS) {
#pragma unroll
                        for (int x = 0; x < SPARSA_WG8_QK_CHAINS - 1; x++)
#pragma unroll
                            for (int i = 0; i < 8; i++)
#pragma unroll
                                for (int e = 0; e < 4; e++) {
                                    regFence(sx[x][i][e]);
                                    s[i][e] += sx[x][i][e];
                                }
                    }
                }
#endif
                if (c > 0 && !SPLIT) mbarArrive(empty + (gc - 1) % STAGES);
                if (c > 0 && SPLIT) mbarArrive(emptyV + (gc - 1) % STAGES);
                if (!QREG && c == nChunks - 1) mbarArrive(qEmpty);  // the tile's last Q·K is done
                if (!hasS) break;
                const int mode = cur.mode;
                const bool plain = mode == MODE_FULL && cur.count == 64 && cap == 0.f && allRows;
                // block slices under the plain predicate without soft-cap: raw q·k under a per-row bit mask
                const bool bits = !plain && mode != MODE_GATHER && mode != MODE_UNCOND && pf.simple && cap == 0.f;
                float mxA, mxB;
                if (bits) {
                    maskBits(s, rp, cur, mode, pf, t4, mxA, mxB);
                } else {
                    maskScores(s, rp, cur, mode, plain, pf, L, sKpos + st * KC, sLw + st * KC, scale, cap, keyLength,
                               queryOffset, t4, mxA, mxB);
                }
                // SPLIT: K's stage, with the chunk's key positions and log-weights, has been read
                if (SPLIT) mbarArrive(empty + st);
                mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
                mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
                mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
                mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
                const float f = plain || bits ? scaleLog2 : 1.f;
                const float nA = fmaxf(m[0], mxA * f), nB = fmaxf(m[1], mxB * f);
                const float uA = nA == -INFINITY ? 0.f : nA, uB = nB == -INFINITY ? 0.f : nB;
                const float alA = fastExp2(m[0] - uA), alB = fastExp2(m[1] - uB);
                m[0] = nA;
                m[1] = nB;
                float sumA = 0.f, sumB = 0.f;
#pragma unroll
                for (int nb = 0; nb < 8; nb++) {
                    s[nb][0] = fastExp2(fmaf(s[nb][0], f, -uA));
                    s[nb][1] = fastExp2(fmaf(s[nb][1], f, -uA));
                    s[nb][2] = fastExp2(fmaf(s[nb][2], f, -uB));
                    s[nb][3] = fastExp2(fmaf(s[nb][3], f, -uB));
                    sumA += s[nb][0] + s[nb][1];
                    sumB += s[nb][2] + s[nb][3];
                }
                l[0] = l[0] * alA + sumA;
                l[1] = l[1] * alB + sumB;
#pragma unroll
                for (int i = 0; i < ON; i++) {
                    o[i][0] *= alA; o[i][1] *= alA;
                    o[i][2] *= alB; o[i][3] *= alB;
                }
                if constexpr (E4M3) {
                    // P ∈ [0, 1] as e4m3 codes, in the key order of transposeV8
#pragma unroll
                    for (int kk = 0; kk < PK; kk++) {
                        p[kk][0] = packE4m3x4(s[4 * kk][0], s[4 * kk][1], s[4 * kk + 1][0], s[4 * kk + 1][1]);
                        p[kk][1] = packE4m3x4(s[4 * kk][2], s[4 * kk][3], s[4 * kk + 1][2], s[4 * kk + 1][3]);
                        p[kk][2] = packE4m3x4(s[4 * kk + 2][0], s[4 * kk + 2][1], s[4 * kk + 3][0], s[4 * kk + 3][1]);
                        p[kk][3] = packE4m3x4(s[4 * kk + 2][2], s[4 * kk + 2][3], s[4 * kk + 3][2], s[4 * kk + 3][3]);
                    }
                } else {
#pragma unroll
                    for (int kk = 0; kk < PK; kk++) {
                        p[kk][0] = Pack<T>::two(s[2 * kk][0], s[2 * kk][1]);
                        p[kk][1] = Pack<T>::two(s[2 * kk][2], s[2 * kk][3]);
                        p[kk][2] = Pack<T>::two(s[2 * kk + 1][0], s[2 * kk + 1][1]);
                        p[kk][3] = Pack<T>::two(s[2 * kk + 1][2], s[2 * kk + 1][3]);
                    }
                }
            }
        }
        g0 += nChunks;
        if (!QREG && nChunks == 0) mbarArrive(qEmpty);  // Q was not read
        const int kind = (int)S.outKind;
        const long long ob = b * S.osb + h * S.osh;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float lv = l[half];
            lv += __shfl_xor_sync(0xffffffffu, lv, 1);
            lv += __shfl_xor_sync(0xffffffffu, lv, 2);
            // a NaN sum means a NaN or +inf score: the row is NaN, not empty (docs/numerics.md)
            const float inv = lv != lv ? lv : (lv > 0.f ? vScale / lv : 0.f);
            const float lseV = lv != lv ? lv : (lv > 0.f ? (m[half] + log2f(lv)) * SPARSA_LN2 : -INFINITY);
            const int row = half == 0 ? rp.rowA : rp.rowB;
            if (row < 0) continue;
            if (entryBase < 0) {
#pragma unroll
                for (int i = 0; i < D / 8; i++)
                    storeOut2(out, ob + row * S.oss + i * 8 + 2 * t4, kind, o[i][2 * half] * inv, o[i][2 * half + 1] * inv);
                if (lse && t4 == 0) lse[b * S.lsb + h * S.lsh + row * S.lss] = lseV;
            } else {
                long long e = entryBase + r0 + g + 8 * half;
#pragma unroll
                for (int i = 0; i < D / 8; i++)
                    *reinterpret_cast<float2*>(scratchO + e * D + i * 8 + 2 * t4) =
                        make_float2(o[i][2 * half] * inv, o[i][2 * half + 1] * inv);
                if (t4 == 0) scratchLse[e] = lseV;
            }
        }
    }
    // consume warpgroup 1's last hand-over, so that both barriers end balanced
    if (wg == 0) namedSync(1, 256);
}
#endif  // sm_90a or host pass

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SPARSA_WG_BODY(T, D) wgKernel<T, D>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s, items, maps, nullptr);
#define SPARSA_WG8_BODY(D) wgKernel<__nv_fp8_e4m3, D>(q, k, v, out, lse, scratchO, scratchLse, ints, floats, work, s, items, maps, &sc);
#else
#define SPARSA_WG_BODY(T, D) __trap();
#define SPARSA_WG8_BODY(D) __trap();
#endif
#define SPARSA_WG_NAMED(NAME, T, D)                                                                                   \
    extern "C" __global__ void __launch_bounds__(384, 1) NAME(                                                       \
        const T* q, const T* k, const T* v, void* out, float* lse, float* scratchO, float* scratchLse, const int* ints, \
        const float* floats, const int* work, Scalars s, int items, const __grid_constant__ WgMaps maps) {           \
        SPARSA_WG_BODY(T, D)                                                                                          \
    }
// the e4m3 entry: the scales by value after the tensor maps (which it does not use: its V is transposed on the way)
#define SPARSA_WG8_NAMED(NAME, D)                                                                                     \
    extern "C" __global__ void __launch_bounds__(384, 1) NAME(                                                       \
        const __nv_fp8_e4m3* q, const __nv_fp8_e4m3* k, const __nv_fp8_e4m3* v, void* out, float* lse, float* scratchO, \
        float* scratchLse, const int* ints, const float* floats, const int* work, Scalars s, int items,                \
        const __grid_constant__ WgMaps maps, WgScales sc) {                                                           \
        SPARSA_WG8_BODY(D)                                                                                            \
    }
