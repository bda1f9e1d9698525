package dev.sparsa.audit.model;

import java.util.stream.IntStream;

/**
 * {@code out[n, m] = x[n, k] · w[k, m] + bias[m]}, row-major f32, rows split over the common pool.
 * The SIMD form ({@link PanamaGemm}) runs where {@code jdk.incubator.vector} is readable; a plain
 * loop that the JIT vectorizes runs elsewhere. The encoder's matrix products are the bulk of a
 * forward pass, not its attention.
 */
final class Gemm {
    private static final boolean SIMD = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    /** Rows per parallel task. */
    private static final int ROWS = 16;

    private Gemm() {
    }

    static float[] multiply(float[] x, int n, int k, float[] w, int m, float[] bias) {
        float[] out = new float[n * m];
        int tasks = (n + ROWS - 1) / ROWS;
        IntStream.range(0, tasks).parallel().forEach(t -> {
            int r0 = t * ROWS;
            int r1 = Math.min(n, r0 + ROWS);
            if (SIMD) {
                PanamaGemm.rows(x, k, w, m, bias, out, r0, r1);
            } else {
                scalarRows(x, k, w, m, bias, out, r0, r1);
            }
        });
        return out;
    }

    static void scalarRows(float[] x, int k, float[] w, int m, float[] bias, float[] out, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            int o = r * m;
            System.arraycopy(bias, 0, out, o, m);
            for (int kk = 0; kk < k; kk++) {
                float a = x[r * k + kk];
                int wo = kk * m;
                for (int j = 0; j < m; j++) {
                    out[o + j] += a * w[wo + j];
                }
            }
        }
    }
}
