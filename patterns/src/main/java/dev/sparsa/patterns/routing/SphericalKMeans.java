package dev.sparsa.patterns.routing;

import dev.sparsa.patterns.support.KeyPanels;
import java.util.SplittableRandom;

/**
 * Spherical k-means on unit vectors, as the Routing Transformer's reference implementation runs it
 * ({@code kmeans_iter} and {@code dists_and_buckets} in github.com/lucidrains/routing-transformer,
 * {@code routing_transformer/routing_transformer.py}): each vector goes to the centroid of largest
 * dot product (ties to the lower centroid), each centroid becomes the normalised sum of its vectors,
 * and a centroid that received none stays where it was. Dot products are f32 fused multiply-add
 * chains over the channels in order; sums are f32 in vector order; norms in double.
 */
public final class SphericalKMeans {
    private SphericalKMeans() {
    }

    /**
     * Rows of {@code x} ({@code [n · d]}) scaled to unit length (a zero row stays zero), as a new array.
     */
    public static float[] normalizeRows(float[] x, int n, int d) {
        float[] out = new float[n * d];
        for (int i = 0; i < n; i++) {
            double norm = 0;
            for (int c = 0; c < d; c++) {
                norm += (double) x[i * d + c] * x[i * d + c];
            }
            double inv = norm > 0 ? 1.0 / Math.sqrt(norm) : 0;
            for (int c = 0; c < d; c++) {
                out[i * d + c] = (float) (x[i * d + c] * inv);
            }
        }
        return out;
    }

    /**
     * The initial centroids: {@code k} distinct rows of {@code x} chosen by a seeded partial
     * Fisher–Yates shuffle of the row indices ({@link SplittableRandom}), in the order drawn; when
     * {@code k > n} the indices repeat cyclically.
     */
    public static int[] initialRows(int n, int k, long seed) {
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) {
            perm[i] = i;
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] out = new int[k];
        for (int j = 0; j < k; j++) {
            if (j < n) {
                int pick = j + rnd.nextInt(n - j);
                int t = perm[j];
                perm[j] = perm[pick];
                perm[pick] = t;
                out[j] = perm[j];
            } else {
                out[j] = out[j % Math.max(1, n)];
            }
        }
        return out;
    }

    /** The centroid of largest dot product for each row of {@code x}. */
    public static int[] assign(float[] x, int n, int d, float[] centroids, int k) {
        KeyPanels panels = KeyPanels.of(centroids, k, d);
        int stride = KeyPanels.paddedLength(k);
        int pass = 64;
        float[] dots = new float[pass * stride];
        int[] out = new int[n];
        for (int r0 = 0; r0 < n; r0 += pass) {
            int rows = Math.min(pass, n - r0);
            panels.dots(x, r0, rows, k, dots, stride);
            for (int i = 0; i < rows; i++) {
                int best = 0;
                for (int c = 1; c < k; c++) {
                    if (dots[i * stride + c] > dots[i * stride + best]) {
                        best = c;
                    }
                }
                out[r0 + i] = best;
            }
        }
        return out;
    }

    /** One iteration: assignment, then each non-empty centroid the normalised sum of its rows (in place). */
    public static void iterate(float[] x, int n, int d, float[] centroids, int k) {
        int[] bucket = assign(x, n, d, centroids, k);
        float[] sums = new float[k * d];
        int[] count = new int[k];
        for (int i = 0; i < n; i++) {
            int c = bucket[i];
            count[c]++;
            for (int y = 0; y < d; y++) {
                sums[c * d + y] += x[i * d + y];
            }
        }
        float[] normalized = normalizeRows(sums, k, d);
        for (int c = 0; c < k; c++) {
            if (count[c] > 0) {
                System.arraycopy(normalized, c * d, centroids, c * d, d);
            }
        }
    }

    /** {@code iterations} iterations from the seeded initial rows: {@code [k · d]} centroids. */
    public static float[] fit(float[] unitRows, int n, int d, int k, int iterations, long seed) {
        float[] centroids = new float[k * d];
        int[] init = initialRows(n, k, seed);
        for (int c = 0; c < k && n > 0; c++) {
            System.arraycopy(unitRows, init[c] * d, centroids, c * d, d);
        }
        for (int it = 0; it < iterations && n > 0; it++) {
            iterate(unitRows, n, d, centroids, k);
        }
        return centroids;
    }
}
