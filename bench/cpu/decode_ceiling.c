// decode_ceiling: what a C kernel reaches on this machine for the CPU dense decode step that
// `./sparsa decode` times (one query row, 32 query heads on 8 KV heads, head dim 128, 32768 keys, two
// threads, each thread 4 KV heads), next to a copy and a plain read measured in the same process. It
// is a yardstick for the JVM kernel, not part of the library: AVX-512 intrinsics, the same work per
// key (4 query vectors: Q·Kᵀ, an online softmax over blocks of 16 keys, P·V), keys along the lanes
// after a fold of 4 queries × 4 keys in registers, exp by a degree-5 polynomial.
//
// Build and run (x86-64 with AVX-512F; Linux):
//   gcc -O3 -march=native -pthread bench/cpu/decode_ceiling.c -o /tmp/decode_ceiling -lm
//   /tmp/decode_ceiling [--dtype f32|bf16] [--offset BYTES] [--read-run KEYS] [--prefetch KEYS] [--rounds R]
//     --offset    bytes added to the start of K and V (16: where a Java array's first element lies)
//     --read-run  read every K and V row of the next KEYS keys before their arithmetic (0: no read pass)
//     --prefetch  software prefetch of the rows KEYS keys ahead (0: none; the JVM has no prefetch)
// Build-time variants (-D...=1, each alone or together; all off by default), to see which part of a
// kernel's shape decides whether its reads overlap its arithmetic:
//   -DSLOW=N          N more FMAs per loaded key vector (slower arithmetic, the same reads)
//   -DQ_FROM_MEMORY=1 the query vectors loaded from the query array in every dot product, instead of
//                     once per KV head into locals (what a JVM kernel must do: 32 vectors do not fit
//                     its registers and it cannot keep an array of vectors)
//   -DQK_INTERLEAVED=1  Q·Kᵀ over four key rows at once, one 16-value slice of each in turn (the JVM
//                     kernel's order), instead of row after row
//   -DPV_HALVES=1     P·V over the block's value rows twice, each pass on half of every row (the JVM
//                     kernel's order: 16 accumulators per pass), instead of whole rows
//   -DPV_PAIRS=1      P·V over the block's value rows twice, each pass on whole rows for two of the
//                     four query vectors (also 16 accumulators per pass)
//   -DSPLIT=1         the JVM kernel's method boundaries: Q·Kᵀ of a block, its softmax and its P·V as
//                     separate functions that pass scores, probabilities and running outputs through
//                     memory; -DNI_QK=0, -DNI_SM=0, -DNI_PV=0 inline one of them again (each 1 by default)
// Variants are macros, not flags: a branch in the inner loops changes how gcc allocates registers.
// After a warm-up round that is not printed, each round prints: copy (2 threads, GB/s of bytes read + written, as `./sparsa decode` counts its
// copyGBps), read (2 threads, GB/s), the step's arithmetic on 256 keys that stay in L2 (GB/s of K and
// V), the decode step over all keys (GB/s of K and V, and its share of the round's copy).
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HEADS = 8, KEYS = 32768, D = 128, G = 4, BLK = 16 };
static int bf16;       // rows stored as bf16 (widened to f32 in registers) instead of f32
static size_t elem;    // bytes per element
static int offset, read_run, prefetch, rounds = 5;
static size_t wrap = KEYS; // keys visited modulo this, a power of two (256: the rows stay in L2)
static char *kbase, *vbase;
static float q[HEADS * G * D];
static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static __m512 load16(const char *row, int c) { // 16 elements of a row from element c, as f32
    if (!bf16) return _mm512_loadu_ps((const float *) row + c);
    __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) row + c));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static __m512 exp512(__m512 x) { // 2^(x log2 e): integer part by scalef, fraction by a polynomial
    x = _mm512_max_ps(x, _mm512_set1_ps(-100.f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504f));
    __m512 i = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, i);
    __m512 p = _mm512_set1_ps(1.8775767e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(8.9893397e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5826318e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4015361e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9315308e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, i);
}

#ifndef SLOW
#define SLOW 0
#endif
#ifndef Q_FROM_MEMORY
#define Q_FROM_MEMORY 0
#endif
#ifndef QK_INTERLEAVED
#define QK_INTERLEAVED 0
#endif
#ifndef PV_HALVES
#define PV_HALVES 0
#endif
#ifndef SPLIT
#define SPLIT 0
#endif
#ifndef PV_PAIRS
#define PV_PAIRS 0
#endif
#if Q_FROM_MEMORY
#define QV(x, c) _mm512_loadu_ps(qrow + (x) * D + (c) * 16)
#define QARG const float *qrow
#define QPASS qrow
#else
#define QV(x, c) qv[x][c]
#define QARG const __m512 qv[G][8]
#define QPASS qv
#endif
#if PV_HALVES && PV_PAIRS
#error "PV_HALVES and PV_PAIRS are two orders of the same pass: set one"
#endif

// one key's 4 dot products, folded to [q0 q1 q2 q3] in each 128-bit block (the blocks still to add)
static inline __m512 key4(const char *kr, QARG) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < 8; c++) {
        __m512 k = load16(kr, c * 16);
        a0 = _mm512_fmadd_ps(QV(0, c), k, a0);
        a1 = _mm512_fmadd_ps(QV(1, c), k, a1);
        a2 = _mm512_fmadd_ps(QV(2, c), k, a2);
        a3 = _mm512_fmadd_ps(QV(3, c), k, a3);
        for (int x = 0; x < SLOW; x++) {
            a0 = _mm512_fmadd_ps(QV(1, c), k, a0);
            a1 = _mm512_fmadd_ps(QV(2, c), k, a1);
            a2 = _mm512_fmadd_ps(QV(3, c), k, a2);
            a3 = _mm512_fmadd_ps(QV(0, c), k, a3);
        }
    }
    __m512 b01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 b23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    return _mm512_add_ps(_mm512_shuffle_ps(b01, b23, 0x44), _mm512_shuffle_ps(b01, b23, 0xEE));
}

static const char *row(const char *base, size_t h, size_t j);

// four keys' 4 dot products each (as key4), one 16-value slice of every key row in turn
static inline void key4x4(const char *kb, size_t h, size_t j, QARG, __m512 out[4]) {
    __m512 a[4][4];
    for (int u = 0; u < 4; u++)
        for (int x = 0; x < 4; x++) a[u][x] = _mm512_setzero_ps();
    for (int c = 0; c < 8; c++)
        for (int u = 0; u < 4; u++) {
            __m512 k = load16(row(kb, h, j + u), c * 16);
            for (int x = 0; x < 4; x++) a[u][x] = _mm512_fmadd_ps(QV(x, c), k, a[u][x]);
            for (int e = 0; e < SLOW; e++)
                for (int x = 0; x < 4; x++) a[u][x] = _mm512_fmadd_ps(QV((x + 1) % 4, c), k, a[u][x]);
        }
    for (int u = 0; u < 4; u++) {
        __m512 b01 = _mm512_add_ps(_mm512_unpacklo_ps(a[u][0], a[u][1]), _mm512_unpackhi_ps(a[u][0], a[u][1]));
        __m512 b23 = _mm512_add_ps(_mm512_unpacklo_ps(a[u][2], a[u][3]), _mm512_unpackhi_ps(a[u][2], a[u][3]));
        out[u] = _mm512_add_ps(_mm512_shuffle_ps(b01, b23, 0x44), _mm512_shuffle_ps(b01, b23, 0xEE));
    }
}

static const char *row(const char *base, size_t h, size_t j) {
    return base + (h * KEYS + (j & (wrap - 1))) * D * elem;
}

// one online-softmax step over a block's scores r (lane 4b + x: query x): probabilities to p[64], the
// running max m and sum l updated (lane 4b + x: query x); returns the rescale of earlier outputs
static inline __attribute__((always_inline)) __m512 softmax4(__m512 r[4], float *p, __m512 *m, __m512 *l) {
    __m512 mx = _mm512_max_ps(_mm512_max_ps(r[0], r[1]), _mm512_max_ps(r[2], r[3]));
    mx = _mm512_max_ps(mx, _mm512_shuffle_f32x4(mx, mx, 0x4E));
    mx = _mm512_max_ps(mx, _mm512_shuffle_f32x4(mx, mx, 0xB1));
    __m512 mn = _mm512_max_ps(*m, mx), a = exp512(_mm512_sub_ps(*m, mn));
    *m = mn;
    __m512 sum = _mm512_setzero_ps();
    for (int u = 0; u < 4; u++) {
        r[u] = exp512(_mm512_sub_ps(r[u], mn));
        sum = _mm512_add_ps(sum, r[u]);
        _mm512_store_ps(p + 16 * u, r[u]);
    }
    sum = _mm512_add_ps(sum, _mm512_shuffle_f32x4(sum, sum, 0x4E));
    sum = _mm512_add_ps(sum, _mm512_shuffle_f32x4(sum, sum, 0xB1));
    *l = _mm512_fmadd_ps(*l, a, sum);
    return a;
}

// the four keys from j: lane 4b + x holds key j + b's score for query x
static inline __attribute__((always_inline)) __m512 qk_group(size_t h, size_t j, QARG) {
#if QK_INTERLEAVED
    __m512 o4[4];
    key4x4(kbase, h, j, QPASS, o4);
    __m512 c0 = o4[0], c1 = o4[1], c2 = o4[2], c3 = o4[3];
#else
    __m512 c0 = key4(row(kbase, h, j), QPASS), c1 = key4(row(kbase, h, j + 1), QPASS);
    __m512 c2 = key4(row(kbase, h, j + 2), QPASS), c3 = key4(row(kbase, h, j + 3), QPASS);
#endif
    __m512 f01 = _mm512_add_ps(_mm512_shuffle_f32x4(c0, c1, 0x44), _mm512_shuffle_f32x4(c0, c1, 0xEE));
    __m512 f23 = _mm512_add_ps(_mm512_shuffle_f32x4(c2, c3, 0x44), _mm512_shuffle_f32x4(c2, c3, 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(f01, f23, 0x88), _mm512_shuffle_f32x4(f01, f23, 0xDD));
}


#if SPLIT
#ifndef NI_QK
#define NI_QK 1
#endif
#ifndef NI_SM
#define NI_SM 1
#endif
#ifndef NI_PV
#define NI_PV 1
#endif
#define ATTR_OF(n) ATTR_OF2(n)
#define ATTR_OF2(n) ATTR_##n
#define ATTR_1 __attribute__((noinline))
#define ATTR_0 inline __attribute__((always_inline))
#define QK_ATTR ATTR_OF(NI_QK)
#define SM_ATTR ATTR_OF(NI_SM)
#define PV_ATTR ATTR_OF(NI_PV)
// the JVM kernel's method boundaries: Q·Kᵀ of a block, its softmax and its P·V as separate calls that
// pass scores, probabilities and running outputs through memory
static QK_ATTR void qk_block(size_t h, size_t j0, QARG, float *sc) {
    for (int u = 0; u < 4; u++) _mm512_store_ps(sc + 16 * u, qk_group(h, j0 + 4 * u, QPASS));
}
static SM_ATTR void softmax_block(float *sc, float *ml, float *alpha) {
    __m512 r[4], m = _mm512_load_ps(ml), l = _mm512_load_ps(ml + 16);
    for (int u = 0; u < 4; u++) r[u] = _mm512_load_ps(sc + 16 * u);
    __m512 a = softmax4(r, sc, &m, &l);
    _mm512_store_ps(ml, m);
    _mm512_store_ps(ml + 16, l);
    _mm512_store_ps(alpha, a);
}
// P·V of a block for query vectors x0 .. x0 + nx - 1 and column vectors c0 .. c1 - 1, running outputs in o
static inline __attribute__((always_inline)) void pv_block(size_t h, size_t j0, const float *sc, const float *alpha, float *o,
                                               int x0, int nx, int c0, int c1) {
    __m512 acc[4][8];
    for (int x = x0; x < x0 + nx; x++)
        for (int c = c0; c < c1; c++) acc[x][c] = _mm512_mul_ps(_mm512_load_ps(o + x * D + 16 * c), _mm512_set1_ps(alpha[x]));
    for (int j = 0; j < BLK; j++) {
        const char *vr = row(vbase, h, j0 + j);
        __m512 p[4];
        for (int x = x0; x < x0 + nx; x++) p[x] = _mm512_set1_ps(sc[4 * j + x]);
        for (int c = c0; c < c1; c++) {
            __m512 v = load16(vr, c * 16);
            for (int x = x0; x < x0 + nx; x++) acc[x][c] = _mm512_fmadd_ps(p[x], v, acc[x][c]);
        }
    }
    for (int x = x0; x < x0 + nx; x++)
        for (int c = c0; c < c1; c++) _mm512_store_ps(o + x * D + 16 * c, acc[x][c]);
}
#define PV_WRAP(name, x0, nx, c0, c1) \
    static PV_ATTR void name(size_t h, size_t j0, const float *sc, const float *alpha, float *o) { \
        pv_block(h, j0, sc, alpha, o, x0, nx, c0, c1); \
    }
#if PV_HALVES
PV_WRAP(pv_half0, 0, 4, 0, 4)
PV_WRAP(pv_half1, 0, 4, 4, 8)
#elif PV_PAIRS
PV_WRAP(pv_pair0, 0, 2, 0, 8)
PV_WRAP(pv_pair1, 2, 2, 0, 8)
#else
PV_WRAP(pv_full, 0, 4, 0, 8)
#endif
static void head_split(size_t h, float *out) {
#if Q_FROM_MEMORY
    const float *qrow = q + h * G * D;
#else
    __m512 qv[G][8];
    for (int x = 0; x < G; x++)
        for (int c = 0; c < 8; c++) qv[x][c] = _mm512_loadu_ps(q + (h * G + x) * D + c * 16);
#endif
    float o[G * D] __attribute__((aligned(64))) = {0};
    float ml[32] __attribute__((aligned(64)));
    float s[BLK * G] __attribute__((aligned(64)));
    float alpha[16] __attribute__((aligned(64)));
    _mm512_store_ps(ml, _mm512_set1_ps(-1e30f));
    _mm512_store_ps(ml + 16, _mm512_setzero_ps());
    for (size_t j0 = 0; j0 < KEYS; j0 += BLK) {
        qk_block(h, j0, QPASS, s);
        softmax_block(s, ml, alpha);
#if PV_HALVES
        pv_half0(h, j0, s, alpha, o);
        pv_half1(h, j0, s, alpha, o);
#elif PV_PAIRS
        pv_pair0(h, j0, s, alpha, o);
        pv_pair1(h, j0, s, alpha, o);
#else
        pv_full(h, j0, s, alpha, o);
#endif
    }
    for (int x = 0; x < G; x++)
        for (int c = 0; c < D; c++) out[x * D + c] = o[x * D + c] / ml[16 + x];
}
#endif

#if !SPLIT
static void head(size_t h, float *out) {
    __m512 acc[G][8];
#if Q_FROM_MEMORY
    const float *qrow = q + h * G * D;
#else
    __m512 qv[G][8];
#endif
    for (int x = 0; x < G; x++)
        for (int c = 0; c < 8; c++) {
#if !Q_FROM_MEMORY
            qv[x][c] = _mm512_loadu_ps(q + (h * G + x) * D + c * 16);
#endif
            acc[x][c] = _mm512_setzero_ps();
        }
    __m512 m = _mm512_set1_ps(-1e30f), l = _mm512_setzero_ps(); // lane 4b + x: query x
    float s[BLK * G] __attribute__((aligned(64)));
    float alpha[16] __attribute__((aligned(64)));
    for (size_t j0 = 0; j0 < KEYS; j0 += BLK) {
        if (read_run && j0 % read_run == 0) { // every line of the next read_run keys, K and V rows in turn
            __m512 z0 = _mm512_setzero_ps(), z1 = z0;
            for (size_t j = j0; j < j0 + read_run && j < KEYS; j++)
                for (size_t b = 0; b < D * elem; b += 64) {
                    z0 = _mm512_add_ps(z0, _mm512_loadu_ps((const float *) (row(kbase, h, j) + b)));
                    z1 = _mm512_add_ps(z1, _mm512_loadu_ps((const float *) (row(vbase, h, j) + b)));
                }
            sink = _mm512_reduce_add_ps(_mm512_add_ps(z0, z1));
        }
        if (prefetch)
            for (size_t j = j0; j < j0 + BLK; j++)
                for (size_t b = 0; b < D * elem; b += 64) {
                    _mm_prefetch(row(kbase, h, j + prefetch) + b, _MM_HINT_T0);
                    _mm_prefetch(row(vbase, h, j + prefetch) + b, _MM_HINT_T0);
                }
        __m512 r[4]; // r[u] lane 4b + x: key j0 + 4u + b, query x
        for (int u = 0; u < 4; u++) r[u] = qk_group(h, j0 + 4 * u, QPASS);
        _mm512_store_ps(alpha, softmax4(r, s, &m, &l));
        for (int x = 0; x < G; x++)
            for (int c = 0; c < 8; c++) acc[x][c] = _mm512_mul_ps(acc[x][c], _mm512_set1_ps(alpha[x]));
#if PV_PAIRS
        for (int xp = 0; xp < 4; xp += 2)
            for (int j = 0; j < BLK; j++) {
                const char *vr = row(vbase, h, j0 + j);
                __m512 pa = _mm512_set1_ps(s[4 * j + xp]), pb = _mm512_set1_ps(s[4 * j + xp + 1]);
                for (int c = 0; c < 8; c++) {
                    __m512 v = load16(vr, c * 16);
                    acc[xp][c] = _mm512_fmadd_ps(pa, v, acc[xp][c]);
                    acc[xp + 1][c] = _mm512_fmadd_ps(pb, v, acc[xp + 1][c]);
                }
            }
#else
#if PV_HALVES
        for (int half = 0; half < 2; half++)
#define C_FROM (half * 4)
#define C_TO (half * 4 + 4)
#else
#define C_FROM 0
#define C_TO 8
#endif
        for (int j = 0; j < BLK; j++) {
            const char *vr = row(vbase, h, j0 + j);
            __m512 p0 = _mm512_set1_ps(s[4 * j]), p1 = _mm512_set1_ps(s[4 * j + 1]);
            __m512 p2 = _mm512_set1_ps(s[4 * j + 2]), p3 = _mm512_set1_ps(s[4 * j + 3]);
            for (int c = C_FROM; c < C_TO; c++) {
                __m512 v = load16(vr, c * 16);
                acc[0][c] = _mm512_fmadd_ps(p0, v, acc[0][c]);
                acc[1][c] = _mm512_fmadd_ps(p1, v, acc[1][c]);
                acc[2][c] = _mm512_fmadd_ps(p2, v, acc[2][c]);
                acc[3][c] = _mm512_fmadd_ps(p3, v, acc[3][c]);
            }
        }
#endif
    }
    float lf[16];
    _mm512_storeu_ps(lf, l);
    for (int x = 0; x < G; x++)
        for (int c = 0; c < 8; c++)
            _mm512_storeu_ps(out + x * D + c * 16, _mm512_mul_ps(acc[x][c], _mm512_set1_ps(1.f / lf[x])));
}
#endif

static const size_t COPY_BYTES = 256u << 20;
static char *src[2], *dst[2];

static void *decode_part(void *arg) {
    long t = (long) arg;
    float out[G * D];
#if SPLIT
    for (size_t h = (size_t) t * HEADS / 2; h < (size_t) (t + 1) * HEADS / 2; h++) head_split(h, out);
#else
    for (size_t h = (size_t) t * HEADS / 2; h < (size_t) (t + 1) * HEADS / 2; h++) head(h, out);
#endif
    sink = out[0];
    return NULL;
}
static void *copy_part(void *arg) {
    long t = (long) arg;
    memcpy(dst[t], src[t], COPY_BYTES);
    return NULL;
}
static void *read_part(void *arg) {
    long t = (long) arg;
    const float *p = (const float *) src[t];
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < COPY_BYTES / 4; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
    }
    sink = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return NULL;
}
static double two_threads(void *(*f)(void *)) {
    pthread_t th[2];
    double t0 = now();
    for (long i = 0; i < 2; i++) pthread_create(&th[i], NULL, f, (void *) i);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    return now() - t0;
}

static int arg_int(const char *name, const char *v) {
    char *end;
    long x = v ? strtol(v, &end, 10) : -1;
    if (!v || *end || x < 0 || x > 1 << 20) {
        fprintf(stderr, "decode_ceiling: %s needs a number in [0, 1048576], got %s\n", name, v ? v : "nothing");
        exit(2);
    }
    return (int) x;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--dtype") && v && (!strcmp(v, "f32") || !strcmp(v, "bf16"))) bf16 = !strcmp(v, "bf16");
        else if (!strcmp(a, "--offset")) offset = arg_int(a, v);
        else if (!strcmp(a, "--read-run")) read_run = arg_int(a, v);
        else if (!strcmp(a, "--prefetch")) prefetch = arg_int(a, v);
        else if (!strcmp(a, "--rounds")) rounds = arg_int(a, v);
        else {
            fprintf(stderr, "decode_ceiling: unknown or incomplete argument %s; usage: decode_ceiling [--dtype f32|bf16]"
                            " [--offset BYTES] [--read-run KEYS] [--prefetch KEYS] [--rounds R]\n", a);
            return 2;
        }
        i++;
    }
    if (read_run % BLK) {
        fprintf(stderr, "decode_ceiling: --read-run must be a multiple of %d, got %d\n", BLK, read_run);
        return 2;
    }
    elem = bf16 ? 2 : 4;
    size_t bytes = (size_t) HEADS * KEYS * D * elem;
    kbase = (char *) aligned_alloc(4096, bytes + 4096) + offset;
    vbase = (char *) aligned_alloc(4096, bytes + 4096) + offset;
    for (size_t i = 0; i < bytes / 2; i++) { // small finite values, bf16 or f32 alike (pairs of bytes)
        uint16_t x = (uint16_t) (0x3c00 + (i * 2654435761u) % 512);
        memcpy(kbase + 2 * i, &x, 2);
        memcpy(vbase + 2 * i, &x, 2);
    }
    for (size_t i = 0; i < HEADS * G * D; i++) q[i] = (float) (i % 7) / 70.f;
    for (int t = 0; t < 2; t++) {
        src[t] = aligned_alloc(4096, COPY_BYTES);
        dst[t] = aligned_alloc(4096, COPY_BYTES);
        memset(src[t], 1, COPY_BYTES);
        memset(dst[t], 0, COPY_BYTES);
    }
    printf("decode_ceiling: %s rows, offset %d B, read run %d keys, prefetch %d keys; H=32 (kv 8) N=%d D=%d, 2 threads;"
           " built with SLOW=%d Q_FROM_MEMORY=%d QK_INTERLEAVED=%d PV_HALVES=%d PV_PAIRS=%d\n",
           bf16 ? "bf16" : "f32", offset, read_run, prefetch, KEYS, D, SLOW, Q_FROM_MEMORY, QK_INTERLEAVED, PV_HALVES, PV_PAIRS);
    for (int r = -1; r < rounds; r++) { // round -1 is a warm-up (first touches, clocks), not printed
        double copy = 2.0 * 2 * COPY_BYTES / two_threads(copy_part) / 1e9;
        double read = 2.0 * COPY_BYTES / two_threads(read_part) / 1e9;
        wrap = 256;
        int keep_run = read_run, keep_prefetch = prefetch;
        read_run = prefetch = 0;
        double arith = 2.0 * bytes / two_threads(decode_part) / 1e9;
        read_run = keep_run;
        prefetch = keep_prefetch;
        wrap = KEYS;
        double step = two_threads(decode_part);
        double decode = 2.0 * bytes / step / 1e9;
        if (r < 0) continue;
        printf("round %d: copy %.1f GB/s, read %.1f GB/s, arithmetic in L2 %.1f GB/s, decode %.1f GB/s (%.0f %% of copy, %.2f ms)\n",
               r + 1, copy, read, arith, decode, 100 * decode / copy, step * 1e3);
    }
    return 0;
}
