package dev.sparsa.bench;

/**
 * Non-negative least squares, {@code min ‖A·x − b‖ subject to x ≥ 0}, by Lawson and Hanson's
 * active-set method; the unconstrained sub-problems are solved through the normal equations, which
 * is accurate enough for the few well-scaled columns of a cost-model fit.
 */
final class Nnls {
    private Nnls() {
    }

    /**
     * @param a {@code m × n}, rows of equal length
     * @param b {@code m} targets
     * @return the non-negative {@code x} of length {@code n}
     */
    static double[] solve(double[][] a, double[] b) {
        int m = a.length;
        int n = a[0].length;
        double[] x = new double[n];
        boolean[] passive = new boolean[n];
        double tol = 1e-12;
        for (int outer = 0; outer < 3 * n; outer++) {
            double[] w = gradient(a, b, x);
            int t = -1;
            for (int j = 0; j < n; j++) {
                if (!passive[j] && w[j] > tol && (t < 0 || w[j] > w[t])) {
                    t = j;
                }
            }
            if (t < 0) {
                break;
            }
            passive[t] = true;
            for (int inner = 0; inner < 3 * n; inner++) {
                double[] s = solvePassive(a, b, passive);
                boolean feasible = true;
                for (int j = 0; j < n; j++) {
                    feasible &= !passive[j] || s[j] > 0;
                }
                if (feasible) {
                    x = s;
                    break;
                }
                double alpha = Double.MAX_VALUE;
                for (int j = 0; j < n; j++) {
                    if (passive[j] && s[j] <= 0) {
                        alpha = Math.min(alpha, x[j] / (x[j] - s[j]));
                    }
                }
                for (int j = 0; j < n; j++) {
                    x[j] += alpha * (s[j] - x[j]);
                    if (passive[j] && x[j] <= tol) {
                        passive[j] = false;
                        x[j] = 0;
                    }
                }
            }
        }
        return x;
    }

    /** {@code Aᵀ(b − A·x)}. */
    private static double[] gradient(double[][] a, double[] b, double[] x) {
        int n = x.length;
        double[] w = new double[n];
        for (int i = 0; i < a.length; i++) {
            double r = b[i];
            for (int j = 0; j < n; j++) {
                r -= a[i][j] * x[j];
            }
            for (int j = 0; j < n; j++) {
                w[j] += a[i][j] * r;
            }
        }
        return w;
    }

    /** Least squares on the passive columns (others 0), through the normal equations. */
    private static double[] solvePassive(double[][] a, double[] b, boolean[] passive) {
        int n = passive.length;
        int[] idx = new int[n];
        int k = 0;
        for (int j = 0; j < n; j++) {
            if (passive[j]) {
                idx[k++] = j;
            }
        }
        double[][] g = new double[k][k + 1];
        for (int i = 0; i < a.length; i++) {
            for (int p = 0; p < k; p++) {
                double ap = a[i][idx[p]];
                for (int q = 0; q < k; q++) {
                    g[p][q] += ap * a[i][idx[q]];
                }
                g[p][k] += ap * b[i];
            }
        }
        for (int p = 0; p < k; p++) {
            g[p][p] += 1e-12; // keeps a rank-deficient system solvable
        }
        double[] sol = gauss(g, k);
        double[] s = new double[n];
        for (int p = 0; p < k; p++) {
            s[idx[p]] = sol[p];
        }
        return s;
    }

    private static double[] gauss(double[][] g, int k) {
        for (int c = 0; c < k; c++) {
            int piv = c;
            for (int r = c + 1; r < k; r++) {
                if (Math.abs(g[r][c]) > Math.abs(g[piv][c])) {
                    piv = r;
                }
            }
            double[] tmp = g[c];
            g[c] = g[piv];
            g[piv] = tmp;
            for (int r = c + 1; r < k; r++) {
                double f = g[r][c] / g[c][c];
                for (int q = c; q <= k; q++) {
                    g[r][q] -= f * g[c][q];
                }
            }
        }
        double[] x = new double[k];
        for (int r = k - 1; r >= 0; r--) {
            double sum = g[r][k];
            for (int q = r + 1; q < k; q++) {
                sum -= g[r][q] * x[q];
            }
            x[r] = sum / g[r][r];
        }
        return x;
    }
}
