package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import org.junit.jupiter.api.Test;

/**
 * A few patterns end to end in fp64: the oracle of the plan's semantics equals dense masked
 * attention under the pattern's definition (written here as a PairMask). No kernel involved: this
 * checks that the plan means what the definition says, log-sum-exp included.
 */
class EndToEndOracleTest {

    private static void check(Pattern p, Options opts, Definitions.Def def, dev.sparsa.spec.AttentionShape shape) {
        Problems.Qkv qkv = Problems.qkv(101, shape, DType.F32, Layout.BHSD);
        PlanContext ctx = PlanContext.of(shape, opts);
        SparsePlan plan = p.dataDependent() ? p.plan(ctx, qkv.q(), qkv.k()) : p.plan(ctx);
        ReferenceResult viaPlan = ReferenceAttention.plan(plan, qkv.q(), qkv.k(), qkv.v(), opts);
        ReferenceResult viaMask = ReferenceAttention.dense(qkv.q(), qkv.k(), qkv.v(), opts, Definitions.mask(def));
        double err = ReferenceResult.maxRelativeError(viaPlan, viaMask);
        assertTrue(err < 1e-12, p.name() + ": relative error " + err);
        double worstLse = 0;
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.qHeads(); h++) {
                for (int r = 0; r < shape.queryLength(); r++) {
                    double a = viaPlan.lse(b, h, r);
                    double m = viaMask.lse(b, h, r);
                    worstLse = Math.max(worstLse, a == m ? 0 : Math.abs(a - m));
                }
            }
        }
        assertTrue(worstLse < 1e-9, p.name() + ": LSE error " + worstLse);
    }

    @Test
    void staticPatternsMeanWhatTheirDefinitionsSay() {
        var shape = new dev.sparsa.spec.AttentionShape(1, 4, 2, 72, 72, 16, 8);
        Options causal = Options.causalMask().withGeometry(new TileGeometry(16, 8));
        check(Patterns.aShape(12, 3), causal, (b, h, r, k) -> k <= r && (r - k < 12 || k < 3), shape);
        check(Patterns.triShape(12, 3, 5), causal, (b, h, r, k) -> k <= r && (r - k < 12 || k < 3 || r >= 67), shape);
        check(Patterns.s2Strided(2, 1).withBlockSize(8), causal, (b, h, r, k) -> {
            int i = r / 8;
            int j = k / 8;
            int kvHead = h / 2; // DKernel: one pattern per KV head, step max(1, 2 / 4 heads) = 1
            return k <= r && (i - j < 1 || (j + kvHead) % 2 == 0);
        }, shape);
        int[] cols = {1, 20};
        int[] diags = {0, 5};
        check(Patterns.union(Patterns.slidingWindow(4), Patterns.verticalSlash(cols, diags, VsSemantics.EXACT)), causal,
                (b, h, r, k) -> k <= r && (r - k < 4 || k == 1 || k == 20 || r - k == 5), shape);
        Options open = Options.defaults().withGeometry(new TileGeometry(8, 16));
        check(Patterns.neighbourhood(9), open, (b, h, r, k) -> {
            int start = Math.max(0, Math.min(r - 4, 72 - 9));
            return k >= start && k < start + 9;
        }, shape);
    }
}
