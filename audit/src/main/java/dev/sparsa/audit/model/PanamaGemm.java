package dev.sparsa.audit.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The SIMD rows of {@link Gemm}: a register tile of 4 rows × 2 vectors of output columns, each
 * weight vector loaded once per 4 rows. Loaded only where {@code jdk.incubator.vector} is readable.
 */
final class PanamaGemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private PanamaGemm() {
    }

    /** Output columns {@code [c0, c1)} of every row. */
    static void panel(float[] x, int n, int k, float[] w, int m, float[] bias, float[] out, int c0, int c1) {
        int j = c0;
        for (; j + 2 * L <= c1; j += 2 * L) {
            int r = 0;
            for (; r + 4 <= n; r += 4) {
                tile4(x, k, w, m, bias, out, r, j);
            }
            for (; r < n; r++) {
                tail(x, k, w, m, bias, out, r, j, j + 2 * L);
            }
        }
        for (int r = 0; r < n && j < c1; r++) {
            tail(x, k, w, m, bias, out, r, j, c1);
        }
    }

    private static void tile4(float[] x, int k, float[] w, int m, float[] bias, float[] out, int r, int j) {
        FloatVector b0 = FloatVector.fromArray(S, bias, j);
        FloatVector b1 = FloatVector.fromArray(S, bias, j + L);
        FloatVector a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
        int x0 = r * k;
        int x1 = x0 + k;
        int x2 = x1 + k;
        int x3 = x2 + k;
        for (int kk = 0; kk < k; kk++) {
            int wo = kk * m + j;
            FloatVector w0 = FloatVector.fromArray(S, w, wo);
            FloatVector w1 = FloatVector.fromArray(S, w, wo + L);
            FloatVector v = FloatVector.broadcast(S, x[x0 + kk]);
            a00 = w0.fma(v, a00);
            a01 = w1.fma(v, a01);
            v = FloatVector.broadcast(S, x[x1 + kk]);
            a10 = w0.fma(v, a10);
            a11 = w1.fma(v, a11);
            v = FloatVector.broadcast(S, x[x2 + kk]);
            a20 = w0.fma(v, a20);
            a21 = w1.fma(v, a21);
            v = FloatVector.broadcast(S, x[x3 + kk]);
            a30 = w0.fma(v, a30);
            a31 = w1.fma(v, a31);
        }
        int o = r * m + j;
        a00.intoArray(out, o);
        a01.intoArray(out, o + L);
        a10.intoArray(out, o + m);
        a11.intoArray(out, o + m + L);
        a20.intoArray(out, o + 2 * m);
        a21.intoArray(out, o + 2 * m + L);
        a30.intoArray(out, o + 3 * m);
        a31.intoArray(out, o + 3 * m + L);
    }

    private static void tail(float[] x, int k, float[] w, int m, float[] bias, float[] out, int r, int j0, int j1) {
        for (int j = j0; j < j1; j++) {
            float s = bias[j];
            for (int kk = 0; kk < k; kk++) {
                s = Math.fma(x[r * k + kk], w[kk * m + j], s);
            }
            out[r * m + j] = s;
        }
    }
}
