import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The step of decode_key_tiles.c in Java with the Vector API: one query row, 32 query heads on 8 KV
 * heads, head dim 128, 32768 f32 keys, two threads of 4 KV heads each, with K in tiles of 16 keys,
 * channel-major inside a tile, so that Q·Kᵀ puts keys along the lanes without folds and a tile's
 * Q·Kᵀ, softmax and P·V are one method. A yardstick, not part of the library.
 *
 * <p>Run from the project root (JDK 25):
 * {@code java --add-modules jdk.incubator.vector -Xmx8g -XX:+UseTransparentHugePages
 * -Dpv=half|whole -Dpad=12 -Drounds=5 bench/cpu/DecodeKeyTiles.java}. {@code pv=half} (default) does
 * P·V in two passes of 64 channels over a tile's value rows (16 accumulators, the library kernel's
 * order), {@code pv=whole} in one pass over whole rows (32 accumulators); {@code pad} shifts K and V
 * by that many floats (12: a large array's data then starts on a 64-byte boundary, as the heap places
 * such arrays on a region boundary with a 16-byte header). Each round prints the copy (two threads,
 * bytes read + written), the step's arithmetic on 256 keys that stay in L2 and the step over all keys
 * (GB/s of K and V); at the end, head 0 against double-precision attention.
 */
public class DecodeKeyTiles {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_512;
    static final int HEADS = 8, KEYS = 32768, D = 128, G = 4, T = 16;
    /** P·V over whole value rows (-Dpv=whole) rather than half rows (main refuses other values). */
    static final boolean WHOLE = "whole".equals(System.getProperty("pv"));
    static volatile float sink;

    /** One KV head: the first {@code keys} keys of the tiles at {@code kOff}; V rows at {@code vOff}. */
    static void head(float[] k, int kOff, float[] v, int vOff, float[] q, int qOff, int keys, float[] out, int o,
                     float[] p, float[] a) {
        float m0 = Float.NEGATIVE_INFINITY, m1 = m0, m2 = m0, m3 = m0, l0 = 0, l1 = 0, l2 = 0, l3 = 0;
        java.util.Arrays.fill(out, o, o + G * D, 0f);
        for (int t0 = 0; t0 < keys; t0 += T) {
            int kt = kOff + t0 * D;
            // two chains per query vector, for the FMA latency
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
            for (int d = 0; d < D; d += 2) {
                FloatVector ka = FloatVector.fromArray(S, k, kt + d * T), kb = FloatVector.fromArray(S, k, kt + (d + 1) * T);
                s0 = ka.fma(FloatVector.broadcast(S, q[qOff + d]), s0);
                s1 = ka.fma(FloatVector.broadcast(S, q[qOff + D + d]), s1);
                s2 = ka.fma(FloatVector.broadcast(S, q[qOff + 2 * D + d]), s2);
                s3 = ka.fma(FloatVector.broadcast(S, q[qOff + 3 * D + d]), s3);
                u0 = kb.fma(FloatVector.broadcast(S, q[qOff + d + 1]), u0);
                u1 = kb.fma(FloatVector.broadcast(S, q[qOff + D + d + 1]), u1);
                u2 = kb.fma(FloatVector.broadcast(S, q[qOff + 2 * D + d + 1]), u2);
                u3 = kb.fma(FloatVector.broadcast(S, q[qOff + 3 * D + d + 1]), u3);
            }
            s0 = s0.add(u0);
            s1 = s1.add(u1);
            s2 = s2.add(u2);
            s3 = s3.add(u3);
            float n0 = Math.max(m0, s0.reduceLanes(VectorOperators.MAX)), n1 = Math.max(m1, s1.reduceLanes(VectorOperators.MAX));
            float n2 = Math.max(m2, s2.reduceLanes(VectorOperators.MAX)), n3 = Math.max(m3, s3.reduceLanes(VectorOperators.MAX));
            a[0] = (float) Math.exp(m0 - n0);
            a[1] = (float) Math.exp(m1 - n1);
            a[2] = (float) Math.exp(m2 - n2);
            a[3] = (float) Math.exp(m3 - n3);
            FloatVector p0 = s0.sub(n0).lanewise(VectorOperators.EXP), p1 = s1.sub(n1).lanewise(VectorOperators.EXP);
            FloatVector p2 = s2.sub(n2).lanewise(VectorOperators.EXP), p3 = s3.sub(n3).lanewise(VectorOperators.EXP);
            l0 = l0 * a[0] + p0.reduceLanes(VectorOperators.ADD);
            l1 = l1 * a[1] + p1.reduceLanes(VectorOperators.ADD);
            l2 = l2 * a[2] + p2.reduceLanes(VectorOperators.ADD);
            l3 = l3 * a[3] + p3.reduceLanes(VectorOperators.ADD);
            m0 = n0;
            m1 = n1;
            m2 = n2;
            m3 = n3;
            p0.intoArray(p, 0);
            p1.intoArray(p, T);
            p2.intoArray(p, 2 * T);
            p3.intoArray(p, 3 * T);
            if (WHOLE) {
                pvWhole(v, vOff + t0 * D, p, a, out, o);
            } else {
                pvHalf(v, vOff + t0 * D, p, a, out, o);
            }
        }
        float[] l = {l0, l1, l2, l3};
        for (int g = 0; g < G; g++) {
            for (int c = 0; c < D; c++) {
                out[o + g * D + c] /= l[g];
            }
        }
    }

    /** P·V of one tile over whole value rows: 4 query vectors × 8 column vectors of accumulators. */
    static void pvWhole(float[] v, int vt, float[] p, float[] a, float[] out, int o) {
        FloatVector c00 = FloatVector.fromArray(S, out, o + 0).mul(a[0]), c01 = FloatVector.fromArray(S, out, o + 16).mul(a[0]);
        FloatVector c02 = FloatVector.fromArray(S, out, o + 32).mul(a[0]), c03 = FloatVector.fromArray(S, out, o + 48).mul(a[0]);
        FloatVector c04 = FloatVector.fromArray(S, out, o + 64).mul(a[0]), c05 = FloatVector.fromArray(S, out, o + 80).mul(a[0]);
        FloatVector c06 = FloatVector.fromArray(S, out, o + 96).mul(a[0]), c07 = FloatVector.fromArray(S, out, o + 112).mul(a[0]);
        FloatVector c10 = FloatVector.fromArray(S, out, o + 128).mul(a[1]), c11 = FloatVector.fromArray(S, out, o + 144).mul(a[1]);
        FloatVector c12 = FloatVector.fromArray(S, out, o + 160).mul(a[1]), c13 = FloatVector.fromArray(S, out, o + 176).mul(a[1]);
        FloatVector c14 = FloatVector.fromArray(S, out, o + 192).mul(a[1]), c15 = FloatVector.fromArray(S, out, o + 208).mul(a[1]);
        FloatVector c16 = FloatVector.fromArray(S, out, o + 224).mul(a[1]), c17 = FloatVector.fromArray(S, out, o + 240).mul(a[1]);
        FloatVector c20 = FloatVector.fromArray(S, out, o + 256).mul(a[2]), c21 = FloatVector.fromArray(S, out, o + 272).mul(a[2]);
        FloatVector c22 = FloatVector.fromArray(S, out, o + 288).mul(a[2]), c23 = FloatVector.fromArray(S, out, o + 304).mul(a[2]);
        FloatVector c24 = FloatVector.fromArray(S, out, o + 320).mul(a[2]), c25 = FloatVector.fromArray(S, out, o + 336).mul(a[2]);
        FloatVector c26 = FloatVector.fromArray(S, out, o + 352).mul(a[2]), c27 = FloatVector.fromArray(S, out, o + 368).mul(a[2]);
        FloatVector c30 = FloatVector.fromArray(S, out, o + 384).mul(a[3]), c31 = FloatVector.fromArray(S, out, o + 400).mul(a[3]);
        FloatVector c32 = FloatVector.fromArray(S, out, o + 416).mul(a[3]), c33 = FloatVector.fromArray(S, out, o + 432).mul(a[3]);
        FloatVector c34 = FloatVector.fromArray(S, out, o + 448).mul(a[3]), c35 = FloatVector.fromArray(S, out, o + 464).mul(a[3]);
        FloatVector c36 = FloatVector.fromArray(S, out, o + 480).mul(a[3]), c37 = FloatVector.fromArray(S, out, o + 496).mul(a[3]);
        for (int t = 0; t < T; t++) {
            int r = vt + t * D;
            FloatVector b0 = FloatVector.broadcast(S, p[t]), b1 = FloatVector.broadcast(S, p[T + t]);
            FloatVector b2 = FloatVector.broadcast(S, p[2 * T + t]), b3 = FloatVector.broadcast(S, p[3 * T + t]);
            FloatVector v0 = FloatVector.fromArray(S, v, r + 0);
            c00 = v0.fma(b0, c00); c10 = v0.fma(b1, c10); c20 = v0.fma(b2, c20); c30 = v0.fma(b3, c30);
            FloatVector v1 = FloatVector.fromArray(S, v, r + 16);
            c01 = v1.fma(b0, c01); c11 = v1.fma(b1, c11); c21 = v1.fma(b2, c21); c31 = v1.fma(b3, c31);
            FloatVector v2 = FloatVector.fromArray(S, v, r + 32);
            c02 = v2.fma(b0, c02); c12 = v2.fma(b1, c12); c22 = v2.fma(b2, c22); c32 = v2.fma(b3, c32);
            FloatVector v3 = FloatVector.fromArray(S, v, r + 48);
            c03 = v3.fma(b0, c03); c13 = v3.fma(b1, c13); c23 = v3.fma(b2, c23); c33 = v3.fma(b3, c33);
            FloatVector v4 = FloatVector.fromArray(S, v, r + 64);
            c04 = v4.fma(b0, c04); c14 = v4.fma(b1, c14); c24 = v4.fma(b2, c24); c34 = v4.fma(b3, c34);
            FloatVector v5 = FloatVector.fromArray(S, v, r + 80);
            c05 = v5.fma(b0, c05); c15 = v5.fma(b1, c15); c25 = v5.fma(b2, c25); c35 = v5.fma(b3, c35);
            FloatVector v6 = FloatVector.fromArray(S, v, r + 96);
            c06 = v6.fma(b0, c06); c16 = v6.fma(b1, c16); c26 = v6.fma(b2, c26); c36 = v6.fma(b3, c36);
            FloatVector v7 = FloatVector.fromArray(S, v, r + 112);
            c07 = v7.fma(b0, c07); c17 = v7.fma(b1, c17); c27 = v7.fma(b2, c27); c37 = v7.fma(b3, c37);
        }
        c00.intoArray(out, o + 0); c01.intoArray(out, o + 16); c02.intoArray(out, o + 32); c03.intoArray(out, o + 48);
        c04.intoArray(out, o + 64); c05.intoArray(out, o + 80); c06.intoArray(out, o + 96); c07.intoArray(out, o + 112);
        c10.intoArray(out, o + 128); c11.intoArray(out, o + 144); c12.intoArray(out, o + 160); c13.intoArray(out, o + 176);
        c14.intoArray(out, o + 192); c15.intoArray(out, o + 208); c16.intoArray(out, o + 224); c17.intoArray(out, o + 240);
        c20.intoArray(out, o + 256); c21.intoArray(out, o + 272); c22.intoArray(out, o + 288); c23.intoArray(out, o + 304);
        c24.intoArray(out, o + 320); c25.intoArray(out, o + 336); c26.intoArray(out, o + 352); c27.intoArray(out, o + 368);
        c30.intoArray(out, o + 384); c31.intoArray(out, o + 400); c32.intoArray(out, o + 416); c33.intoArray(out, o + 432);
        c34.intoArray(out, o + 448); c35.intoArray(out, o + 464); c36.intoArray(out, o + 480); c37.intoArray(out, o + 496);
    }

    /** P·V of one tile in two passes of 64 channels: 4 query vectors × 4 column vectors of accumulators. */
    static void pvHalf(float[] v, int vt, float[] p, float[] a, float[] out, int o) {
        for (int h = 0; h < D; h += 64) {
            FloatVector c00 = FloatVector.fromArray(S, out, o + h + 0).mul(a[0]), c01 = FloatVector.fromArray(S, out, o + h + 16).mul(a[0]);
            FloatVector c02 = FloatVector.fromArray(S, out, o + h + 32).mul(a[0]), c03 = FloatVector.fromArray(S, out, o + h + 48).mul(a[0]);
            FloatVector c10 = FloatVector.fromArray(S, out, o + h + 128).mul(a[1]), c11 = FloatVector.fromArray(S, out, o + h + 144).mul(a[1]);
            FloatVector c12 = FloatVector.fromArray(S, out, o + h + 160).mul(a[1]), c13 = FloatVector.fromArray(S, out, o + h + 176).mul(a[1]);
            FloatVector c20 = FloatVector.fromArray(S, out, o + h + 256).mul(a[2]), c21 = FloatVector.fromArray(S, out, o + h + 272).mul(a[2]);
            FloatVector c22 = FloatVector.fromArray(S, out, o + h + 288).mul(a[2]), c23 = FloatVector.fromArray(S, out, o + h + 304).mul(a[2]);
            FloatVector c30 = FloatVector.fromArray(S, out, o + h + 384).mul(a[3]), c31 = FloatVector.fromArray(S, out, o + h + 400).mul(a[3]);
            FloatVector c32 = FloatVector.fromArray(S, out, o + h + 416).mul(a[3]), c33 = FloatVector.fromArray(S, out, o + h + 432).mul(a[3]);
            for (int t = 0; t < T; t++) {
                int r = vt + t * D + h;
                FloatVector b0 = FloatVector.broadcast(S, p[t]), b1 = FloatVector.broadcast(S, p[T + t]);
                FloatVector b2 = FloatVector.broadcast(S, p[2 * T + t]), b3 = FloatVector.broadcast(S, p[3 * T + t]);
                FloatVector v0 = FloatVector.fromArray(S, v, r + 0);
                c00 = v0.fma(b0, c00); c10 = v0.fma(b1, c10); c20 = v0.fma(b2, c20); c30 = v0.fma(b3, c30);
                FloatVector v1 = FloatVector.fromArray(S, v, r + 16);
                c01 = v1.fma(b0, c01); c11 = v1.fma(b1, c11); c21 = v1.fma(b2, c21); c31 = v1.fma(b3, c31);
                FloatVector v2 = FloatVector.fromArray(S, v, r + 32);
                c02 = v2.fma(b0, c02); c12 = v2.fma(b1, c12); c22 = v2.fma(b2, c22); c32 = v2.fma(b3, c32);
                FloatVector v3 = FloatVector.fromArray(S, v, r + 48);
                c03 = v3.fma(b0, c03); c13 = v3.fma(b1, c13); c23 = v3.fma(b2, c23); c33 = v3.fma(b3, c33);
            }
            c00.intoArray(out, o + h + 0); c01.intoArray(out, o + h + 16); c02.intoArray(out, o + h + 32); c03.intoArray(out, o + h + 48);
            c10.intoArray(out, o + h + 128); c11.intoArray(out, o + h + 144); c12.intoArray(out, o + h + 160); c13.intoArray(out, o + h + 176);
            c20.intoArray(out, o + h + 256); c21.intoArray(out, o + h + 272); c22.intoArray(out, o + h + 288); c23.intoArray(out, o + h + 304);
            c30.intoArray(out, o + h + 384); c31.intoArray(out, o + h + 400); c32.intoArray(out, o + h + 416); c33.intoArray(out, o + h + 432);
        }
    }

    public static void main(String[] args) throws Exception {
        String pv = System.getProperty("pv", "half");
        int rounds, pad;
        try {
            rounds = Integer.parseInt(System.getProperty("rounds", "5"));
            pad = Integer.parseInt(System.getProperty("pad", "12"));
        } catch (NumberFormatException e) {
            rounds = pad = -1;
        }
        if (!pv.equals("half") && !pv.equals("whole") || rounds < 1 || pad < 0 || pad > 1024) {
            System.err.println("DecodeKeyTiles: needs -Dpv=half|whole, -Drounds at least 1 and -Dpad in [0, 1024]");
            System.exit(2);
        }
        Random rnd = new Random(1);
        float[] k = new float[HEADS * KEYS * D + pad], v = new float[HEADS * KEYS * D + pad];
        for (int h = 0; h < HEADS; h++) {
            for (int key = 0; key < KEYS; key++) {
                for (int d = 0; d < D; d++) {
                    k[pad + h * KEYS * D + key / T * T * D + d * T + key % T] = (float) rnd.nextGaussian();
                    v[pad + (h * KEYS + key) * D + d] = (float) rnd.nextGaussian();
                }
            }
        }
        float[] q = new float[HEADS * G * D];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) (rnd.nextGaussian() / Math.sqrt(D));
        }
        float[] out = new float[HEADS * G * D];
        float[] copyFrom = new float[64 << 20], copyTo = new float[64 << 20];
        java.util.Arrays.fill(copyFrom, 1f);
        ExecutorService pool = Executors.newFixedThreadPool(1);
        float[][] ps = {new float[G * T], new float[G * T]}, as = {new float[G], new float[G]};
        System.out.printf("DecodeKeyTiles: f32 rows, K in tiles of %d keys, pad %d floats, pv=%s; H=32 (kv 8) N=%d D=%d, 2 threads%n",
                T, pad, WHOLE ? "whole" : "half", KEYS, D);
        for (int round = 0; round <= rounds; round++) { // round 0 warms up, not printed
            long c0 = System.nanoTime();
            Future<?> f = pool.submit(() -> System.arraycopy(copyFrom, 32 << 20, copyTo, 32 << 20, 32 << 20));
            System.arraycopy(copyFrom, 0, copyTo, 0, 32 << 20);
            f.get();
            double copy = 2.0 * 4 * copyFrom.length / (System.nanoTime() - c0);
            double arith = 8.0 * HEADS * KEYS * D / bothThreads(pool, k, v, q, out, ps, as, pad, 256, KEYS / 256);
            long step = bothThreads(pool, k, v, q, out, ps, as, pad, KEYS, 1);
            double decode = 8.0 * HEADS * KEYS * D / step;
            if (round > 0) {
                System.out.printf("round %d: copy %.1f GB/s, arithmetic in L2 %.1f GB/s, decode %.1f GB/s (%.0f %% of copy, %.2f ms)%n",
                        round, copy, arith, decode, 100 * decode / copy, step / 1e6);
            }
        }
        pool.shutdown();
        double worst = 0;
        for (int g = 0; g < G; g++) {
            double[] sc = new double[KEYS];
            double mx = Double.NEGATIVE_INFINITY, l = 0, big = 0, err = 0;
            double[] ref = new double[D];
            for (int key = 0; key < KEYS; key++) {
                double s = 0;
                for (int d = 0; d < D; d++) {
                    s += (double) q[g * D + d] * k[pad + key / T * T * D + d * T + key % T];
                }
                sc[key] = s;
                mx = Math.max(mx, s);
            }
            for (int key = 0; key < KEYS; key++) {
                double e = Math.exp(sc[key] - mx);
                l += e;
                for (int d = 0; d < D; d++) {
                    ref[d] += e * v[pad + key * D + d];
                }
            }
            for (int d = 0; d < D; d++) {
                big = Math.max(big, Math.abs(ref[d] / l));
                err = Math.max(err, Math.abs(out[g * D + d] - ref[d] / l));
            }
            worst = Math.max(worst, err / big);
        }
        System.out.printf("head 0: largest error relative to the largest output %.1e%n", worst);
        sink = out[0];
    }

    /** Nanoseconds for two threads of 4 KV heads each, {@code reps} times over their first {@code keys} keys. */
    static long bothThreads(ExecutorService pool, float[] k, float[] v, float[] q, float[] out, float[][] ps, float[][] as,
                            int pad, int keys, int reps) throws Exception {
        long t = System.nanoTime();
        Future<?> f = pool.submit(() -> heads(k, v, q, out, ps[1], as[1], pad, HEADS / 2, keys, reps));
        heads(k, v, q, out, ps[0], as[0], pad, 0, keys, reps);
        f.get();
        return System.nanoTime() - t;
    }

    static void heads(float[] k, float[] v, float[] q, float[] out, float[] p, float[] a, int pad, int h0, int keys, int reps) {
        for (int r = 0; r < reps; r++) {
            for (int h = h0; h < h0 + HEADS / 2; h++) {
                head(k, pad + h * KEYS * D, v, pad + h * KEYS * D, q, h * G * D, keys, out, h * G * D, p, a);
            }
        }
    }
}
