// decode_key_tiles: the decode step of decode_ceiling.c (one query row, 32 query heads on 8 KV heads,
// head dim 128, 32768 f32 keys, two threads of 4 KV heads each) with K stored in tiles of 16 keys,
// channel-major inside a tile ([tile][128][16]: channel c of keys 16t..16t+15 is one 64-byte line),
// so that Q·Kᵀ puts keys along the lanes and needs no folds: for every channel, one load of 16 keys
// and one FMA per query vector with that channel's query value broadcast. V stays row-major. It is a
// yardstick for the question whether such a cache layout streams K and V where the row-major one of
// the JVM kernel does not; it is not part of the library.
//
// Build and run (x86-64 with AVX-512F; Linux):
//   gcc -O3 -march=native -pthread bench/cpu/decode_key_tiles.c -o /tmp/decode_key_tiles -lm
//   /tmp/decode_key_tiles [--offset BYTES] [--rounds R]
//     --offset  bytes added to the start of K and V (16: where a Java array's first element lies)
// Build-time variant: -DPV_ORDER=0 (default) P·V in half rows, two passes over a tile's value rows
// of 64 channels each for the four query vectors (16 accumulators, the JVM kernel's order);
// -DPV_ORDER=1 whole rows, one pass for the four query vectors (32 accumulators);
// -DPV_ORDER=2 whole rows for two query vectors at a time, two passes (16 accumulators).
// After a warm-up round, each round prints the copy (2 threads, GB/s of bytes read + written), the
// step's arithmetic on 256 keys that stay in L2 and the step over all keys (GB/s of K and V); at the
// end, head 0 against double-precision attention (the exp polynomial gives about 1e-5).
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HEADS = 8, KEYS = 32768, D = 128, G = 4, T = 16 };
#ifndef PV_ORDER
#define PV_ORDER 0
#endif
#define COPY_BYTES ((size_t) 256 << 20)
static float *K, *V, q[HEADS * G * D], out[HEADS * G * D];
static char *src[2], *dst[2];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static __m512 exp512(__m512 x) { // as decode_ceiling.c
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

// one KV head: the first `keys` keys of its tiles; o holds the 4 query vectors' outputs
static void head(const float *k, const float *v, const float *qh, int keys, float *o) {
    float m[G], l[G], a[G], p[G * T];
    for (int g = 0; g < G; g++) m[g] = -INFINITY, l[g] = 0;
    memset(o, 0, sizeof(float) * G * D);
    for (int t0 = 0; t0 < keys; t0 += T) {
        const float *kt = k + (size_t) t0 * D;
        __m512 s[G], u[G];
        for (int g = 0; g < G; g++) s[g] = u[g] = _mm512_setzero_ps();
        for (int d = 0; d < D; d += 2) { // two chains per query vector for the FMA latency
            __m512 ka = _mm512_loadu_ps(kt + d * T), kb = _mm512_loadu_ps(kt + (d + 1) * T);
            for (int g = 0; g < G; g++) {
                s[g] = _mm512_fmadd_ps(ka, _mm512_set1_ps(qh[g * D + d]), s[g]);
                u[g] = _mm512_fmadd_ps(kb, _mm512_set1_ps(qh[g * D + d + 1]), u[g]);
            }
        }
        for (int g = 0; g < G; g++) {
            __m512 sg = _mm512_add_ps(s[g], u[g]);
            float n = fmaxf(m[g], _mm512_reduce_max_ps(sg));
            a[g] = expf(m[g] - n);
            __m512 pg = exp512(_mm512_sub_ps(sg, _mm512_set1_ps(n)));
            l[g] = l[g] * a[g] + _mm512_reduce_add_ps(pg);
            m[g] = n;
            _mm512_storeu_ps(p + g * T, pg);
        }
        const float *vt = v + (size_t) t0 * D;
#if PV_ORDER == 0
        for (int h = 0; h < D; h += 64) {
            __m512 c[G][4];
            for (int g = 0; g < G; g++)
                for (int j = 0; j < 4; j++) c[g][j] = _mm512_mul_ps(_mm512_loadu_ps(o + g * D + h + 16 * j), _mm512_set1_ps(a[g]));
            for (int t = 0; t < T; t++) {
                const float *r = vt + t * D + h;
                __m512 v0 = _mm512_loadu_ps(r), v1 = _mm512_loadu_ps(r + 16), v2 = _mm512_loadu_ps(r + 32), v3 = _mm512_loadu_ps(r + 48);
                for (int g = 0; g < G; g++) {
                    __m512 b = _mm512_set1_ps(p[g * T + t]);
                    c[g][0] = _mm512_fmadd_ps(v0, b, c[g][0]);
                    c[g][1] = _mm512_fmadd_ps(v1, b, c[g][1]);
                    c[g][2] = _mm512_fmadd_ps(v2, b, c[g][2]);
                    c[g][3] = _mm512_fmadd_ps(v3, b, c[g][3]);
                }
            }
            for (int g = 0; g < G; g++)
                for (int j = 0; j < 4; j++) _mm512_storeu_ps(o + g * D + h + 16 * j, c[g][j]);
        }
#else
        enum { QS = PV_ORDER == 1 ? 4 : 2 };
        for (int g0 = 0; g0 < G; g0 += QS) {
            __m512 c[QS][8];
            for (int g = 0; g < QS; g++)
                for (int j = 0; j < 8; j++) c[g][j] = _mm512_mul_ps(_mm512_loadu_ps(o + (g0 + g) * D + 16 * j), _mm512_set1_ps(a[g0 + g]));
            for (int t = 0; t < T; t++) {
                const float *r = vt + t * D;
                for (int j = 0; j < 8; j++) {
                    __m512 vv = _mm512_loadu_ps(r + 16 * j);
                    for (int g = 0; g < QS; g++) c[g][j] = _mm512_fmadd_ps(vv, _mm512_set1_ps(p[(g0 + g) * T + t]), c[g][j]);
                }
            }
            for (int g = 0; g < QS; g++)
                for (int j = 0; j < 8; j++) _mm512_storeu_ps(o + (g0 + g) * D + 16 * j, c[g][j]);
        }
#endif
    }
    for (int g = 0; g < G; g++)
        for (int c = 0; c < D; c++) o[g * D + c] /= l[g];
}

typedef struct { int h0, keys, reps; } job;

static void *run_heads(void *arg) {
    job *j = arg;
    for (int r = 0; r < j->reps; r++)
        for (int h = j->h0; h < j->h0 + HEADS / 2; h++)
            head(K + (size_t) h * KEYS * D, V + (size_t) h * KEYS * D, q + h * G * D, j->keys, out + h * G * D);
    return NULL;
}

static double both(int keys, int reps) { // seconds for two threads, 4 KV heads each
    pthread_t th;
    job a = {0, keys, reps}, b = {HEADS / 2, keys, reps};
    double t = now();
    pthread_create(&th, NULL, run_heads, &b);
    run_heads(&a);
    pthread_join(th, NULL);
    return now() - t;
}

static void *copy_part(void *arg) {
    long i = (long) arg;
    memcpy(dst[i], src[i], COPY_BYTES);
    return NULL;
}

int main(int argc, char **argv) {
    int offset = 0, rounds = 5;
    for (int i = 1; i < argc; i += 2) {
        char *end;
        long x = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (i + 1 >= argc || *end || x < 0 || x > 4096 || (strcmp(argv[i], "--offset") && strcmp(argv[i], "--rounds"))) {
            fprintf(stderr, "decode_key_tiles: bad argument %s; usage: decode_key_tiles [--offset BYTES (0-4096)] [--rounds R]\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--offset")) offset = (int) x; else rounds = (int) x;
    }
    size_t n = (size_t) HEADS * KEYS * D;
    K = (float *) ((char *) aligned_alloc(4096, n * 4 + 4096) + offset);
    V = (float *) ((char *) aligned_alloc(4096, n * 4 + 4096) + offset);
    srand(1);
    for (size_t i = 0; i < n; i++) {
        K[i] = (rand() / (float) RAND_MAX - 0.5f) * 3;
        V[i] = rand() / (float) RAND_MAX - 0.5f;
    }
    for (int i = 0; i < HEADS * G * D; i++) q[i] = (rand() / (float) RAND_MAX - 0.5f) * 0.3f;
    for (int i = 0; i < 2; i++) {
        src[i] = aligned_alloc(4096, COPY_BYTES);
        dst[i] = aligned_alloc(4096, COPY_BYTES);
        memset(src[i], 1, COPY_BYTES);
        memset(dst[i], 0, COPY_BYTES);
    }
    printf("decode_key_tiles: f32 rows, K in tiles of %d keys, offset %d B; H=32 (kv 8) N=%d D=%d, 2 threads; built with PV_ORDER=%d\n",
           T, offset, KEYS, D, PV_ORDER);
    for (int r = -1; r < rounds; r++) {
        double t = now();
        pthread_t th;
        pthread_create(&th, NULL, copy_part, (void *) 1L);
        copy_part(0);
        pthread_join(th, NULL);
        double copy = 2.0 * 2 * COPY_BYTES / (now() - t) / 1e9;
        double arith = 2.0 * n * 4 / both(256, KEYS / 256) / 1e9;
        double step = both(KEYS, 1);
        double decode = 2.0 * n * 4 / step / 1e9;
        if (r >= 0)
            printf("round %d: copy %.1f GB/s, arithmetic in L2 %.1f GB/s, decode %.1f GB/s (%.0f %% of copy, %.2f ms)\n",
                   r + 1, copy, arith, decode, 100 * decode / copy, step * 1e3);
    }
    // head 0 against double precision (K of head 0 read back through its tiles)
    double worst = 0;
    for (int g = 0; g < G; g++) {
        static double sc[KEYS];
        double mx = -INFINITY, l = 0, o[D] = {0}, big = 0, err = 0;
        for (int key = 0; key < KEYS; key++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double) q[g * D + d] * K[(size_t) (key / T) * T * D + d * T + key % T];
            sc[key] = s;
            mx = fmax(mx, s);
        }
        for (int key = 0; key < KEYS; key++) {
            double e = exp(sc[key] - mx);
            l += e;
            for (int d = 0; d < D; d++) o[d] += e * V[(size_t) key * D + d];
        }
        for (int d = 0; d < D; d++) {
            big = fmax(big, fabs(o[d] / l));
            err = fmax(err, fabs(out[g * D + d] - o[d] / l));
        }
        worst = fmax(worst, err / big);
    }
    printf("head 0: largest error relative to the largest output %.1e\n", worst);
    return 0;
}
