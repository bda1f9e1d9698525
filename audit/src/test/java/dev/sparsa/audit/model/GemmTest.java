package dev.sparsa.audit.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Both forms of the matrix product against a plain fp64 loop, on sizes that leave every tail. */
class GemmTest {
    @Test
    void simdAndScalarPanelsMatchFp64() {
        Random r = new Random(5);
        for (int[] s : new int[][] {{7, 13, 37}, {4, 8, 32}, {9, 32, 100}, {33, 17, 64}, {1, 5, 3}}) {
            int n = s[0];
            int k = s[1];
            int m = s[2];
            float[] x = rnd(r, n * k);
            float[] w = rnd(r, k * m);
            float[] b = rnd(r, m);
            float[] simd = new float[n * m];
            float[] scalar = new float[n * m];
            PanamaGemm.panel(x, n, k, w, m, b, simd, 0, m);
            Gemm.scalarPanel(x, n, k, w, m, b, scalar, 0, m);
            float[] both = Gemm.multiply(x, n, k, w, m, b);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    double e = b[j];
                    for (int t = 0; t < k; t++) {
                        e += (double) x[i * k + t] * w[t * m + j];
                    }
                    assertEquals(e, simd[i * m + j], 1e-4, "simd " + n + "x" + k + "x" + m + " at " + i + "," + j);
                    assertEquals(e, scalar[i * m + j], 1e-4, "scalar at " + i + "," + j);
                    assertEquals(e, both[i * m + j], 1e-4, "multiply at " + i + "," + j);
                }
            }
        }
    }

    private static float[] rnd(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }
}
