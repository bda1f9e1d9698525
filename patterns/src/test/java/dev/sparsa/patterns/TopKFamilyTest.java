package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Top-k selections against independent double-precision oracles. Inputs are random f32 values, so
 * exact ties do not occur; a row (or tile) whose k-th and (k+1)-th oracle scores are closer than a
 * margin (1e-3 for dot products, 1e-7 for summed probabilities) is not compared, because f32 and f64
 * could order it differently; each test asserts that at least 80 % of the rows were compared.
 */
class TopKFamilyTest {

    /** Oracle of one row: its chosen keys and boundary gap (null when the row is not compared). */
    @FunctionalInterface
    interface RowOracle {
        Oracles.Top select(int b, int h, int row);
    }

    private static List<Integer> candidates(PlanContext ctx, int row, int sinks, int window) {
        List<Integer> c = new ArrayList<>();
        long p = (long) row + ctx.queryOffset();
        for (int k = 0; k < ctx.keyLength(); k++) {
            boolean forced = k < sinks || (p - k >= 0 && p - k < window);
            if (causalOk(ctx, row, k) && !forced) {
                c.add(k);
            }
        }
        return c;
    }

    private static TreeSet<Integer> forced(PlanContext ctx, int row, int sinks, int window) {
        TreeSet<Integer> s = new TreeSet<>();
        long p = (long) row + ctx.queryOffset();
        for (int k = 0; k < ctx.keyLength(); k++) {
            if (causalOk(ctx, row, k) && (k < sinks || (p - k >= 0 && p - k < window))) {
                s.add(k);
            }
        }
        return s;
    }

    /** Compares every row whose oracle gap exceeds {@code margin}: plan keys = forced ∪ chosen. */
    private static void check(SparsePlan plan, int sinks, int window, double margin, RowOracle oracle, String what) {
        PlanContext ctx = plan.context();
        int compared = 0;
        int total = 0;
        for (int b = 0; b < ctx.shape().batch(); b++) {
            for (int h = 0; h < ctx.shape().qHeads(); h++) {
                int[][] got = TokenSets.keys(plan, b, h);
                for (int r = 0; r < ctx.queryLength(); r++) {
                    Oracles.Top top = oracle.select(b, h, r);
                    total++;
                    if (top.gap() <= margin) {
                        continue;
                    }
                    compared++;
                    TreeSet<Integer> want = forced(ctx, r, sinks, window);
                    for (int k : top.chosen()) {
                        if (causalOk(ctx, r, k)) {
                            want.add(k);
                        }
                    }
                    assertArrayEquals(want.stream().mapToInt(Integer::intValue).toArray(), got[r],
                            what + " slice (" + b + ", " + h + ") row " + r + " in " + ctx);
                }
            }
        }
        assertTrue(compared >= 0.8 * total, what + ": compared only " + compared + " of " + total + " rows");
    }

    private static Problems.Qkv data(PlanContext ctx, long seed) {
        return Problems.qkv(seed, ctx.shape(), DType.F32, Layout.BHSD);
    }

    @Test
    void exactTopKPerQuery() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] p : new int[][] {{5, 0, 0}, {3, 2, 4}, {0, 1, 3}, {1000, 0, 0}}) {
                int kk = p[0], s = p[1], w = p[2];
                Problems.Qkv qkv = data(ctx, 11);
                SparsePlan plan = Patterns.topK(kk, s, w).plan(ctx, qkv.q(), qkv.k());
                int d = ctx.shape().headDim();
                check(plan, s, w, 1e-3, (b, h, r) -> {
                    float[] q = Vectors.rows(qkv.q(), b, h);
                    float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                    double[] sc = new double[ctx.keyLength()];
                    for (int key = 0; key < sc.length; key++) {
                        sc[key] = Oracles.dot(q, r, k, key, d);
                    }
                    return Oracles.top(sc, candidates(ctx, r, s, w), kk);
                }, "topK " + java.util.Arrays.toString(p));
            }
        }
    }

    @Test
    void topKPerQueryBlockPooledAndExactMass() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (boolean exact : new boolean[] {false, true}) {
                int kk = 6, s = 2, w = 3;
                Problems.Qkv qkv = data(ctx, 21);
                Pattern pat = exact ? Patterns.topKPerQueryBlockExact(kk, s, w) : Patterns.topKPerQueryBlock(kk, s, w);
                SparsePlan plan = pat.plan(ctx, qkv.q(), qkv.k());
                int d = ctx.shape().headDim();
                int rows = ctx.geometry().tileRows();
                double scale = 1 / Math.sqrt(d);
                check(plan, s, w, 1e-7, (b, h, r) -> {
                    float[] q = Vectors.rows(qkv.q(), b, h);
                    float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                    int t = r / rows;
                    int r0 = t * rows;
                    int r1 = Math.min(ctx.queryLength(), r0 + rows);
                    long lastKey = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) r1 - 1 + ctx.queryOffset()) : ctx.keyLength() - 1;
                    int n = (int) lastKey + 1;
                    double[] sc = new double[ctx.keyLength()];
                    if (n <= 0) {
                        return new Oracles.Top(new int[0], Double.POSITIVE_INFINITY);
                    }
                    if (!exact) {
                        float[] mean = new float[d];
                        double[] m = new double[d];
                        for (int rr = r0; rr < r1; rr++) {
                            for (int x = 0; x < d; x++) {
                                m[x] += q[rr * d + x];
                            }
                        }
                        for (int x = 0; x < d; x++) {
                            mean[x] = (float) (m[x] / (r1 - r0));
                        }
                        double[] pr = Oracles.softmax(mean, 0, k, d, n, scale);
                        System.arraycopy(pr, 0, sc, 0, n);
                    } else {
                        for (int rr = r0; rr < r1; rr++) {
                            long lk = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) rr + ctx.queryOffset()) : ctx.keyLength() - 1;
                            if (lk < 0) {
                                continue;
                            }
                            double[] pr = Oracles.softmax(q, rr, k, d, (int) lk + 1, scale);
                            for (int j = 0; j < pr.length; j++) {
                                sc[j] += pr[j];
                            }
                        }
                    }
                    long pLo = (long) r0 + ctx.queryOffset();
                    long pHi = (long) r1 - 1 + ctx.queryOffset();
                    List<Integer> cand = new ArrayList<>();
                    for (int key = 0; key < n; key++) {
                        boolean forcedForAll = key < s || (pLo - key >= 0 && pHi - key < w);
                        if (!forcedForAll) {
                            cand.add(key);
                        }
                    }
                    return Oracles.top(sc, cand, kk);
                }, (exact ? "exact" : "pooled") + " per-block top-k");
            }
        }
    }

    @Test
    void questDoubleSparsityAndTokenSelect() {
        for (PlanContext ctx : Definitions.sweep()) {
            int d = ctx.shape().headDim();
            Problems.Qkv qkv = data(ctx, 13);
            int page = 8;
            int pages = 3; // a budget of 24 tokens: the last visible page and the 2 best earlier ones
            SparsePlan quest = Patterns.quest(page, pages * page, 1, 2).plan(ctx, qkv.q(), qkv.k());
            check(quest, 1, 2, 1e-3, (b, h, r) -> {
                float[] q = Vectors.rows(qkv.q(), b, h);
                float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                long lastKey = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) r + ctx.queryOffset()) : ctx.keyLength() - 1;
                if (lastKey < 0) {
                    return new Oracles.Top(new int[0], Double.POSITIVE_INFINITY);
                }
                int lastPage = (int) (lastKey / page);
                double[] bound = new double[lastPage + 1];
                List<Integer> cand = new ArrayList<>();
                for (int pg = 0; pg < lastPage; pg++) {
                    cand.add(pg);
                    for (int x = 0; x < d; x++) {
                        double lo = Double.POSITIVE_INFINITY;
                        double hi = Double.NEGATIVE_INFINITY;
                        for (int key = pg * page; key < Math.min(ctx.keyLength(), (pg + 1) * page); key++) {
                            lo = Math.min(lo, k[key * d + x]);
                            hi = Math.max(hi, k[key * d + x]);
                        }
                        bound[pg] += Math.max(q[r * d + x] * lo, q[r * d + x] * hi);
                    }
                }
                Oracles.Top top = lastPage + 1 <= pages ? new Oracles.Top(cand.stream().mapToInt(i -> i).toArray(),
                        Double.POSITIVE_INFINITY) : Oracles.top(bound, cand, pages - 1);
                int[] keys = java.util.stream.IntStream.concat(java.util.Arrays.stream(top.chosen()), java.util.stream.IntStream.of(lastPage))
                        .flatMap(pg -> java.util.stream.IntStream.range(pg * page, (pg + 1) * page)).filter(key -> key <= lastKey).toArray();
                return new Oracles.Top(keys, top.gap());
            }, "quest");

            int[] channels = {0, 3, 5, 6, 11};
            SparsePlan ds = Patterns.doubleSparsity(channels, 4, 0, 2).plan(ctx, qkv.q(), qkv.k());
            check(ds, 0, 2, 1e-3, (b, h, r) -> {
                float[] q = Vectors.rows(qkv.q(), b, h);
                float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                double[] sc = new double[ctx.keyLength()];
                for (int key = 0; key < sc.length; key++) {
                    for (int c : channels) {
                        sc[key] += (double) q[r * d + c] * k[key * d + c];
                    }
                }
                return Oracles.top(sc, candidates(ctx, r, 0, 2), 4);
            }, "double sparsity");

            SparsePlan ts = Patterns.tokenSelect(5, 1, 0).plan(ctx, qkv.q(), qkv.k());
            check(ts, 1, 0, 1e-7, (b, h, r) -> {
                long lastKey = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) r + ctx.queryOffset()) : ctx.keyLength() - 1;
                double[] sc = new double[ctx.keyLength()];
                if (lastKey < 0) {
                    return new Oracles.Top(new int[0], Double.POSITIVE_INFINITY);
                }
                for (int hh = 0; hh < ctx.shape().qHeads(); hh++) {
                    double[] pr = Oracles.softmax(Vectors.rows(qkv.q(), b, hh), r, Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(hh)), d,
                            (int) lastKey + 1, 1 / Math.sqrt(d));
                    for (int j = 0; j < pr.length; j++) {
                        sc[j] += pr[j];
                    }
                }
                return Oracles.top(sc, candidates(ctx, r, 1, 0), 5);
            }, "tokenSelect");
            assertEquals(ctx.shape().batch(), ts.layouts().size(), "one layout per batch entry, shared by heads");
        }
    }

    @Test
    void selectionsAreDeterministic() {
        PlanContext ctx = Definitions.ctx(1, 2, 1, 60, 60, 16, true, 16, 16);
        Problems.Qkv qkv = data(ctx, 14);
        for (Pattern p : List.of(Patterns.topK(7), Patterns.topKPerQueryBlock(9, 1, 4), Patterns.quest(8, 16, 0, 4),
                Patterns.tokenSelect(6, 0, 2))) {
            SparsePlan a = p.plan(ctx, qkv.q(), qkv.k());
            SparsePlan b = p.plan(ctx, qkv.q(), qkv.k());
            for (int h = 0; h < 2; h++) {
                assertArrayEquals(TokenSets.keys(a, 0, h), TokenSets.keys(b, 0, h), p.name());
            }
        }
    }

    @Test
    void kRules() {
        assertThrows(IllegalArgumentException.class, () -> Patterns.topK(0));
        assertThrows(IllegalArgumentException.class, () -> Patterns.topK(-1));
        PlanContext ctx = Definitions.ctx(1, 1, 1, 20, 20, 8, true, 8, 8);
        Problems.Qkv qkv = data(ctx, 15);
        // k = 0 with forced keys keeps exactly the forced keys
        SparsePlan onlyForced = Patterns.topK(0, 0, 3).plan(ctx, qkv.q(), qkv.k());
        Definitions.assertTokenSet(onlyForced, (b, h, r, k) -> k <= r && r - k < 3, "k = 0, window 3");
        // k beyond what is left keeps everything visible
        Definitions.assertTokenSet(Patterns.topK(1000).plan(ctx, qkv.q(), qkv.k()), (b, h, r, k) -> k <= r, "k >= admissible");
        // ties go to the lower index: constant keys make every score equal
        dev.sparsa.tensor.Tensor zeros = dev.sparsa.tensor.Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 20, 8);
        Definitions.assertTokenSet(Patterns.topK(2).plan(ctx, qkv.q(), zeros), (b, h, r, k) -> k <= Math.min(r, 1),
                "ties to the lower index");
    }
}
