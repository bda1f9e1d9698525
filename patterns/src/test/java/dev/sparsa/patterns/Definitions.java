package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.fail;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.PairMask;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.ArrayList;
import java.util.List;

/** Test helpers: contexts to sweep and the brute-force comparison of a plan with a definition. */
final class Definitions {
    private Definitions() {
    }

    /** A definition on (batch, query head, row index, key position); causality is part of it. */
    @FunctionalInterface
    interface Def {
        boolean admits(int b, int h, int row, int key);
    }

    static PlanContext ctx(int batch, int qHeads, int kvHeads, int nq, int nk, int dim, boolean causal, int rows, int cols) {
        return PlanContext.of(new AttentionShape(batch, qHeads, kvHeads, nq, nk, dim, dim),
                Options.defaults().withCausal(causal).withGeometry(new TileGeometry(rows, cols)));
    }

    /** Assorted small contexts: causal and not, ragged lengths, prefill with a past, odd tilings, GQA. */
    static List<PlanContext> sweep() {
        List<PlanContext> l = new ArrayList<>();
        l.add(ctx(1, 2, 2, 100, 100, 16, true, 16, 16));
        l.add(ctx(1, 2, 1, 77, 77, 16, true, 8, 24));
        l.add(ctx(1, 1, 1, 50, 130, 16, true, 16, 8));   // prefill after 80 cached keys
        l.add(ctx(2, 4, 2, 64, 64, 16, false, 32, 16));
        l.add(ctx(1, 2, 2, 1, 90, 16, true, 8, 8));      // one decode row
        l.add(ctx(1, 1, 1, 33, 33, 16, false, 24, 40));
        return l;
    }

    /** Causal admissibility of (row, key) in a context. */
    static boolean causalOk(PlanContext ctx, int row, int key) {
        return !ctx.causal() || key <= (long) row + ctx.queryOffset();
    }

    /** Asserts that every slice's token set equals the definition, pair by pair. */
    static void assertTokenSet(SparsePlan plan, Def def, String what) {
        PlanContext ctx = plan.context();
        for (int b = 0; b < ctx.shape().batch(); b++) {
            for (int h = 0; h < ctx.shape().qHeads(); h++) {
                int[][] got = TokenSets.keys(plan, b, h);
                for (int r = 0; r < ctx.queryLength(); r++) {
                    int j = 0;
                    for (int k = 0; k < ctx.keyLength(); k++) {
                        boolean inPlan = j < got[r].length && got[r][j] == k;
                        if (inPlan) {
                            j++;
                        }
                        boolean want = def.admits(b, h, r, k);
                        if (inPlan != want) {
                            fail(what + " in " + ctx + ": slice (" + b + ", " + h + ") row " + r + " key " + k + ": plan "
                                    + (inPlan ? "admits" : "omits") + " it, the definition " + (want ? "admits" : "omits") + " it");
                        }
                    }
                }
            }
        }
    }

    /** The definition as a PairMask for the dense oracle. */
    static PairMask mask(Def d) {
        return d::admits;
    }
}
