package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.strided.S2Strided;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import org.junit.jupiter.api.Test;

/** S2-Attention, Sparse Transformer's strided and fixed patterns and dilated windows against their definitions. */
class StridedFamilyTest {

    /** The last key block tile t may see: the block of min(nk-1, lastRowPos), or the last block when not causal. */
    private static int lastBlock(PlanContext ctx, int t) {
        int rows = ctx.geometry().tileRows();
        long lastRow = Math.min(ctx.queryLength(), (t + 1L) * rows) - 1;
        long lastKey = ctx.causal() ? Math.min(ctx.keyLength() - 1L, lastRow + ctx.queryOffset()) : ctx.keyLength() - 1L;
        return lastKey < 0 ? -1 : (int) (lastKey / ctx.geometry().blockCols());
    }

    @Test
    void s2MatchesItsDefinition() {
        for (PlanContext ctx : Definitions.sweep()) {
            int heads = ctx.shape().qHeads();
            for (int[] p : new int[][] {{2, 1, 0, 0, 0}, {3, 2, 1, 0, 0}, {4, 0, 2, 1, 0}, {2, 1, 0, 0, 1}}) {
                int stride = p[0], local = p[1], step = p[2], dense = Math.min(p[3], heads);
                boolean homogeneous = p[4] == 1;
                SparsePlan plan = Patterns.s2Strided(stride, local, step, dense, homogeneous).plan(ctx);
                assertTokenSet(plan, (b, h, r, k) -> {
                    int t = r / ctx.geometry().tileRows();
                    int j = k / ctx.geometry().blockCols();
                    int last = lastBlock(ctx, t);
                    if (!causalOk(ctx, r, k) || j > last) {
                        return false;
                    }
                    if (h >= heads - dense) {
                        return true;
                    }
                    int o = homogeneous ? 0 : h % stride;
                    return last - j < local || Math.floorMod(j - o - step * t, stride) == 0;
                }, "s2 " + java.util.Arrays.toString(p));
            }
        }
    }

    @Test
    void s2UnionOverHeadsCoversEveryCausalBlock() {
        for (int stride : new int[] {2, 3, 4}) {
            for (int step : new int[] {0, 1, 3}) {
                PlanContext ctx = Definitions.ctx(1, stride, stride, 300, 300, 8, true, 16, 16);
                SparsePlan plan = new S2Strided(stride, 0, step, 0, false).plan(ctx);
                for (int t = 0; t < ctx.queryTiles(); t++) {
                    java.util.Set<Integer> covered = new java.util.HashSet<>();
                    for (int h = 0; h < stride; h++) {
                        HeadLayout l = plan.layout(0, h);
                        for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
                            covered.add(l.fullBlock(i));
                        }
                        for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
                            covered.add(l.partialBlock(i));
                        }
                    }
                    assertEquals(lastBlock(ctx, t) + 1, covered.size(), "tile " + t + " stride " + stride + " step " + step);
                }
                // and a single head covers about 1/stride of them
                assertTrue(plan.layout(0, 0).pairsAdmitted() < 0.6 * Patterns.dense().plan(ctx).layout(0, 0).pairsAdmitted());
            }
        }
    }

    @Test
    void sparseTransformerAndDilatedWindowMatchTheirDefinitions() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (int l : new int[] {1, 4, 9, 32}) {
                assertTokenSet(Patterns.sparseTransformerStrided(l).plan(ctx), (b, h, r, k) -> {
                    long d = (long) r + ctx.queryOffset() - k;
                    return causalOk(ctx, r, k) && ((d >= 0 && d < l) || d % l == 0);
                }, "strided " + l);
                for (int c : new int[] {1, Math.max(1, l / 2), l}) {
                    assertTokenSet(Patterns.sparseTransformerFixed(l, c).plan(ctx), (b, h, r, k) -> {
                        long pos = (long) r + ctx.queryOffset();
                        return causalOk(ctx, r, k) && (pos / l == k / l || k % l >= l - c);
                    }, "fixed " + l + "," + c);
                }
            }
            for (int[] p : new int[][] {{1, 1}, {5, 3}, {12, 2}, {4, 30}}) {
                assertTokenSet(Patterns.dilatedWindow(p[0], p[1]).plan(ctx), (b, h, r, k) -> {
                    long d = (long) r + ctx.queryOffset() - k;
                    return causalOk(ctx, r, k) && d >= 0 && d % p[1] == 0 && d / p[1] < p[0];
                }, "dilated " + p[0] + "," + p[1]);
            }
        }
    }
}
