package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Every catalogue entry plans on assorted small contexts, with causality respected and no pair twice. */
class CatalogueTest {

    static List<PlanContext> contexts() {
        return List.of(
                PlanContext.of(AttentionShape.of(1, 2, 1, 1, 16), Options.causalMask()),
                PlanContext.of(AttentionShape.of(1, 2, 97, 97, 16), Options.causalMask().withGeometry(new TileGeometry(16, 8))),
                PlanContext.of(new AttentionShape(2, 4, 2, 40, 130, 16, 8), Options.causalMask().withGeometry(new TileGeometry(8, 16))),
                PlanContext.of(AttentionShape.of(1, 2, 150, 150, 16), Options.defaults().withGeometry(new TileGeometry(32, 32))),
                PlanContext.of(AttentionShape.of(1, 3, 200, 200, 24), Options.causalMask()),
                // more queries than keys: bottom-right alignment leaves the first rows without keys
                PlanContext.of(AttentionShape.of(1, 2, 40, 16, 8), Options.causalMask().withGeometry(new TileGeometry(8, 8))),
                PlanContext.of(AttentionShape.of(1, 1, 1, 1, 8), Options.defaults().withGeometry(new TileGeometry(8, 8))));
    }

    static SparsePlan planOn(Pattern p, PlanContext ctx, long seed) {
        if (!p.dataDependent()) {
            return p.plan(ctx);
        }
        Problems.Qkv qkv = Problems.qkv(seed, ctx.shape(), DType.F32, Layout.BHSD);
        return p.plan(ctx, qkv.q(), qkv.k());
    }

    @Test
    void everyEntryPlansEverywhereAndRespectsCausality() {
        List<CatalogueEntry> entries = PatternCatalogue.examples();
        assertFalse(entries.isEmpty());
        for (CatalogueEntry e : entries) {
            for (PlanContext ctx : contexts()) {
                SparsePlan plan = planOn(e.pattern(), ctx, 3);
                assertEquals(ctx, plan.context());
                for (int b = 0; b < ctx.shape().batch(); b++) {
                    for (int h = 0; h < ctx.shape().qHeads(); h++) {
                        List<TreeMap<Integer, Float>> rows = TokenSets.of(plan, b, h);
                        for (int r = 0; r < rows.size(); r++) {
                            long p = (long) r + ctx.queryOffset();
                            for (int k : rows.get(r).keySet()) {
                                assertTrue(!ctx.causal() || k <= p, e.description() + ": row " + r + " sees future key " + k);
                            }
                        }
                    }
                }
                assertTrue(plan.density() >= 0 && plan.density() <= 1.0 + 1e-12, e.description() + " density " + plan.density());
            }
        }
    }
}
