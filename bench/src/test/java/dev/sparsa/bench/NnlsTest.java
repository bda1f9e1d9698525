package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class NnlsTest {

    @Test
    void recoversNonNegativeCoefficientsExactly() {
        double[] truth = {2, 0, 0.5};
        double[][] a = new double[8][3];
        double[] b = new double[8];
        for (int i = 0; i < 8; i++) {
            a[i] = new double[] {1 + i, (i * 7) % 5, Math.sqrt(i + 1)};
            for (int j = 0; j < 3; j++) {
                b[i] += a[i][j] * truth[j];
            }
        }
        assertArrayEquals(truth, Nnls.solve(a, b), 1e-8);
    }

    @Test
    void clampsWhatUnconstrainedLeastSquaresWouldMakeNegative() {
        // b = x0 - x1 on independent columns: the unconstrained answer has x1 = -1; NNLS sets it to 0
        double[][] a = {{1, 0}, {0, 1}, {1, 1}};
        double[] b = {1, -1, 0};
        double[] x = Nnls.solve(a, b);
        assertEquals(0, x[1], 0);
        // with x1 = 0, the best x0 minimises (x0-1)² + 1 + x0²: x0 = 1/2
        assertEquals(0.5, x[0], 1e-9);
    }
}
