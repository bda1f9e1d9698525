package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.blocksparse.GateBlockSelect;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.blocksparse.RandomBlockSparse;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Block-sparse layouts and estimators against their definitions. Estimator selections are compared
 * with an independent double-precision oracle only where the k-th and (k+1)-th scores differ by more
 * than 1e-4 (random f32 inputs make near-ties rare; the test asserts most query blocks are compared).
 */
class BlockSparseFamilyTest {

    @Test
    void explicitMasksInUserBlockSizesMatchTheDefinition() {
        SplittableRandom rnd = new SplittableRandom(1);
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] bs : new int[][] {{16, 16}, {24, 40}, {7, 5}, {64, 8}}) {
                int qb = (ctx.queryLength() + bs[0] - 1) / bs[0];
                int kb = (ctx.keyLength() + bs[1] - 1) / bs[1];
                int heads = ctx.shape().qHeads();
                boolean[][][] masks = new boolean[heads][qb][kb];
                for (boolean[][] m : masks) {
                    for (boolean[] row : m) {
                        for (int j = 0; j < kb; j++) {
                            row[j] = rnd.nextDouble() < 0.4;
                        }
                    }
                }
                SparsePlan plan = Patterns.blockSparse(masks, bs[0], bs[1]).plan(ctx);
                assertTokenSet(plan, (b, h, r, k) -> causalOk(ctx, r, k) && masks[h][r / bs[0]][k / bs[1]],
                        "block mask " + bs[0] + "x" + bs[1]);
            }
        }
    }

    @Test
    void randomBlockSparseKeepsEachAdmissibleBlockWithItsProbability() {
        for (PlanContext ctx : Definitions.sweep()) {
            RandomBlockSparse p = new RandomBlockSparse(0.3, 99);
            int rows = ctx.geometry().tileRows();
            int cols = ctx.geometry().blockCols();
            assertTokenSet(p.plan(ctx), (b, h, r, k) -> causalOk(ctx, r, k)
                    && p.keeps(Math.floorDiv(r / rows * rows + ctx.queryOffset(), rows), k / cols), "random blocks");
        }
        RandomBlockSparse p = new RandomBlockSparse(0.1, 5);
        int kept = 0;
        int n = 0;
        for (int t = 0; t < 300; t++) {
            for (int j = 0; j <= t; j++) {
                n++;
                kept += p.keeps(t, j) ? 1 : 0;
            }
        }
        double rate = (double) kept / n;
        assertTrue(Math.abs(rate - 0.1) < 0.01, "kept fraction " + rate + " over " + n + " blocks");
        assertEquals(new RandomBlockSparse(0.1, 5).plan(Definitions.ctx(1, 1, 1, 500, 500, 8, true, 16, 16)).pairsAdmitted(),
                p.plan(Definitions.ctx(1, 1, 1, 500, 500, 8, true, 16, 16)).pairsAdmitted(), "same seed, same layout");
    }

    @Test
    void meanPoolTopKEqualsItsOracleAndCompilesExactly() {
        int compared = 0;
        int total = 0;
        for (PlanContext ctx : Definitions.sweep()) {
            for (MeanPoolBlockTopK est : List.of(new MeanPoolBlockTopK(2, 16, true, null), new MeanPoolBlockTopK(3, 12, false, null),
                    MeanPoolBlockTopK.minference(1))) {
                int bs = est.blockSize();
                Problems.Qkv qkv = Problems.qkv(7, ctx.shape(), DType.F32, Layout.BHSD);
                SparsePlan plan = est.plan(ctx, qkv.q(), qkv.k());
                int d = ctx.shape().headDim();
                int[][][][] sels = new int[ctx.shape().batch()][ctx.shape().qHeads()][][];
                for (int b = 0; b < ctx.shape().batch(); b++) {
                    for (int h = 0; h < ctx.shape().qHeads(); h++) {
                        float[] q = Vectors.rows(qkv.q(), b, h);
                        float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                        int[][] sel = est.select(ctx, q, k);
                        sels[b][h] = sel;
                        // independent oracle
                        int nq = ctx.queryLength();
                        int nk = ctx.keyLength();
                        int qBlocks = (nq + bs - 1) / bs;
                        int kBlocks = (nk + bs - 1) / bs;
                        double[][] qm = pool(q, nq, d, bs);
                        double[][] km = pool(k, nk, d, bs);
                        for (int i = 0; i < qBlocks; i++) {
                            long lastRow = Math.min(nq, (long) (i + 1) * bs) - 1;
                            long lastKey = ctx.causal() ? Math.min(nk - 1L, lastRow + ctx.queryOffset()) : nk - 1;
                            List<Integer> cand = new ArrayList<>();
                            double[] s = new double[kBlocks];
                            for (int j = 0; j < kBlocks; j++) {
                                if ((long) j * bs <= lastKey) {
                                    cand.add(j);
                                    for (int x = 0; x < d; x++) {
                                        s[j] += qm[i][x] * km[j][x];
                                    }
                                }
                            }
                            Oracles.Top top = Oracles.top(s, cand, est.topBlocks());
                            int[] want = top.chosen();
                            if (est.keepDiagonal() && !cand.isEmpty() && !Oracles.contains(want, cand.get(cand.size() - 1))) {
                                want = java.util.stream.IntStream.concat(java.util.Arrays.stream(want),
                                        java.util.stream.IntStream.of(cand.get(cand.size() - 1))).sorted().toArray();
                            }
                            total++;
                            if (top.gap() > 1e-4) {
                                compared++;
                                assertArrayEquals(want, sel[i], est.name() + " query block " + i + " in " + ctx);
                            }
                        }
                    }
                }
                assertTokenSet(plan, (b, h, r, key) -> causalOk(ctx, r, key) && Oracles.contains(sels[b][h][r / bs], key / bs),
                        est.name());
            }
        }
        assertTrue(compared >= 0.9 * total, "compared " + compared + " of " + total + " query blocks");
    }

    @Test
    void gateSelectionByThresholdAndRatio() {
        PlanContext ctx = Definitions.ctx(1, 2, 2, 70, 70, 8, true, 16, 8);
        int tiles = ctx.queryTiles();
        int blocks = ctx.keyBlocks();
        float[][][] s = new float[2][tiles][blocks];
        SplittableRandom rnd = new SplittableRandom(3);
        for (float[][] m : s) {
            for (float[] row : m) {
                for (int j = 0; j < blocks; j++) {
                    row[j] = (float) rnd.nextDouble(); // continuous: no ties
                }
            }
        }
        assertTokenSet(Patterns.gateByThreshold(s, 0.6).plan(ctx), (b, h, r, k) -> causalOk(ctx, r, k) && s[h][r / 16][k / 8] >= 0.6,
                "threshold");
        GateBlockSelect ratio = GateBlockSelect.byRatio(s, 0.5);
        assertTokenSet(ratio.plan(ctx), (b, h, r, k) -> {
            int t = r / 16;
            long lastKey = Math.min(69, (long) Math.min(70, (t + 1) * 16) - 1 + ctx.queryOffset());
            int admissible = (int) (lastKey / 8) + 1;
            int keep = (int) Math.ceil(0.5 * admissible);
            int rank = 0; // how many admissible blocks beat block k/8
            for (int j = 0; j < admissible; j++) {
                if (s[h][t][j] > s[h][t][k / 8]) {
                    rank++;
                }
            }
            return causalOk(ctx, r, k) && rank < keep;
        }, "ratio");
    }

    private static double[][] pool(float[] x, int n, int d, int bs) {
        int g = (n + bs - 1) / bs;
        double[][] out = new double[g][d];
        for (int i = 0; i < g; i++) {
            int r1 = Math.min(n, (i + 1) * bs);
            for (int r = i * bs; r < r1; r++) {
                for (int c = 0; c < d; c++) {
                    out[i][c] += x[r * d + c];
                }
            }
            for (int c = 0; c < d; c++) {
                out[i][c] /= bs; // a short last block counts its missing rows as zeros
            }
        }
        return out;
    }
}
