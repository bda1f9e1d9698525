package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Vertical-slash in both semantics against definitions written here, and MInference's estimator
 * against an independent double-precision oracle. A slice whose selection boundary (the last chosen
 * and first dropped column or diagonal score) is closer than 1e-6 is not compared (f32 sums could
 * order it differently); the test asserts most slices are.
 */
class VerticalSlashFamilyTest {

    /** The exact semantics: a selected column, or a key on a selected diagonal, under causality. */
    static boolean exact(PlanContext ctx, int[] cols, int[] diags, int r, int k) {
        long p = (long) r + ctx.queryOffset();
        return causalOk(ctx, r, k) && (Oracles.contains(cols, k) || Oracles.contains(diags, (int) (p - k)));
    }

    /** The grid-expanded semantics: a column, or any key of a grid block some diagonal touches over the row's tile. */
    static boolean expanded(PlanContext ctx, int[] cols, int[] diags, int r, int k) {
        if (!causalOk(ctx, r, k)) {
            return false;
        }
        if (Oracles.contains(cols, k)) {
            return true;
        }
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int t0 = (r / rows) * rows;
        int t1 = Math.min(ctx.queryLength(), t0 + rows) - 1;
        for (int row = t0; row <= t1; row++) {
            long p = (long) row + ctx.queryOffset();
            for (int o : diags) {
                long key = p - o;
                // only keys the tile may see (under causality: up to the tile's last row) expand into blocks
                if (key >= 0 && key < ctx.keyLength() && causalOk(ctx, t1, (int) key) && key / bc == k / bc) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * The block-expanded semantics through the port of MInference's {@code convert_vertical_slash_indexes}
     * ({@link MInferencePort}), its block size read as the tile height and its positions shifted by
     * the query offset, everything under the context's causality; a tile no diagonal reaches keeps
     * its columns.
     */
    static Definitions.Def minferenceRanges(PlanContext ctx, int[] cols, int[] diags) {
        int rows = ctx.geometry().tileRows();
        int[] desc = java.util.stream.IntStream.range(0, diags.length).map(i -> diags[diags.length - 1 - i]).toArray();
        MInferencePort.VsIndex[] index = new MInferencePort.VsIndex[ctx.queryTiles()];
        for (int t = 0; t < index.length; t++) {
            index[t] = MInferencePort.convertVerticalSlashIndexes(cols, desc, t * rows + ctx.queryOffset(), rows, rows);
        }
        return (b, h, r, k) -> {
            if (!causalOk(ctx, r, k) || k >= ctx.keyLength()) {
                return false;
            }
            MInferencePort.VsIndex tile = index[r / rows];
            if (tile == null) {
                return Oracles.contains(cols, k);
            }
            for (int start : tile.blockOffsets()) {
                if (k >= start && k < start + rows) {
                    return true;
                }
            }
            return Oracles.contains(tile.columns(), k);
        };
    }

    @Test
    void explicitSetsInEverySemantics() {
        int[][] colSets = {{}, {0, 1, 2, 40, 77}, {5}, {3, 10, 17, 18, 30, 31, 45, 60, 61, 62, 90, 99}};
        // runs of >= 4 diagonals become a band predicate (also starting above 0, and two-sided)
        int[][] diagSets = {{0}, {0, 1, 2, 9, 33}, {}, {-3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 30},
            {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 40}, {-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 19}};
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] cols : colSets) {
                for (int[] diags : diagSets) {
                    SparsePlan ex = Patterns.verticalSlash(cols, diags, VsSemantics.EXACT).plan(ctx);
                    assertTokenSet(ex, (b, h, r, k) -> exact(ctx, cols, diags, r, k), "exact");
                    SparsePlan ge = Patterns.verticalSlash(cols, diags, VsSemantics.GRID_EXPANDED).plan(ctx);
                    assertTokenSet(ge, (b, h, r, k) -> expanded(ctx, cols, diags, r, k), "grid-expanded");
                    assertTrue(ge.pairsAdmitted() >= ex.pairsAdmitted(), "grid-expanded is a superset");
                    SparsePlan be = Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED).plan(ctx);
                    assertTokenSet(be, minferenceRanges(ctx, cols, diags), "block-expanded");
                }
            }
        }
    }

    @Test
    void estimatorEqualsItsOracle() {
        int compared = 0;
        int total = 0;
        List<PlanContext> ctxs = new ArrayList<>(Definitions.sweep());
        ctxs.add(Definitions.ctx(1, 2, 1, 300, 300, 16, true, 32, 32));
        for (PlanContext ctx : ctxs) {
            for (int[] budget : new int[][] {{31, 55}, {40, 80}, {1, 1}}) {
                VerticalSlashEstimator est = new VerticalSlashEstimator(budget[0], budget[1], VsSemantics.EXACT, 16, Double.NaN);
                Problems.Qkv qkv = Problems.qkv(31, ctx.shape(), DType.F32, Layout.BHSD);
                SparsePlan plan = est.plan(ctx, qkv.q(), qkv.k());
                int d = ctx.shape().headDim();
                for (int b = 0; b < ctx.shape().batch(); b++) {
                    for (int h = 0; h < ctx.shape().qHeads(); h++) {
                        float[] q = Vectors.rows(qkv.q(), b, h);
                        float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                        int nq = ctx.queryLength();
                        int nk = ctx.keyLength();
                        int last = Math.min(16, nq);
                        double[] vert = new double[nk];
                        java.util.Map<Long, Double> slash = new java.util.TreeMap<>();
                        long maxVisible = -1;
                        for (int r = nq - last; r < nq; r++) {
                            long p = (long) r + ctx.queryOffset();
                            long lk = ctx.causal() ? Math.min(nk - 1L, p) : nk - 1;
                            if (lk < 0) {
                                continue;
                            }
                            maxVisible = Math.max(maxVisible, lk);
                            double[] pr = Oracles.softmax(q, r, k, d, (int) lk + 1, 1 / Math.sqrt(d));
                            for (int j = 0; j < pr.length; j++) {
                                vert[j] += pr[j];
                                slash.merge(p - j, pr[j], Double::sum);
                            }
                        }
                        // candidate diagonals: every offset some scored row can see (>= 0 when causal)
                        long pFirst = (long) (nq - last) + ctx.queryOffset();
                        long pLast = (long) nq - 1 + ctx.queryOffset();
                        List<Integer> diagCand = new ArrayList<>();
                        long oMin = pFirst - (nk - 1);
                        double[] ds = new double[(int) (pLast - oMin + 1)];
                        for (long o = oMin; o <= pLast; o++) {
                            if (!ctx.causal() || o >= 0) {
                                diagCand.add((int) (o - oMin));
                            }
                            ds[(int) (o - oMin)] = o >= 0 && o < 100 ? Double.POSITIVE_INFINITY : slash.getOrDefault(o, 0.0);
                        }
                        List<Integer> colCand = new ArrayList<>();
                        for (int j = 0; j <= maxVisible; j++) {
                            colCand.add(j);
                            if (j < 30) {
                                vert[j] = Double.POSITIVE_INFINITY;
                            }
                        }
                        Oracles.Top cols = Oracles.top(vert, colCand, Math.max(budget[0], 30));
                        Oracles.Top diags = Oracles.top(ds, diagCand, Math.max(budget[1], 50));
                        int[] wantDiags = java.util.Arrays.stream(diags.chosen()).map(i -> (int) (i + oMin)).toArray();
                        VerticalSlashEstimator.Selection sel = est.select(ctx, q, k);
                        total++;
                        if (maxVisible < 0 || (cols.gap() > 1e-6 && diags.gap() > 1e-6)) {
                            compared++;
                            if (maxVisible >= 0) {
                                assertArrayEquals(cols.chosen(), sel.columns(), "columns, slice " + b + "," + h + " " + ctx);
                                assertArrayEquals(wantDiags, sel.diagonals(), "diagonals, slice " + b + "," + h + " " + ctx);
                            }
                        }
                        final int[] sc = sel.columns();
                        final int[] sd = sel.diagonals();
                        final int fb = b;
                        final int fh = h;
                        int[][] got = TokenSets.keys(plan, b, h);
                        for (int r = 0; r < nq; r++) {
                            for (int key = 0; key < nk; key++) {
                                boolean in = Oracles.contains(got[r], key);
                                if (in != exact(ctx, sc, sd, r, key)) {
                                    throw new AssertionError("estimator plan, slice " + fb + "," + fh + " row " + r + " key " + key);
                                }
                            }
                        }
                    }
                }
            }
        }
        assertTrue(compared >= 0.8 * total, "compared " + compared + " of " + total + " slices");
    }
}
