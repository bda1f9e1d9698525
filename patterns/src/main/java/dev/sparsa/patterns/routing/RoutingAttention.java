package dev.sparsa.patterns.routing;

import dev.sparsa.internal.IntList;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * The Routing Transformer's routing attention (Roy et al., "Efficient Content-Based Sparse
 * Attention with Routing Transformers", TACL 2021; the authors' TensorFlow code is
 * github.com/google-research/google-research {@code routing_transformer/utils.py}, whose
 * {@code gather_cluster_attention_items} takes each cluster's {@code attention_window} nearest
 * items; the test ports the PyTorch reimplementation github.com/lucidrains/routing-transformer).
 * Per (batch, query head) slice, with the keys of its KV head:
 * <ol>
 *   <li>queries and keys are scaled to unit length;
 *   <li>the centroids are the caller's ({@code [kvHeads or 1][clusters · headDim]}, unit length
 *       expected) or {@code iterations} of seeded {@link SphericalKMeans} on the unit keys;
 *   <li><b>balanced clusters:</b> each centroid takes the {@code window} queries and, separately,
 *       the {@code window} keys of largest dot product with it (ties to the lower position), so
 *       every cluster holds exactly {@code window} of each (a token may be in several or none);
 *   <li>a query attends the keys of every cluster it is in, under causality, in one softmax over
 *       their union (the references average the per-cluster outputs instead, and add learned
 *       memory keys); a query in no cluster attends nothing (0, LSE −∞).
 * </ol>
 * The layout lists each cluster's queries (those in that cluster only) into tiles that gather the
 * cluster's keys; the queries in the same several clusters share tiles over the union of their keys. Cost: {@code
 * (iterations + 2) · N · clusters · headDim} multiply-adds per slice plus a top-{@code window} per
 * cluster; a caller who sets {@code clusters · window ≈ N} gets density about {@code 1/clusters}.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code clusters} or {@code window} is &lt; 1, {@code
 *     iterations} is negative, or (at plan time) caller centroids do not fit the heads and head
 *     dimension
 */
public final class RoutingAttention extends DataDependentPattern implements EstimatorCost {
    /** Queries scored per step (a multiple of every panel width): 128 KB of panels at 128 channels. */
    private static final int Q_STEP = 256;

    private final int clusters;
    private final int window;
    private final int iterations;
    private final long seed;
    private final float[][] centroids;

    private RoutingAttention(int clusters, int window, int iterations, long seed, float[][] centroids) {
        this.clusters = Checks.atLeast("clusters", clusters, 1);
        this.window = Checks.atLeast("window", window, 1);
        this.iterations = Checks.atLeast("iterations", iterations, 0);
        this.seed = seed;
        this.centroids = centroids;
    }

    /** Centroids from {@code iterations} of seeded spherical k-means on each KV head's keys. */
    public static RoutingAttention kMeans(int clusters, int window, int iterations, long seed) {
        return new RoutingAttention(clusters, window, iterations, seed, null);
    }

    /**
     * Caller-given centroids: {@code centroids[g]} holds {@code clusters · headDim} floats for KV head
     * {@code g}, or one entry for every head.
     */
    public static RoutingAttention withCentroids(float[][] centroids, int clusters, int window) {
        Checks.notNull("centroids", centroids);
        if (centroids.length == 0) {
            throw new IllegalArgumentException("centroids: need at least one set");
        }
        float[][] copy = new float[centroids.length][];
        for (int g = 0; g < centroids.length; g++) {
            copy[g] = Checks.notNull("centroids[" + g + "]", centroids[g]).clone();
        }
        return new RoutingAttention(clusters, window, 0, 0, copy);
    }

    @Override
    public String name() {
        return "routing(" + clusters + " clusters of " + window + (centroids == null ? ", k-means x" + iterations : ", given")
                + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        var s = ctx.shape();
        int d = s.headDim();
        if (centroids != null) {
            if (centroids.length != 1 && centroids.length != s.kvHeads()) {
                throw new IllegalArgumentException("centroids: " + centroids.length + " sets for " + s.kvHeads() + " KV heads");
            }
            for (int g = 0; g < centroids.length; g++) {
                if (centroids[g].length != clusters * d) {
                    throw new IllegalArgumentException("centroids[" + g + "]: " + centroids[g].length + " floats, need clusters "
                            + clusters + " x headDim " + d);
                }
            }
        }
        int kvSlices = s.batch() * s.kvHeads();
        float[][] means = new float[kvSlices][];
        int[][][] kMembers = new int[kvSlices][][];
        int nk = ctx.keyLength();
        int nq = ctx.queryLength();
        Workers pool = Workers.current().forTensors(q, k);
        // KV heads dealt round-robin to the planning workers; each reuses its arrays from one head to the next
        int kvWorkers = Math.max(1, Math.min(kvSlices, pool.parallelism()));
        pool.forEach(kvWorkers, w -> {
            float[] panels = null;
            float[] sim = new float[clusters * KeyPanels.paddedLength(nk)]; // reused: 2 MB at 16 clusters, 32k keys
            for (int i = w; i < kvSlices; i += kvWorkers) {
                int b = i / s.kvHeads();
                int g = i % s.kvHeads();
                // the unit keys, read, packed and scaled in one pass (each panel scaled while in cache)
                KeyPanels packed = KeyPanels.ofUnitRows(nk, d, (first, count, dst) -> {
                    for (int j = 0; j < count; j++) {
                        k.readRow(b, g, first + j, dst, j * d);
                    }
                }, panels, null);
                panels = packed.array();
                means[i] = centroids != null ? centroids[centroids.length == 1 ? 0 : g]
                        : SphericalKMeans.fit(packed, d, clusters, iterations, seed);
                kMembers[i] = members(packed, means[i], sim);
            }
        });
        int slices = s.batch() * s.qHeads();
        HeadLayout[] layouts = new HeadLayout[slices];
        int qWorkers = Math.max(1, Math.min(slices, pool.parallelism()));
        pool.forEach(qWorkers, w -> {
            // the queries are scored a step at a time: read, packed, scaled and scored against the
            // centroids while their panels are in cache (no panels of the whole head are kept)
            float[] panels = null;
            int stride = KeyPanels.paddedLength(nq);
            float[] sim = new float[clusters * stride];
            float[] part = new float[clusters * Q_STEP];
            for (int x = w; x < slices; x += qWorkers) {
                int b = x / s.qHeads();
                int h = x % s.qHeads();
                float[] c = means[b * s.kvHeads() + s.kvHeadOf(h)];
                for (int q0 = 0; q0 < nq; q0 += Q_STEP) {
                    int m = Math.min(Q_STEP, nq - q0);
                    int from = q0;
                    KeyPanels unitQ = KeyPanels.ofUnitRows(m, d, (first, count, dst) -> {
                        for (int j = 0; j < count; j++) {
                            q.readRow(b, h, from + first + j, dst, j * d);
                        }
                    }, panels, null);
                    panels = unitQ.array();
                    unitQ.dots(c, 0, clusters, m, part, Q_STEP);
                    for (int cl = 0; cl < clusters; cl++) {
                        System.arraycopy(part, cl * Q_STEP, sim, cl * stride + q0, m);
                    }
                }
                layouts[x] = layout(ctx, members(sim, nq), kMembers[b * s.kvHeads() + s.kvHeadOf(h)]);
            }
        });
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe(name());
        for (int x = 0; x < slices; x++) {
            plan.slice(x / s.qHeads(), x % s.qHeads(), layouts[x]);
        }
        return plan.build();
    }

    /** Per cluster, the {@code window} rows of {@code unit} ({@code [n · d]}) of largest dot product with its centroid, ascending. */
    public int[][] members(float[] unit, int n, int d, float[] means) {
        return members(KeyPanels.of(unit, n, d), means, new float[clusters * KeyPanels.paddedLength(n)]);
    }

    /**
     * {@link #members(float[], int, int, float[])} of rows already packed; the scores go to {@code
     * sim} ({@code clusters · paddedLength(n)} floats, overwritten).
     */
    private int[][] members(KeyPanels rows, float[] means, float[] sim) {
        int n = rows.size();
        if (n > 0) {
            rows.dots(means, 0, clusters, n, sim, KeyPanels.paddedLength(n));
        }
        return members(sim, n);
    }

    /** Per cluster, the {@code window} of {@code n} rows of largest score in {@code sim} (cluster {@code c}'s at {@code c · paddedLength(n)}), ascending. */
    private int[][] members(float[] sim, int n) {
        int stride = KeyPanels.paddedLength(n);
        int[][] out = new int[clusters][];
        for (int c = 0; c < clusters; c++) {
            out[c] = TopSelect.top(sim, c * stride, n, window, null);
        }
        return out;
    }

    /**
     * The layout of the clusters' query and key members (each ascending): each cluster's queries
     * that are in it only, in tiles of consecutive members over the cluster's keys; then the
     * queries in several clusters, grouped by their combination of clusters (combinations in order
     * of their first query), in tiles over the union of those clusters' keys. A tile gathers the
     * keys its last row may see.
     */
    static HeadLayout layout(PlanContext ctx, int[][] qMembers, int[][] kMembers) {
        int nq = ctx.queryLength();
        int k = qMembers.length;
        int[] count = new int[nq];
        for (int[] rows : qMembers) {
            for (int r : rows) {
                count[r]++;
            }
        }
        int tileRows = ctx.geometry().tileRows();
        int multi = 0;
        for (int c = 0; c < k; c++) {
            for (int r : qMembers[c]) {
                multi += count[r] > 1 ? 1 : 0;
            }
        }
        // queries in several clusters: each one's clusters, ascending, packed one query after another
        int[] start = new int[nq + 1];
        for (int r = 0; r < nq; r++) {
            start[r + 1] = start[r] + (count[r] > 1 ? count[r] : 0);
        }
        int[] clustersOf = new int[start[nq]];
        int[] fill = Arrays.copyOf(start, nq);
        for (int c = 0; c < k; c++) {
            for (int r : qMembers[c]) {
                if (count[r] > 1) {
                    clustersOf[fill[r]++] = c;
                }
            }
        }
        // combinations numbered in order of their first query (the key views the packed lists)
        java.util.HashMap<java.nio.IntBuffer, Integer> ids = new java.util.HashMap<>();
        int[] comboOf = new int[nq];
        int[] firstOf = new int[Math.max(1, multi)]; // a combination's first query
        int[] size = new int[Math.max(1, multi)];
        int combos = 0;
        for (int r = 0; r < nq; r++) {
            if (count[r] > 1) {
                java.nio.IntBuffer key = java.nio.IntBuffer.wrap(clustersOf, start[r], count[r]).slice();
                Integer id = ids.putIfAbsent(key, combos);
                int x = id == null ? combos++ : id;
                if (id == null) {
                    firstOf[x] = r;
                }
                comboOf[r] = x;
                size[x]++;
            }
        }
        // the queries of each combination, ascending (a counting sort by combination)
        int[] at = new int[combos + 1];
        for (int x = 0; x < combos; x++) {
            at[x + 1] = at[x] + size[x];
        }
        int[] grouped = new int[at[combos]];
        int[] put = Arrays.copyOf(at, combos);
        for (int r = 0; r < nq; r++) {
            if (count[r] > 1) {
                grouped[put[comboOf[r]]++] = r;
            }
        }
        // each combination's union of its clusters' keys (up to its last query's last visible key),
        // packed one after another
        Union u = new Union();
        IntList unions = new IntList();
        long bound = 0; // the unions' total length at most: every key of every cluster of every combination
        for (int x = 0; x < combos; x++) {
            int r0 = firstOf[x];
            for (int i = start[r0]; i < start[r0] + count[r0]; i++) {
                bound += kMembers[clustersOf[i]].length;
            }
        }
        unions.reserve((int) Math.min(bound, Integer.MAX_VALUE - 8)); // one allocation, no regrowth
        int[] unionAt = new int[combos + 1];
        for (int x = 0; x < combos; x++) {
            int r0 = firstOf[x];
            int lastRow = grouped[at[x + 1] - 1];
            int len = u.of(clustersOf, start[r0], count[r0], kMembers, Plans.lastVisibleKey(ctx, lastRow));
            unions.addAll(u.keys, 0, len);
            unionAt[x + 1] = unions.size();
        }
        int[] unionKeys = unions.array();
        // two walks over the same tiles: the first counts them, their gathered keys and listed rows,
        // so that the second builds the layout into lists of their final size (no regrowth, no copy)
        Tiles t = new Tiles(ctx);
        int[] rows = new int[tileRows];
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                t.start();
            }
            // each cluster's queries that are in it only, in tiles over the cluster's keys
            for (int c = 0; c < k; c++) {
                int n = 0;
                for (int r : qMembers[c]) {
                    if (count[r] != 1) {
                        continue;
                    }
                    rows[n++] = r;
                    if (n == tileRows) {
                        t.add(rows, n, kMembers[c], 0, kMembers[c].length);
                        n = 0;
                    }
                }
                if (n > 0) {
                    t.add(rows, n, kMembers[c], 0, kMembers[c].length);
                }
            }
            // each combination's queries, in tiles over its union
            for (int x = 0; x < combos; x++) {
                int n = 0;
                for (int i = at[x]; i < at[x + 1]; i++) {
                    rows[n++] = grouped[i];
                    if (n == tileRows) {
                        t.add(rows, n, unionKeys, unionAt[x], unionAt[x + 1]);
                        n = 0;
                    }
                }
                if (n > 0) {
                    t.add(rows, n, unionKeys, unionAt[x], unionAt[x + 1]);
                }
            }
        }
        return t.b.build();
    }

    /**
     * A head's tiles: counted (tiles, gathered keys, listed rows) until {@link #start()}, then
     * built into a layout reserved to exactly those counts.
     */
    private static final class Tiles {
        private final PlanContext ctx;
        private HeadLayoutBuilder b;
        private long tiles;
        private long keys;
        private long listedRows;

        Tiles(PlanContext ctx) {
            this.ctx = ctx;
        }

        /** Starts the layout, its lists reserved to the counts so far. */
        void start() {
            b = HeadLayout.builder(ctx, ctx.basePredicate())
                    .reserve((int) Math.min(tiles, Integer.MAX_VALUE - 8), (int) Math.min(keys, Integer.MAX_VALUE - 8), 0)
                    .reserveRowsAndBlocks((int) Math.min(listedRows, Integer.MAX_VALUE - 8), 0);
        }

        /**
         * A tile of the ascending {@code rows[0, n)} over the keys of the ascending
         * {@code keys[from, to)} its last row may see: counted, or added to the layout once started.
         */
        void add(int[] rows, int n, int[] keys, int from, int to) {
            int end = from + below(keys, from, to, Plans.lastVisibleKey(ctx, rows[n - 1]));
            boolean contiguous = rows[n - 1] - rows[0] == n - 1;
            if (b == null) {
                tiles++;
                this.keys += end - from;
                listedRows += contiguous ? 0 : n;
                return;
            }
            HeadLayoutBuilder.Tile t = contiguous ? b.tile(rows[0], n) : b.listedTile(rows, 0, n);
            t.gatherAll(keys, from, end);
            t.end();
        }
    }

    /** The ascending union of ascending key lists, up to a limit, in reused arrays. */
    static final class Union {
        int[] keys = new int[0];
        private int[] spare = new int[0];

        /**
         * The ascending union of the keys at most {@code limit} of {@code kMembers[c]} for the clusters
         * {@code c} in {@code clusters[from, from + n)}, written to {@link #keys}; returns its length.
         */
        int of(int[] clusters, int from, int n, int[][] kMembers, long limit) {
            int[] first = kMembers[clusters[from]];
            int len = below(first, first.length, limit);
            if (keys.length < len) {
                keys = new int[Math.max(len, 2 * keys.length)];
            }
            System.arraycopy(first, 0, keys, 0, len);
            for (int i = 1; i < n; i++) {
                int[] other = kMembers[clusters[from + i]];
                int bl = below(other, other.length, limit);
                if (spare.length < len + bl) {
                    spare = new int[Math.max(len + bl, 2 * spare.length)];
                }
                int[] a = keys;
                int[] m = spare;
                int x = 0;
                int y = 0;
                int o = 0;
                while (x < len && y < bl) {
                    int va = a[x];
                    int vb = other[y];
                    m[o++] = va <= vb ? va : vb;
                    x += va <= vb ? 1 : 0;
                    y += vb <= va ? 1 : 0;
                }
                while (x < len) {
                    m[o++] = a[x++];
                }
                while (y < bl) {
                    m[o++] = other[y++];
                }
                spare = a;
                keys = m;
                len = o;
            }
            return len;
        }
    }

    /** How many of the ascending {@code keys[0, n)} are at most {@code limit}. */
    private static int below(int[] keys, int n, long limit) {
        return below(keys, 0, n, limit);
    }

    /** How many of the ascending {@code keys[from, to)} are at most {@code limit}. */
    private static int below(int[] keys, int from, int to, long limit) {
        int lo = from;
        int hi = to;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] <= limit) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo - from;
    }

    /** Clustering and routing: {@code ((iterations + 1)·Nk + Nq) · clusters · headDim} per slice. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        int it = centroids == null ? iterations : 0;
        return (double) ctx.shape().slices() * ((it + 1.0) * ctx.keyLength() + ctx.queryLength()) * clusters
                * ctx.shape().headDim();
    }

    /**
     * k-means on the keys (assignments and centroid updates) and the cluster sort, which its multiply-adds undercount: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch"): the union with a 64-key window measured 1.19 of its estimate at 4.0, N 4096, on 2026-12-03, commit 17d89b4
     * (docs/perf-data/2026-12-03-17d89b4-epyc2vcpu-planning-cost-calibration.txt).
     */
    @Override
    public double costPerMac() {
        return 4.6;
    }
}
