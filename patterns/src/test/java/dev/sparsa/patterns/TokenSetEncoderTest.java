package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The encoder reproduces arbitrary per-row key sets (with log-weights) exactly, whatever predicates it is offered. */
class TokenSetEncoderTest {

    @Test
    void arbitrarySetsRoundTrip() {
        SplittableRandom rnd = new SplittableRandom(2024);
        for (PlanContext ctx : Definitions.sweep()) {
            for (int trial = 0; trial < 6; trial++) {
                int nq = ctx.queryLength();
                int nk = ctx.keyLength();
                List<TreeMap<Integer, Float>> want = new ArrayList<>();
                double density = rnd.nextDouble();
                int shared = rnd.nextInt(nk);
                for (int r = 0; r < nq; r++) {
                    TreeMap<Integer, Float> m = new TreeMap<>();
                    for (int k = 0; k < nk; k++) {
                        boolean band = Math.abs(r + ctx.queryOffset() - k) < 5;
                        if (rnd.nextDouble() < density * 0.3 || band || k == shared) {
                            m.put(k, trial % 3 == 0 && rnd.nextInt(4) == 0 ? (float) rnd.nextInt(-3, 4) : 0f);
                        }
                    }
                    want.add(m);
                }
                List<ElementPredicate> candidates = List.of(RandomPlans.randomPredicate(rnd, ctx), ctx.basePredicate(),
                        RandomPlans.randomPredicate(rnd, ctx));
                HeadLayout l = TokenSetEncoder.encode(ctx, (row, sink) -> want.get(row).forEach(sink::accept), candidates);
                List<TreeMap<Integer, Float>> got = TokenSets.of(SparsePlan.uniform(ctx, l, "encoded"), 0, 0);
                for (int r = 0; r < nq; r++) {
                    assertEquals(want.get(r), got.get(r), "row " + r + " trial " + trial + " in " + ctx);
                }
            }
        }
    }
}
