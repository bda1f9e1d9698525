package dev.sparsa.patterns;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Independent plain-Java (double precision) pieces of the estimators' oracles. */
final class Oracles {
    private Oracles() {
    }

    /** A top-k result: the chosen indices (sorted) and the gap between the k-th and (k+1)-th best scores. */
    record Top(int[] chosen, double gap) {
    }

    /** Best {@code k} of the candidate indices by score (ties to the lower index), and the boundary gap. */
    static Top top(double[] scores, List<Integer> candidates, int k) {
        List<Integer> c = new ArrayList<>(candidates);
        c.sort(Comparator.<Integer>comparingDouble(i -> -scores[i]).thenComparingInt(i -> i));
        int m = Math.min(k, c.size());
        int[] chosen = c.subList(0, m).stream().mapToInt(Integer::intValue).sorted().toArray();
        double gap = m < c.size() && m > 0 ? scores[c.get(m - 1)] - scores[c.get(m)] : Double.POSITIVE_INFINITY;
        if (Double.isNaN(gap)) {
            gap = Double.POSITIVE_INFINITY; // both +inf (forced): no boundary there
        }
        return new Top(chosen, gap);
    }

    static double dot(float[] a, int i, float[] b, int j, int d) {
        double s = 0;
        for (int x = 0; x < d; x++) {
            s += (double) a[i * d + x] * b[j * d + x];
        }
        return s;
    }

    /** Softmax of scale·q_row·k over keys [0, n). */
    static double[] softmax(float[] q, int row, float[] k, int d, int n, double scale) {
        double[] p = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            p[j] = scale * dot(q, row, k, j, d);
            max = Math.max(max, p[j]);
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            p[j] = Math.exp(p[j] - max);
            sum += p[j];
        }
        for (int j = 0; j < n; j++) {
            p[j] /= sum;
        }
        return p;
    }

    static boolean contains(int[] sorted, int x) {
        return java.util.Arrays.binarySearch(sorted, x) >= 0;
    }
}
