package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.routing.RoutingAttention;
import dev.sparsa.patterns.routing.SphericalKMeans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Routing attention against a port of the Routing Transformer reimplementation
 * github.com/lucidrains/routing-transformer, file {@code routing_transformer/routing_transformer.py},
 * commit 3f6c461a036e98dbae7e70c623d1c0e0616ef82a: {@code kmeans_iter} (argmax buckets, normalised
 * sums, empty clusters kept), {@code dists_and_buckets} and {@code distribution} (each cluster's
 * top-{@code window} tokens), on unit queries and keys, in double precision from the same initial
 * rows. Every cluster's members must be the reference's, and a query's keys the union of its
 * clusters' keys under causality.
 */
class RoutingAttentionTest {

    static double[][] kmeansIter(double[][] x, double[][] means) {
        int k = means.length;
        int d = x[0].length;
        double[][] sums = new double[k][d];
        int[] bins = new int[k];
        for (double[] row : x) {
            int best = 0;
            double bestDot = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < k; c++) {
                double dot = 0;
                for (int y = 0; y < d; y++) {
                    dot += row[y] * means[c][y];
                }
                if (dot > bestDot) {
                    bestDot = dot;
                    best = c;
                }
            }
            bins[best]++;
            for (int y = 0; y < d; y++) {
                sums[best][y] += row[y];
            }
        }
        double[][] out = new double[k][];
        for (int c = 0; c < k; c++) {
            double norm = Math.sqrt(Arrays.stream(sums[c]).map(v -> v * v).sum());
            final double inv = 1 / Math.max(norm, 1e-12);
            out[c] = bins[c] == 0 ? means[c] : Arrays.stream(sums[c]).map(v -> v * inv).toArray();
        }
        return out;
    }

    /** distribution(dists, window): per cluster the window tokens of largest similarity, ascending. */
    static int[][] distribution(double[][] x, double[][] means, int window) {
        int[][] out = new int[means.length][];
        for (int c = 0; c < means.length; c++) {
            double[] sim = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                for (int y = 0; y < x[i].length; y++) {
                    sim[i] += x[i][y] * means[c][y];
                }
            }
            Integer[] order = new Integer[x.length];
            for (int i = 0; i < x.length; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> Double.compare(sim[b], sim[a]));
            out[c] = Arrays.stream(order).limit(window).mapToInt(Integer::intValue).sorted().toArray();
        }
        return out;
    }

    private static double[][] asDouble(float[] flat, int n, int d) {
        double[][] a = new double[n][d];
        for (int i = 0; i < n; i++) {
            for (int y = 0; y < d; y++) {
                a[i][y] = flat[i * d + y];
            }
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({
        // n, qHeads, kvHeads, dim, clusters, window, iterations, tileRows, blockCols
        "120, 2, 1, 16, 4, 30, 3, 16, 16",
        "100, 2, 2, 24, 6, 20, 5, 8, 24",
        "64, 1, 1, 16, 3, 40, 0, 16, 8",
        // longer than one step of k-means and of the queries' scoring (256 rows), not a multiple of it
        "600, 2, 1, 32, 8, 90, 3, 32, 32",
    })
    void equalsTheReferenceRouting(int n, int qHeads, int kvHeads, int dim, int clusters, int window, int iterations,
                                   int rows, int cols) {
        AttentionShape shape = new AttentionShape(1, qHeads, kvHeads, n, n, dim, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(rows, cols));
        Problems.Qkv x = Problems.qkv(n + clusters, shape, DType.F32, Layout.BHSD);
        long seed = 17;
        RoutingAttention routing = RoutingAttention.kMeans(clusters, window, iterations, seed);
        SparsePlan plan = routing.plan(PlanContext.of(shape, o), x.q(), x.k());
        boolean[][][] want = new boolean[qHeads][n][n];
        for (int g = 0; g < kvHeads; g++) {
            float[] unitK = SphericalKMeans.normalizeRows(Vectors.rows(x.k(), 0, g), n, dim);
            double[][] keys = asDouble(unitK, n, dim);
            int[] init = SphericalKMeans.initialRows(n, clusters, seed);
            double[][] means = new double[clusters][];
            for (int c = 0; c < clusters; c++) {
                means[c] = keys[init[c]].clone();
            }
            for (int it = 0; it < iterations; it++) {
                means = kmeansIter(keys, means);
            }
            int[][] kMembers = distribution(keys, means, window);
            float[] ours = SphericalKMeans.fit(unitK, n, dim, clusters, iterations, seed);
            assertArrayEquals(kMembers[0], routing.members(unitK, n, dim, ours)[0], "key members of cluster 0");
            for (int h = g * qHeads / kvHeads; h < (g + 1) * qHeads / kvHeads; h++) {
                float[] unitQ = SphericalKMeans.normalizeRows(Vectors.rows(x.q(), 0, h), n, dim);
                int[][] qMembers = distribution(asDouble(unitQ, n, dim), means, window);
                int[][] ourQ = routing.members(unitQ, n, dim, ours);
                for (int c = 0; c < clusters; c++) {
                    assertArrayEquals(qMembers[c], ourQ[c], "query members of cluster " + c + ", head " + h);
                    assertEquals(Math.min(window, n), qMembers[c].length, "balanced clusters");
                    for (int r : qMembers[c]) {
                        for (int key : kMembers[c]) {
                            want[h][r][key] |= key <= r;
                        }
                    }
                }
            }
        }
        Definitions.assertTokenSet(plan, (b, h, r, key) -> want[h][r][key], routing.name());
    }

    @Test
    void callerCentroidsMustFitTheHeads() {
        AttentionShape shape = new AttentionShape(1, 2, 2, 32, 32, 8, 8);
        Problems.Qkv x = Problems.qkv(1, shape, DType.F32, Layout.BHSD);
        PlanContext ctx = PlanContext.of(shape, Options.causalMask().withGeometry(new TileGeometry(8, 8)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RoutingAttention.withCentroids(new float[][] {new float[15]}, 2, 8).plan(ctx, x.q(), x.k()));
        assertTrue(e.getMessage().contains("centroids[0]: 15 floats"), e.getMessage());
        float[] c = new float[16];
        c[0] = 1;
        c[9] = 1;
        SparsePlan plan = RoutingAttention.withCentroids(new float[][] {c}, 2, 16).plan(ctx, x.q(), x.k());
        assertTrue(plan.pairsAdmitted() > 0);
    }
}
