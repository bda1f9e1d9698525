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
    /** Output columns per parallel task: the weight panel a task reads stays in cache over all rows. */
    private static final int COLS = 64;

    private Gemm() {
    }

    static float[] multiply(float[] x, int n, int k, float[] w, int m, float[] bias) {
        float[] out = new float[n * m];
        int tasks = (m + COLS - 1) / COLS;
        IntStream.range(0, tasks).parallel().forEach(t -> {
            int c0 = t * COLS;
            int c1 = Math.min(m, c0 + COLS);
            if (SIMD) {
                PanamaGemm.panel(x, n, k, w, m, bias, out, c0, c1);
            } else {
                scalarPanel(x, n, k, w, m, bias, out, c0, c1);
            }
        });
        return out;
    }

    static void scalarPanel(float[] x, int n, int k, float[] w, int m, float[] bias, float[] out, int c0, int c1) {
        for (int r = 0; r < n; r++) {
            int o = r * m;
            System.arraycopy(bias, c0, out, o + c0, c1 - c0);
            for (int kk = 0; kk < k; kk++) {
                float a = x[r * k + kk];
                int wo = kk * m;
                for (int j = c0; j < c1; j++) {
                    out[o + j] += a * w[wo + j];
                }
            }
        }
    }
}
