package dev.sparsa.patterns.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The planner's fast paths against the straightforward ones they replace, bit for bit: {@link
 * SphericalKMeans#normalizeInPlace} (four rows' norms summed side by side) against one row at a
 * time, rows scaled in their packed panels against rows scaled and then packed, k-means' vector
 * argmax and run-wise centroid sums against the plain iteration, and the
 * layout (a merged, causally cut union per combination of clusters, grouped without boxed keys)
 * against the layout built by sorting, boxing and merging whole key lists, reproduced here.
 */
class RoutingFastPathsTest {

    @ParameterizedTest
    @CsvSource({"1, 16", "15, 24", "16, 128", "33, 64", "100, 7", "257, 128"})
    void rowsNormaliseOneAtATime(int n, int d) {
        SplittableRandom rnd = new SplittableRandom(n * 31L + d);
        float[] rows = new float[n * d];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 3));
        }
        Arrays.fill(rows, 0, Math.min(d, rows.length), 0f); // a zero row stays zero
        float[] want = rows.clone();
        for (int i = 0; i < n; i++) { // each row alone: its sum of squares in double, channel by channel
            double norm = 0;
            for (int c = 0; c < d; c++) {
                norm += (double) want[i * d + c] * want[i * d + c];
            }
            double inv = norm > 0 ? 1.0 / Math.sqrt(norm) : 0;
            for (int c = 0; c < d; c++) {
                want[i * d + c] = (float) (want[i * d + c] * inv);
            }
        }
        SphericalKMeans.normalizeInPlace(rows, n, d);
        assertArrayEquals(want, rows);
    }

    /**
     * Rows packed and then scaled in their panels ({@link KeyPanels#ofUnitRows}) against rows scaled
     * one at a time and then packed: the same panels and the same flat unit rows, bit for bit,
     * including a zero row, a partial last panel and a reused array holding old values.
     */
    @ParameterizedTest
    @CsvSource({"1, 16", "15, 24", "16, 128", "33, 64", "100, 7", "257, 128"})
    void panelsScaledInPlaceEqualRowsScaledThenPacked(int n, int d) {
        SplittableRandom rnd = new SplittableRandom(n * 17L + d);
        float[] raw = new float[n * d];
        for (int i = 0; i < raw.length; i++) {
            raw[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 3));
        }
        Arrays.fill(raw, (n / 2) * d, (n / 2) * d + d, 0f); // a zero row stays zero
        float[] want = raw.clone();
        for (int i = 0; i < n; i++) { // each row alone, as in rowsNormaliseOneAtATime
            double norm = 0;
            for (int c = 0; c < d; c++) {
                norm += (double) want[i * d + c] * want[i * d + c];
            }
            double inv = norm > 0 ? 1.0 / Math.sqrt(norm) : 0;
            for (int c = 0; c < d; c++) {
                want[i * d + c] = (float) (want[i * d + c] * inv);
            }
        }
        float[] wantPanels = KeyPanels.of(want, n, d).array();
        float[] reuse = new float[(int) KeyPanels.floatsFor(n, d) + 5];
        Arrays.fill(reuse, Float.NaN); // old values in the reused array
        float[] unit = new float[n * d];
        KeyPanels.RowReader reader = (first, count, dst) -> System.arraycopy(raw, first * d, dst, 0, count * d);
        KeyPanels got = KeyPanels.ofUnitRows(n, d, reader, reuse, unit);
        assertEquals(n, got.size());
        assertArrayEquals(wantPanels, Arrays.copyOf(got.array(), wantPanels.length));
        assertArrayEquals(want, unit);
        assertArrayEquals(wantPanels, KeyPanels.ofUnitRows(n, d, reader, null, null).array());
    }

    /**
     * k-means with the vector running argmax and the centroid sums added a run of rows at a time,
     * against the plain iteration (every row's dot product with every centroid, the first largest
     * kept, each row added to its centroid's sum channel by channel in row order): the same
     * centroids bit for bit, on rows whose neighbours often share a centroid (long runs) and on
     * rows in random order (short runs).
     */
    @ParameterizedTest
    @CsvSource({"300, 16, 4, 3, true", "300, 16, 4, 3, false", "1000, 64, 16, 3, true", "777, 128, 7, 5, false",
        "40, 8, 50, 2, true"})
    void kMeansEqualsThePlainIteration(int n, int d, int k, int iterations, boolean runs) {
        SplittableRandom rnd = new SplittableRandom(n * 7L + d * 3L + k);
        float[] centres = new float[8 * d];
        for (int i = 0; i < centres.length; i++) {
            centres[i] = (float) rnd.nextGaussian();
        }
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++) {
            int c = runs ? (i / 37) % 8 : rnd.nextInt(8); // runs of 37 rows near one centre
            for (int y = 0; y < d; y++) {
                x[i * d + y] = centres[c * d + y] + (float) (0.3 * rnd.nextGaussian());
            }
        }
        float[] unit = SphericalKMeans.normalizeRows(x, n, d);
        float[] want = plainKMeans(unit, n, d, k, iterations, 11);
        assertArrayEquals(want, SphericalKMeans.fit(unit, n, d, k, iterations, 11));
    }

    /**
     * k-means on rows that are exact copies of a few distinct rows, so that initial centroids
     * coincide and scores tie exactly (ties go to the lower centroid), at the routing benchmark's
     * 16 clusters (the four-centroid × four-panel scores of whole steps, their tails by panel pairs
     * and single panels): the same centroids bit for bit as the plain iteration.
     */
    @ParameterizedTest
    @CsvSource({"1000, 64, 16, 3, 5", "777, 128, 16, 4, 9", "300, 16, 13, 2, 3"})
    void kMeansWithTiedScoresEqualsThePlainIteration(int n, int d, int k, int iterations, int distinct) {
        SplittableRandom rnd = new SplittableRandom(n * 5L + d + k);
        float[] base = new float[distinct * d];
        for (int i = 0; i < base.length; i++) {
            base[i] = rnd.nextInt(4) == 0 ? 0f : (float) rnd.nextGaussian();
        }
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++) {
            System.arraycopy(base, rnd.nextInt(distinct) * d, x, i * d, d);
        }
        float[] unit = SphericalKMeans.normalizeRows(x, n, d);
        float[] want = plainKMeans(unit, n, d, k, iterations, 13);
        assertArrayEquals(want, SphericalKMeans.fit(unit, n, d, k, iterations, 13));
    }

    /** The iteration as first written: every score by {@link Vectors#dot}, scalar argmax and sums. */
    private static float[] plainKMeans(float[] x, int n, int d, int k, int iterations, long seed) {
        float[] centroids = new float[k * d];
        int[] init = SphericalKMeans.initialRows(n, k, seed);
        for (int c = 0; c < k; c++) {
            System.arraycopy(x, init[c] * d, centroids, c * d, d);
        }
        for (int it = 0; it < iterations; it++) {
            float[] sums = new float[k * d];
            int[] count = new int[k];
            for (int i = 0; i < n; i++) {
                int best = 0;
                float bestScore = Vectors.dot(x, i, centroids, 0, d);
                for (int c = 1; c < k; c++) {
                    float s = Vectors.dot(x, i, centroids, c, d);
                    if (s > bestScore) {
                        bestScore = s;
                        best = c;
                    }
                }
                count[best]++;
                for (int y = 0; y < d; y++) {
                    sums[best * d + y] += x[i * d + y];
                }
            }
            float[] normalized = SphericalKMeans.normalizeRows(sums, k, d);
            for (int c = 0; c < k; c++) {
                if (count[c] > 0) {
                    System.arraycopy(normalized, c * d, centroids, c * d, d);
                }
            }
        }
        return centroids;
    }

    @ParameterizedTest
    @CsvSource({
        // n, clusters, window, tileRows, causal, seed
        "200, 4, 60, 16, true, 1",
        "200, 4, 60, 16, false, 2",
        "1000, 16, 90, 64, true, 3",
        "1000, 16, 150, 32, true, 4",
        "500, 70, 20, 8, true, 5",
        "64, 3, 64, 16, true, 6",
        "300, 8, 5, 128, false, 7",
    })
    void layoutEqualsTheSortedUnionLayout(int n, int clusters, int window, int tileRows, boolean causal, long seed) {
        AttentionShape shape = new AttentionShape(1, 1, 1, n, n, 16, 16);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(tileRows, 16));
        PlanContext ctx = PlanContext.of(shape, o);
        SplittableRandom rnd = new SplittableRandom(seed);
        int[][] q = new int[clusters][];
        int[][] k = new int[clusters][];
        for (int c = 0; c < clusters; c++) {
            q[c] = pick(rnd, n, Math.min(n, window));
            k[c] = pick(rnd, n, Math.min(n, window));
        }
        HeadLayout want = previousLayout(ctx, q, k);
        HeadLayout got = RoutingAttention.layout(ctx, q, k);
        assertTrue(want.tileCount() > 0);
        assertArrayEquals(want.rowStarts(), got.rowStarts(), "row starts");
        assertArrayEquals(want.rowCounts(), got.rowCounts(), "row counts");
        assertArrayEquals(want.rowListOffsets(), got.rowListOffsets(), "row list offsets");
        assertArrayEquals(want.rowList(), got.rowList(), "row list");
        assertArrayEquals(want.fullOffsets(), got.fullOffsets(), "full offsets");
        assertArrayEquals(want.fullBlocks(), got.fullBlocks(), "full blocks");
        assertArrayEquals(want.partialOffsets(), got.partialOffsets(), "partial offsets");
        assertArrayEquals(want.partialBlocks(), got.partialBlocks(), "partial blocks");
        assertArrayEquals(want.gatherOffsets(), got.gatherOffsets(), "gather offsets");
        assertArrayEquals(want.gatherKeys(), got.gatherKeys(), "gathered keys");
        assertArrayEquals(want.gatherLogWeights(), got.gatherLogWeights(), "gathered weights");
        assertArrayEquals(want.unconditionalOffsets(), got.unconditionalOffsets(), "unconditional offsets");
        assertArrayEquals(want.unconditionalKeys(), got.unconditionalKeys(), "unconditional keys");
        assertEquals(want.pairsAdmitted(), got.pairsAdmitted(), "pairs admitted");
        assertEquals(want.pairsVisited(), got.pairsVisited(), "pairs visited");
    }

    /** {@code m} distinct positions of {@code [0, n)}, ascending. */
    private static int[] pick(SplittableRandom rnd, int n, int m) {
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) {
            perm[i] = i;
        }
        for (int i = 0; i < m; i++) {
            int j = i + rnd.nextInt(n - i);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int[] out = Arrays.copyOf(perm, m);
        Arrays.sort(out);
        return out;
    }

    // the layout as built before the merged union: whole key lists merged per combination (boxed
    // keys in a linked map), each tile's keys cut by a linear scan

    /** The layout of the clusters' query and key members (each ascending). */
    static HeadLayout previousLayout(PlanContext ctx, int[][] qMembers, int[][] kMembers) {
        int nq = ctx.queryLength();
        int[] count = new int[nq];
        for (int[] rows : qMembers) {
            for (int r : rows) {
                count[r]++;
            }
        }
        int tileRows = ctx.geometry().tileRows();
        // a hint of the layout's size (the tiles of single-cluster queries and their keys), so that
        // its lists are not regrown
        long tiles = 0;
        long keys = 0;
        int multi = 0;
        for (int c = 0; c < qMembers.length; c++) {
            int singles = 0;
            for (int r : qMembers[c]) {
                singles += count[r] == 1 ? 1 : 0;
                multi += count[r] > 1 ? 1 : 0;
            }
            long t = (singles + tileRows - 1) / tileRows;
            tiles += t;
            keys += t * kMembers[c].length;
        }
        tiles += (multi + tileRows - 1) / tileRows;
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate())
                .reserve((int) Math.min(tiles, 1 << 24), (int) Math.min(keys, Integer.MAX_VALUE - 8), 0);
        int[] rows = new int[tileRows];
        for (int c = 0; c < qMembers.length; c++) {
            int n = 0;
            for (int r : qMembers[c]) {
                if (count[r] != 1) {
                    continue;
                }
                rows[n++] = r;
                if (n == tileRows) {
                    emit(b, ctx, rows, n, kMembers[c]);
                    n = 0;
                }
            }
            if (n > 0) {
                emit(b, ctx, rows, n, kMembers[c]);
            }
        }
        // queries in several clusters: the queries of one combination of clusters share tiles over
        // the union of those clusters' keys (combinations in order of their first query)
        int[][] clustersOf = new int[nq][];
        int[] fill = new int[nq];
        for (int r = 0; r < nq; r++) {
            if (count[r] > 1) {
                clustersOf[r] = new int[count[r]];
            }
        }
        for (int c = 0; c < qMembers.length; c++) {
            for (int r : qMembers[c]) {
                if (count[r] > 1) {
                    clustersOf[r][fill[r]++] = c; // clusters ascending
                }
            }
        }
        java.util.Map<java.util.List<Integer>, java.util.List<Integer>> byCombination = new java.util.LinkedHashMap<>();
        for (int r = 0; r < nq; r++) {
            if (clustersOf[r] != null) {
                byCombination.computeIfAbsent(Arrays.stream(clustersOf[r]).boxed().toList(), x -> new java.util.ArrayList<>())
                        .add(r);
            }
        }
        for (var e : byCombination.entrySet()) {
            int[] union = union(e.getKey(), kMembers);
            int n = 0;
            for (int r : e.getValue()) {
                rows[n++] = r;
                if (n == tileRows) {
                    emit(b, ctx, rows, n, union);
                    n = 0;
                }
            }
            if (n > 0) {
                emit(b, ctx, rows, n, union);
            }
        }
        return b.build();
    }

    /** The ascending union of the ascending key lists of {@code clusters}. */
    private static int[] union(java.util.List<Integer> clusters, int[][] kMembers) {
        int[] acc = kMembers[clusters.get(0)];
        for (int i = 1; i < clusters.size(); i++) {
            int[] b = kMembers[clusters.get(i)];
            int[] m = new int[acc.length + b.length];
            int x = 0;
            int y = 0;
            int n = 0;
            while (x < acc.length || y < b.length) {
                int v = y >= b.length || (x < acc.length && acc[x] <= b[y]) ? acc[x++] : b[y++];
                if (n == 0 || m[n - 1] != v) {
                    m[n++] = v;
                }
            }
            acc = Arrays.copyOf(m, n);
        }
        return acc;
    }

    /** A tile of the ascending {@code rows[0, n)} over the ascending {@code keys} its last row may see. */
    private static void emit(HeadLayoutBuilder b, PlanContext ctx, int[] rows, int n, int[] keys) {
        HeadLayoutBuilder.Tile t = rows[n - 1] - rows[0] == n - 1 ? b.tile(rows[0], n)
                : b.listedTile(Arrays.copyOf(rows, n));
        long last = Plans.lastVisibleKey(ctx, rows[n - 1]);
        int upTo = 0;
        while (upTo < keys.length && keys[upTo] <= last) {
            upTo++;
        }
        t.gatherAll(keys, 0, upTo);
        t.end();
    }

}
