package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The lightning indexer against a port of DeepSeek-V3.2-Exp's reference
 * (github.com/deepseek-ai/DeepSeek-V3.2-Exp, commit 3b99a5350d260b7c2a357e82362305509e2d0724): the
 * index score of {@code fp8_index_kernel} in {@code inference/kernel.py} (Σ_h ReLU(q_h·k)·w_h), the
 * causal mask and {@code topk(min(index_topk, end_pos))} of {@code Indexer.forward} and the prefill
 * branch of {@code MLA.forward} in {@code inference/model.py} (every head's scores plus the index
 * mask, softmax), in double precision without the FP8 quantisation. Inputs of the indexer have
 * their own shapes (fewer heads, a smaller dimension).
 */
class LightningIndexerTest {

    record Port(boolean[][] attend, double[][][] out) {
    }

    static Port deepseekPrefill(float[][][] q, float[][][] k, float[][][] v, float[][][] qi, float[][] ki, float[][] w,
                                int topk) {
        int t = q[0].length;
        int heads = q.length;
        int group = heads / k.length;
        double scale = Math.pow(q[0][0].length, -0.5);
        boolean[][] attend = new boolean[t][t];
        for (int i = 0; i < t; i++) {
            double[] score = new double[t];
            for (int s = 0; s < t; s++) {
                double sum = 0;
                for (int h = 0; h < qi.length; h++) {
                    double dot = 0;
                    for (int x = 0; x < ki[s].length; x++) {
                        dot += (double) qi[h][i][x] * ki[s][x];
                    }
                    sum += Math.max(dot, 0) * w[i][h];
                }
                score[s] = s <= i ? sum : Double.NEGATIVE_INFINITY; // index_score += mask
            }
            Integer[] order = new Integer[t];
            for (int s = 0; s < t; s++) {
                order[s] = s;
            }
            java.util.Arrays.sort(order, (a, b) -> Double.compare(score[b], score[a]));
            for (int j = 0; j < Math.min(topk, t); j++) {
                attend[i][order[j]] = order[j] <= i; // index_mask scatter 0, then += the causal mask
            }
        }
        double[][][] out = new double[heads][t][v[0][0].length];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < t; i++) {
                double max = Double.NEGATIVE_INFINITY;
                double[] e = new double[t];
                for (int s = 0; s < t; s++) {
                    double dot = 0;
                    for (int x = 0; x < q[h][i].length; x++) {
                        dot += (double) q[h][i][x] * k[h / group][s][x];
                    }
                    e[s] = attend[i][s] ? dot * scale : Double.NEGATIVE_INFINITY;
                    max = Math.max(max, e[s]);
                }
                double sum = 0;
                for (int s = 0; s < t; s++) {
                    e[s] = Math.exp(e[s] - max);
                    sum += e[s];
                }
                for (int s = 0; s < t; s++) {
                    for (int c = 0; c < out[h][i].length; c++) {
                        out[h][i][c] += e[s] / sum * v[h / group][s][c];
                    }
                }
            }
        }
        return new Port(attend, out);
    }

    private static float[][] rows(Tensor t, int head) {
        float[][] a = new float[t.seqLen()][t.dim()];
        for (int s = 0; s < t.seqLen(); s++) {
            t.readRow(0, head, s, a[s], 0);
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({
        // n, qHeads, kvHeads, dim, indexerHeads, indexerDim, topk, tileRows, blockCols
        "80, 4, 1, 16, 3, 8, 12, 16, 16",
        "70, 4, 2, 24, 2, 16, 30, 8, 24",
        "50, 2, 2, 16, 1, 8, 64, 16, 8",
    })
    void equalsTheReferenceIndexerAndPrefill(int n, int qHeads, int kvHeads, int dim, int ih, int id, int topk, int rows,
                                              int cols) {
        AttentionShape shape = new AttentionShape(1, qHeads, kvHeads, n, n, dim, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(rows, cols));
        Problems.Qkv x = Problems.qkv(n + topk, shape, DType.F32, Layout.BHSD);
        SplittableRandom rnd = new SplittableRandom(n * 5L);
        Tensor qi = Problems.random(rnd, DType.F32, Layout.BHSD, 1, ih, n, id, 1.0);
        Tensor ki = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, n, id, 1.0);
        Tensor w = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, n, ih, 1.0);
        LightningIndexer indexer = LightningIndexer.of(topk, new IndexerInputs(qi, ki, w));
        SparsePlan plan = indexer.plan(PlanContext.of(shape, o), x.q(), x.k());
        float[][][] wq = new float[ih][][];
        for (int h = 0; h < ih; h++) {
            wq[h] = rows(qi, h);
        }
        Port ref = deepseekPrefill(MobaTest.heads(x.q()), MobaTest.heads(x.k()), MobaTest.heads(x.v()), wq, rows(ki, 0),
                rows(w, 0), topk);
        Definitions.assertTokenSet(plan, (b, h, r, key) -> ref.attend()[r][key], indexer.name());
        for (int h = 1; h < qHeads; h++) {
            assertEquals(plan.layoutIndex(0, 0), plan.layoutIndex(0, h), "every head reads the one selection");
        }
        ReferenceResult ours = ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o);
        double worst = 0;
        for (int h = 0; h < qHeads; h++) {
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < dim; c++) {
                    worst = Math.max(worst, Math.abs(ours.out(0, h, r, c) - ref.out()[h][r][c]));
                }
            }
        }
        assertTrue(worst < 1e-9, "output differs from the reference by " + worst);
    }

    @Test
    void selectionEqualsItsF32DefinitionOverSeveralKeyRanges() {
        // past a thousand keys the scores are built a key range at a time; every score must still be the
        // definition's f32 value (each dot one fma chain in channel order, the heads added by fma in order)
        // and the kept keys its top-k with ties to the lower key, causal (bottom-right) or not
        for (boolean causal : new boolean[] {true, false}) {
            int nq = 700;
            int nk = 2500;
            int ih = 3;
            int id = 8;
            int topk = 100;
            AttentionShape shape = new AttentionShape(1, 2, 1, nq, nk, 16, 16);
            PlanContext ctx = PlanContext.of(shape, causal ? Options.causalMask() : Options.defaults());
            SplittableRandom rnd = new SplittableRandom(causal ? 31 : 32);
            Tensor qi = Problems.random(rnd, DType.F32, Layout.BHSD, 1, ih, nq, id, 1.0);
            Tensor ki = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, nk, id, 1.0);
            Tensor w = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, nq, ih, 1.0);
            int[][] got = LightningIndexer.of(topk, new IndexerInputs(qi, ki, w)).select(ctx, new IndexerInputs(qi, ki, w), 0);
            float[] qr = new float[id];
            float[] kr = new float[id];
            float[] wr = new float[ih];
            for (int r = 0; r < nq; r++) {
                int seen = causal ? Math.min(nk, r + (nk - nq) + 1) : nk;
                float[] score = new float[seen];
                w.readRow(0, 0, r, wr, 0);
                for (int h = 0; h < ih; h++) {
                    qi.readRow(0, h, r, qr, 0);
                    for (int s = 0; s < seen; s++) {
                        ki.readRow(0, 0, s, kr, 0);
                        float dot = 0f;
                        for (int x = 0; x < id; x++) {
                            dot = Math.fma(qr[x], kr[x], dot);
                        }
                        score[s] = Math.fma(wr[h], Math.max(0f, dot), score[s]);
                    }
                }
                Integer[] order = new Integer[seen];
                for (int s = 0; s < seen; s++) {
                    order[s] = s;
                }
                java.util.Arrays.sort(order, (a, b) -> score[a] != score[b] ? Float.compare(score[b], score[a])
                        : Integer.compare(a, b));
                int[] want = new int[Math.min(topk, seen)];
                for (int j = 0; j < want.length; j++) {
                    want[j] = order[j];
                }
                java.util.Arrays.sort(want);
                assertEquals(java.util.Arrays.toString(want), java.util.Arrays.toString(got[r]),
                        (causal ? "causal" : "full") + " row " + r);
            }
        }
    }

    @Test
    void inputsOfAnotherShapeAreRefusedByName() {
        AttentionShape shape = AttentionShape.of(1, 2, 30, 30, 16);
        Problems.Qkv x = Problems.qkv(1, shape, DType.F32, Layout.BHSD);
        SplittableRandom rnd = new SplittableRandom(2);
        Tensor qi = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 2, 29, 8, 1.0);
        Tensor ki = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, 30, 8, 1.0);
        Tensor w = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, 29, 2, 1.0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LightningIndexer.of(4,
                new IndexerInputs(qi, ki, w)).plan(PlanContext.of(shape, Options.causalMask()), x.q(), x.k()));
        assertTrue(e.getMessage().contains("do not fit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new IndexerInputs(qi, ki,
                Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, 29, 3, 1.0)));
        assertTrue(e.getMessage().startsWith("weights: shape"), e.getMessage());
    }

    @Test
    void theProjectedStandInSelectsMostOfTheMass() {
        AttentionShape shape = new AttentionShape(1, 4, 2, 256, 256, 32, 32);
        Options o = Options.causalMask().withGeometry(new TileGeometry(16, 16));
        Problems.Qkv x = LocalBandProblem.generate(shape, 3);
        SparsePlan plan = LightningIndexer.projected(32, 4, 16, 7).plan(PlanContext.of(shape, o), x.q(), x.k());
        ReferenceResult dense = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
        double recall = ReferenceResult.meanRecall(ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o), dense);
        // the same budget spent on random keys
        SplittableRandom rnd = new SplittableRandom(4);
        int[][] lists = new int[256][];
        for (int r = 0; r < 256; r++) {
            lists[r] = rnd.ints(32, 0, r + 1).toArray();
        }
        SparsePlan random = Patterns.tokenLists(lists).plan(PlanContext.of(shape, o));
        double baseline = ReferenceResult.meanRecall(ReferenceAttention.plan(random, x.q(), x.k(), x.v(), o), dense);
        assertTrue(recall > baseline + 0.2, "recall " + recall + " against " + baseline + " for random keys");
    }
}
