package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.adaptive.CumulativeMassBlocks;
import dev.sparsa.patterns.adaptive.CumulativeMassVerticalSlash;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Adaptive budgets by cumulative mass against a port of FlexPrefill's rules
 * (github.com/bytedance/FlexPrefill, file {@code flex_prefill/ops/flex_prefill_attention.py}, commit
 * a24b27bf117fd6ad4ba34b0db82c598e7786fd59): the query-aware block selection of {@code
 * get_active_blocks} ({@code score_cover_idx} over a head's block softmax, threshold {@code γ ·
 * num_blocks}) and the vertical and slash sizes of {@code get_active_blocks} ({@code
 * score_cover_topk} over the last queries' mean column and diagonal mass), in double precision.
 */
class AdaptiveBudgetTest {

    /** FlexPrefill's query-aware blocks of one head: [queryBlock][keyBlock] kept (self-attention, whole blocks). */
    static boolean[][] flexPrefillBlocks(float[][] q, float[][] k, int bs, double gamma) {
        int n = q.length;
        int d = q[0].length;
        int nb = n / bs;
        double[][] avgQ = new double[nb][d];
        double[][] avgK = new double[nb][d];
        for (int t = 0; t < n; t++) {
            for (int x = 0; x < d; x++) {
                avgQ[t / bs][x] += q[t][x] / (double) bs;
                avgK[t / bs][x] += k[t][x] / (double) bs;
            }
        }
        double[] attn = new double[nb * nb];
        for (int i = 0; i < nb; i++) {
            double max = Double.NEGATIVE_INFINITY;
            double[] row = new double[nb];
            for (int j = 0; j < nb; j++) {
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += avgQ[i][x] / Math.sqrt(d) * avgK[j][x];
                }
                row[j] = j <= i ? dot : Double.NEGATIVE_INFINITY; // block causal tril
                max = Math.max(max, row[j]);
            }
            double sum = 0;
            for (int j = 0; j < nb; j++) {
                row[j] = Math.exp(row[j] - max);
                sum += row[j];
            }
            for (int j = 0; j < nb; j++) {
                attn[i * nb + j] = row[j] / sum;
            }
        }
        // score_cover_idx(attn.view(-1), gamma * num_blocks): sorted descending, indices past the cover -> 0
        List<Integer> idx = new ArrayList<>();
        for (int i = 0; i < attn.length; i++) {
            idx.add(i);
        }
        idx.sort((a, b) -> Double.compare(attn[b], attn[a]));
        boolean[][] kept = new boolean[nb][nb];
        double cum = 0;
        for (int m = 0; m < idx.size(); m++) {
            cum += attn[idx.get(m)];
            int i = cum > gamma * nb ? 0 : idx.get(m);
            kept[i / nb][i % nb] = true;
        }
        return kept;
    }

    /** FlexPrefill's token counts: score_cover_topk of the last {@code last} queries' vertical and slash mass. */
    static int[] flexPrefillCounts(float[][] q, float[][] k, int last, double gamma) {
        int n = q.length;
        int d = q[0].length;
        double[] vertical = new double[n];
        double[] slash = new double[n + last];
        for (int i = n - last; i < n; i++) {
            double[] p = new double[n];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += (double) q[i][x] / Math.sqrt(d) * k[j][x];
                }
                p[j] = j <= i ? dot : Double.NEGATIVE_INFINITY;
                max = Math.max(max, p[j]);
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                p[j] = Math.exp(p[j] - max);
                sum += p[j];
            }
            for (int j = 0; j < n; j++) {
                vertical[j] += p[j] / sum / last; // qk.mean(-2)
                slash[i - j + last] += j <= i ? p[j] / sum / last : 0; // sum_all_diagonal_matrix / last_q_len
            }
        }
        return new int[] {scoreCoverTopk(vertical, gamma), scoreCoverTopk(slash, gamma)};
    }

    /** {@code torch.sum(cumsum(sort(x, descending)) <= score) + 1}. */
    static int scoreCoverTopk(double[] x, double score) {
        double[] s = Arrays.stream(x).boxed().sorted((a, b) -> Double.compare(b, a)).mapToDouble(v -> v).toArray();
        double cum = 0;
        int count = 0;
        for (double v : s) {
            cum += v;
            count += cum <= score ? 1 : 0;
        }
        return count + 1;
    }

    @ParameterizedTest
    @CsvSource({"128, 16, 16, 0.9", "192, 24, 32, 0.5", "96, 16, 8, 0.99"})
    void blocksEqualFlexPrefillsQueryAwareSelectionPlusTheDiagonal(int n, int dim, int bs, double gamma) {
        AttentionShape shape = AttentionShape.of(1, 2, n, n, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(16, 8));
        var g = LocalBandProblem.generate(shape, n);
        CumulativeMassBlocks p = new CumulativeMassBlocks(gamma, bs);
        PlanContext ctx = PlanContext.of(shape, o);
        int kept = 0;
        for (int h = 0; h < 2; h++) {
            boolean[][] ref = flexPrefillBlocks(MobaTest.heads(g.q())[h], MobaTest.heads(g.k())[h], bs, gamma);
            int[][] ours = p.select(ctx, Vectors.rows(g.q(), 0, h), Vectors.rows(g.k(), 0, h));
            for (int i = 0; i < ref.length; i++) {
                ref[i][i] = true;
                final boolean[] row = ref[i];
                int[] want = java.util.stream.IntStream.range(0, row.length).filter(j -> row[j]).toArray();
                assertArrayEquals(want, ours[i], "head " + h + " query block " + i);
                kept += want.length;
            }
        }
        int blocks = n / bs;
        assertTrue(gamma >= 0.99 || kept < blocks * (blocks + 1), "an adaptive budget below the causal blocks: " + kept);
        SparsePlan plan = p.plan(ctx, g.q(), g.k());
        int[][][] lists = new int[2][][];
        for (int h = 0; h < 2; h++) {
            lists[h] = p.select(ctx, Vectors.rows(g.q(), 0, h), Vectors.rows(g.k(), 0, h));
        }
        Definitions.assertTokenSet(plan, (b, h, r, key) -> key <= r
                && Arrays.binarySearch(lists[h][r / bs], key / bs) >= 0, p.name());
    }

    @ParameterizedTest
    @CsvSource({"200, 16, 0.9", "300, 24, 0.95", "150, 16, 0.6"})
    void verticalSlashBudgetsEqualFlexPrefillsCountsAndSelectAsMInference(int n, int dim, double gamma) {
        AttentionShape shape = AttentionShape.of(1, 2, n, n, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(16, 16));
        var g = LocalBandProblem.generate(shape, n + 1);
        PlanContext ctx = PlanContext.of(shape, o);
        CumulativeMassVerticalSlash unclamped = new CumulativeMassVerticalSlash(gamma, 1, 1 << 20, VsSemantics.EXACT);
        for (int h = 0; h < 2; h++) {
            int[] ref = flexPrefillCounts(MobaTest.heads(g.q())[h], MobaTest.heads(g.k())[h], 64, gamma);
            var b = unclamped.budgets(ctx, Vectors.rows(g.q(), 0, h), Vectors.rows(g.k(), 0, h));
            assertEquals(ref[0], b.vertical(), "vertical count, head " + h);
            assertEquals(ref[1], b.slash(), "slash count, head " + h);
        }
        CumulativeMassVerticalSlash p = new CumulativeMassVerticalSlash(gamma, 8, 120, VsSemantics.BLOCK_EXPANDED);
        SparsePlan plan = p.plan(ctx, g.q(), g.k());
        for (int h = 0; h < 2; h++) {
            float[] qs = Vectors.rows(g.q(), 0, h);
            float[] ks = Vectors.rows(g.k(), 0, h);
            var b = p.budgets(ctx, qs, ks);
            assertTrue(b.vertical() >= 8 && b.vertical() <= 120 && b.slash() >= 8 && b.slash() <= 120, b.toString());
            SparsePlan fixed = new VerticalSlashEstimator(b.vertical(), b.slash(), VsSemantics.BLOCK_EXPANDED,
                    VerticalSlashEstimator.LAST_QUERIES, Double.NaN).plan(ctx, g.q(), g.k());
            int[][] want = TokenSets.keys(fixed, 0, h);
            int[][] got = TokenSets.keys(plan, 0, h);
            for (int r = 0; r < n; r++) {
                assertArrayEquals(want[r], got[r], "head " + h + " row " + r);
            }
        }
    }
}
