package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import org.junit.jupiter.api.Test;

/** Sparse Transformer's strided and fixed patterns and dilated windows against their definitions (S2: DKernelPortTest). */
class StridedFamilyTest {

    /** Contexts whose query positions start below 0: more queries than keys, and explicit negative offsets. */
    private static java.util.List<PlanContext> negativeOffsets() {
        java.util.List<PlanContext> l = new java.util.ArrayList<>();
        for (boolean causal : new boolean[] {true, false}) {
            l.add(Definitions.ctx(1, 1, 1, 130, 50, 8, causal, 16, 16)); // bottom-right: offset -80
            for (int offset : new int[] {-1, -7, -33}) {
                l.add(PlanContext.of(new dev.sparsa.spec.AttentionShape(1, 1, 1, 60, 70, 8, 8), dev.sparsa.spec.Options
                        .defaults().withCausal(causal).withQueryOffset(offset).withGeometry(new dev.sparsa.spec.TileGeometry(8, 24))));
            }
        }
        return l;
    }

    @Test
    void sparseTransformerStridedWithQueriesBeforeTheFirstKey() {
        for (PlanContext ctx : negativeOffsets()) {
            for (int l : new int[] {1, 2, 5, 9, 32}) {
                SparsePlan plan = Patterns.sparseTransformerStrided(l).plan(ctx);
                int[][] got = TokenSets.keys(plan, 0, 0);
                for (int r = 0; r < ctx.queryLength(); r++) {
                    // written from the definition alone: every key k with p - k a multiple of l, or 0 <= p - k < l
                    java.util.List<Integer> want = new java.util.ArrayList<>();
                    long p = (long) r + ctx.queryOffset();
                    for (int k = 0; k < ctx.keyLength(); k++) {
                        long d = p - k;
                        boolean visible = !ctx.causal() || d >= 0;
                        if (visible && ((d >= 0 && d < l) || Math.floorMod(d, (long) l) == 0)) {
                            want.add(k);
                        }
                    }
                    assertEquals(want.toString(), java.util.Arrays.toString(got[r]),
                            "strided " + l + " row " + r + " (position " + p + ") in " + ctx);
                }
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
