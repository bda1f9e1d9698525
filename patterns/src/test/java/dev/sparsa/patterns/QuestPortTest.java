package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Quest against a port of its reference selection: {@code _ref_self_approx_attention} in {@code
 * quest/tests/test_approx_attention.py} of github.com/mit-han-lab/Quest at commit
 * 01c1623bf9395009520874e989e29f683203b357, with the page budget of {@code quest/models/llama.py}
 * ({@code token_budget // page_size}). The reference is written for a decode step (one query over
 * the whole cache); each prefill row must keep what it keeps when decoding that row over the keys
 * the row sees.
 */
class QuestPortTest {

    /** The reference's keys for one query {@code q[d]} over keys {@code k[kvLen · d]}, and its top-k gap. */
    record Selection(int[] keys, double gap) {
    }

    static Selection reference(float[] q, int qAt, float[] k, int kvLen, int d, int pageSize, int tokenBudget) {
        int pageBudget = tokenBudget / pageSize;
        int curNumPages = (kvLen + pageSize - 1) / pageSize;
        if (curNumPages <= pageBudget) {
            return new Selection(IntStream.range(0, kvLen).toArray(), Double.POSITIVE_INFINITY);
        }
        // sign = (q > 0) + (~(q > 0)) * -1; page_max_key = amax over the page of k * sign
        double[] approx = new double[curNumPages];
        for (int pg = 0; pg < curNumPages; pg++) {
            for (int c = 0; c < d; c++) {
                double sign = q[qAt * d + c] > 0 ? 1 : -1;
                double mx = Double.NEGATIVE_INFINITY; // the padding holds finfo.min: never the maximum
                for (int key = pg * pageSize; key < Math.min(kvLen, (pg + 1) * pageSize); key++) {
                    mx = Math.max(mx, k[key * d + c] * sign);
                }
                approx[pg] += q[qAt * d + c] * sign * mx;
            }
        }
        // approx_attn_paged[:, :, :cur_num_pages - 1]; topk(page_budget - 1); cat the last page
        Integer[] order = IntStream.range(0, curNumPages - 1).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.<Integer>comparingDouble(pg -> -approx[pg]).thenComparingInt(pg -> pg));
        int kk = pageBudget - 1;
        double gap = kk > 0 && kk < order.length ? approx[order[kk - 1]] - approx[order[kk]] : Double.POSITIVE_INFINITY;
        int[] pages = IntStream.concat(Arrays.stream(order, 0, kk).mapToInt(Integer::intValue), IntStream.of(curNumPages - 1))
                .sorted().toArray();
        int[] keys = Arrays.stream(pages).flatMap(pg -> IntStream.range(pg * pageSize, (pg + 1) * pageSize))
                .filter(key -> key < kvLen).toArray(); // the padding removed
        return new Selection(keys, gap);
    }

    @Test
    void decodeStepsSelectWhatTheReferenceSelects() {
        int compared = 0;
        int total = 0;
        for (int kvLen : new int[] {27, 61, 113, 482, 577}) {
            for (int pageSize : new int[] {4, 16}) {
                for (int budgetPages : new int[] {1, 2, 7, 15}) {
                    PlanContext ctx = Definitions.ctx(1, 2, 1, 1, kvLen, 16, true, 8, 8);
                    Problems.Qkv qkv = Problems.qkv(kvLen * 7L + pageSize + budgetPages, ctx.shape(), DType.F32, Layout.BHSD);
                    SparsePlan plan = Patterns.quest(pageSize, budgetPages * pageSize).plan(ctx, qkv.q(), qkv.k());
                    for (int h = 0; h < 2; h++) {
                        float[] q = Vectors.rows(qkv.q(), 0, h);
                        float[] k = Vectors.rows(qkv.k(), 0, 0);
                        Selection want = reference(q, 0, k, kvLen, 16, pageSize, budgetPages * pageSize);
                        total++;
                        if (want.gap() > 1e-4) {
                            compared++;
                            assertArrayEquals(want.keys(), TokenSets.keys(plan, 0, h)[0],
                                    "kv " + kvLen + " page " + pageSize + " budget " + budgetPages + " head " + h);
                        }
                    }
                }
            }
        }
        assertTrue(compared >= 0.8 * total, "compared " + compared + " of " + total);
    }

    @Test
    void eachPrefillRowSelectsWhatDecodingItWouldSelect() {
        int compared = 0;
        int total = 0;
        PlanContext ctx = Definitions.ctx(1, 1, 1, 90, 130, 16, true, 16, 16); // 40 keys already cached
        Problems.Qkv qkv = Problems.qkv(5, ctx.shape(), DType.F32, Layout.BHSD);
        int pageSize = 8;
        int budget = 4 * pageSize;
        SparsePlan plan = Patterns.quest(pageSize, budget + 5).plan(ctx, qkv.q(), qkv.k()); // rounds down to 4 pages
        float[] q = Vectors.rows(qkv.q(), 0, 0);
        float[] k = Vectors.rows(qkv.k(), 0, 0);
        int[][] got = TokenSets.keys(plan, 0, 0);
        for (int r = 0; r < 90; r++) {
            Selection want = reference(q, r, k, r + 40 + 1, 16, pageSize, budget);
            total++;
            if (want.gap() > 1e-4) {
                compared++;
                assertArrayEquals(want.keys(), got[r], "row " + r);
            }
        }
        assertTrue(compared >= 0.8 * total, "compared " + compared + " of " + total);
    }

    @Test
    void theBudgetIsInTokensAndHoldsAtLeastOnePage() {
        assertThrows(IllegalArgumentException.class, () -> Patterns.quest(16, 15));
        assertTrue(Patterns.quest(16, 16).name().contains("16 tokens"));
    }
}
