package dev.sparsa.patterns.routing;

import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.ScoringProvider;
import dev.sparsa.patterns.support.ScoringSupport;
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
    private static final ScoringSupport KERNELS = ScoringProvider.get();

    private SphericalKMeans() {
    }

    /**
     * Rows of {@code x} ({@code [n · d]}) scaled to unit length (a zero row stays zero), as a new array.
     */
    public static float[] normalizeRows(float[] x, int n, int d) {
        float[] out = java.util.Arrays.copyOf(x, n * d);
        normalizeInPlace(out, n, d);
        return out;
    }

    /**
     * The first {@code n} rows of {@code x} scaled to unit length in place, each as {@link
     * #normalizeRows} scales it: the sum of squares in double in channel order, each value times
     * {@code 1/sqrt} of it in double, rounded to f32 (a zero row stays zero).
     */
    public static void normalizeInPlace(float[] x, int n, int d) {
        int i = 0;
        // four rows at a time: four independent sums (each in channel order, as one row alone) keep
        // the adder busy instead of waiting on one chain
        for (; i + 3 < n; i += 4) {
            int a = i * d;
            int b = a + d;
            int c2 = b + d;
            int e = c2 + d;
            double na = 0;
            double nb = 0;
            double nc = 0;
            double ne = 0;
            for (int c = 0; c < d; c++) {
                na += (double) x[a + c] * x[a + c];
                nb += (double) x[b + c] * x[b + c];
                nc += (double) x[c2 + c] * x[c2 + c];
                ne += (double) x[e + c] * x[e + c];
            }
            scaleRow(x, a, d, na);
            scaleRow(x, b, d, nb);
            scaleRow(x, c2, d, nc);
            scaleRow(x, e, d, ne);
        }
        for (; i < n; i++) {
            double norm = 0;
            for (int c = 0; c < d; c++) {
                norm += (double) x[i * d + c] * x[i * d + c];
            }
            scaleRow(x, i * d, d, norm);
        }
    }

    /** {@code x[at, at + d)} times {@code 1/sqrt(norm)} in double, rounded to f32; zero when the norm is 0. */
    private static void scaleRow(float[] x, int at, int d, double norm) {
        double inv = norm > 0 ? 1.0 / Math.sqrt(norm) : 0;
        for (int c = 0; c < d; c++) {
            x[at + c] = (float) (x[at + c] * inv);
        }
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

    /** Keys per step of an iteration: their panels (128 KB at 128 channels) stay in cache between the scores and the sums. */
    private static final int STEP = 256;

    /**
     * One iteration: assignment, then each non-empty centroid the normalised sum of its rows (in
     * place). Each centroid's sum adds its rows in ascending order, f32 per channel, as the
     * reference does. The iteration goes over the packed rows once, {@value #STEP} at a time: their
     * scores against every centroid, the largest kept ({@link ScoringSupport#keepGreater}), then the
     * same rows, laid out flat again from their panels while those are in cache ({@link
     * KeyPanels#rows}), added to their centroids' sums a run of consecutive rows of one centroid at
     * a time ({@link ScoringSupport#addRows}, each channel's sum in a vector lane): the same
     * additions in the same order as one row after another.
     */
    static void iterate(KeyPanels packed, int d, float[] centroids, int k) {
        int n = packed.size();
        float[] sums = new float[k * d];
        int[] count = new int[k];
        int stride = KeyPanels.paddedLength(STEP);
        float[] sim = new float[k * stride];
        float[] best = new float[STEP];
        int[] bucket = new int[STEP];
        float[] rows = new float[stride * d];
        for (int k0 = 0; k0 < n; k0 += STEP) {
            int m = Math.min(STEP, n - k0);
            packed.dotsFrom(centroids, 0, k, k0, m, sim, stride);
            System.arraycopy(sim, 0, best, 0, m);
            java.util.Arrays.fill(bucket, 0);
            for (int c = 1; c < k; c++) {
                KERNELS.keepGreater(sim, c * stride, m, best, bucket, c); // strictly greater: ties keep the lower centroid
            }
            packed.rows(k0, m, rows);
            for (int i = 0; i < m;) {
                int c = bucket[i];
                int end = i + 1;
                while (end < m && bucket[end] == c) {
                    end++;
                }
                count[c] += end - i;
                KERNELS.addRows(rows, i * d, end - i, d, sums, c * d);
                i = end;
            }
        }
        float[] normalized = normalizeRows(sums, k, d);
        for (int c = 0; c < k; c++) {
            if (count[c] > 0) {
                System.arraycopy(normalized, c * d, centroids, c * d, d);
            }
        }
    }

    /** {@code iterations} iterations from the seeded initial rows of the packed unit rows: {@code [k · d]} centroids. */
    public static float[] fit(KeyPanels packed, int d, int k, int iterations, long seed) {
        int n = packed.size();
        float[] centroids = new float[k * d];
        int[] init = initialRows(n, k, seed);
        for (int c = 0; c < k && n > 0; c++) {
            for (int x = 0; x < d; x++) {
                centroids[c * d + x] = packed.get(init[c], x);
            }
        }
        for (int it = 0; it < iterations && n > 0; it++) {
            iterate(packed, d, centroids, k);
        }
        return centroids;
    }

    /** {@code iterations} iterations from the seeded initial rows: {@code [k · d]} centroids. */
    public static float[] fit(float[] unitRows, int n, int d, int k, int iterations, long seed) {
        return fit(KeyPanels.of(unitRows, n, d), d, k, iterations, seed);
    }
}
