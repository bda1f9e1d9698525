package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Key shards partition a plan's admitted pairs exactly; head shards keep each slice's layout. */
class PlanShardsTest {

    /** Every admitted (row, key) of slice (b, h) with its log-weight and multiplicity. */
    private static Map<Long, List<Float>> admitted(SparsePlan plan, int b, int h) {
        Map<Long, List<Float>> pairs = new HashMap<>();
        HeadLayout l = plan.layout(b, h);
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int row = l.row(t, i);
                l.forEachAdmittedKey(t, row, (key, w) ->
                        pairs.computeIfAbsent(((long) row << 32) | key, x -> new ArrayList<>()).add(w));
            }
        }
        return pairs;
    }

    @Test
    void keyShardsPartitionEveryAdmittedPair() {
        for (long seed = 1; seed <= 40; seed++) {
            SplittableRandom rnd = new SplittableRandom(seed);
            int nq = rnd.nextInt(1, 300);
            int nk = rnd.nextInt(1, 400);
            TileGeometry g = rnd.nextBoolean() ? new TileGeometry(32, 16) : new TileGeometry(64, 64);
            Options o = Options.defaults().withCausal(rnd.nextBoolean()).withGeometry(g);
            PlanContext ctx = PlanContext.of(new AttentionShape(2, 4, 2, nq, nk, 16, 16), o);
            SparsePlan plan = RandomPlans.randomPlan(seed, ctx, true);
            int n = rnd.nextInt(1, 5);
            List<SparsePlan> shards = PlanShards.balancedKeys(plan, n);
            assertTrue(shards.size() >= 1 && shards.size() <= n);
            long admittedSum = 0;
            for (SparsePlan s : shards) {
                admittedSum += s.pairsAdmitted();
                assertEquals(plan.context(), s.context());
            }
            assertEquals(plan.pairsAdmitted(), admittedSum, "seed " + seed + ": admitted pairs add up");
            for (int b = 0; b < 2; b++) {
                for (int h = 0; h < 4; h++) {
                    Map<Long, List<Float>> whole = admitted(plan, b, h);
                    Map<Long, List<Float>> union = new HashMap<>();
                    for (SparsePlan s : shards) {
                        admitted(s, b, h).forEach((k, w) -> union.computeIfAbsent(k, x -> new ArrayList<>()).addAll(w));
                    }
                    assertEquals(whole, union, "seed " + seed + " slice " + b + "," + h);
                }
            }
        }
    }

    @Test
    void balancedCutsFollowTheCostOfACausalPlan() {
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, 4096, 4096, 16),
                Options.causalMask().withGeometry(TileGeometry.DEFAULT));
        SparsePlan dense = dev.sparsa.pattern.Dense.INSTANCE.plan(ctx);
        int[] cuts = PlanShards.balancedKeyCuts(dense, 2);
        assertEquals(3, cuts.length);
        // a causal square's first half of keys carries 3/4 of the pairs: the cut sits near 1 − 1/√2
        assertTrue(cuts[1] > 1000 && cuts[1] < 1300, "cut at " + cuts[1]);
        List<SparsePlan> two = PlanShards.balancedKeys(dense, 2);
        double ratio = (double) two.get(0).pairsVisited() / two.get(1).pairsVisited();
        assertTrue(ratio > 0.9 && ratio < 1.1, "visited pairs per shard within 10 %: " + ratio);
    }

    @Test
    void headShardsKeepEachSlicesLayout() {
        PlanContext ctx = PlanContext.of(new AttentionShape(2, 8, 2, 100, 120, 16, 16), Options.causalMask());
        SparsePlan plan = RandomPlans.randomPlan(3, ctx, false);
        SparsePlan shard = PlanShards.heads(plan, 4, 8);
        assertEquals(new AttentionShape(2, 4, 1, 100, 120, 16, 16), shard.shape());
        for (int b = 0; b < 2; b++) {
            for (int h = 0; h < 4; h++) {
                assertSame(plan.layout(b, h + 4), shard.layout(b, h));
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PlanShards.heads(plan, 2, 6));
        assertTrue(e.getMessage().startsWith("heads:") && e.getMessage().contains("groups of 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PlanShards.keys(plan, 10, 64));
        assertTrue(e.getMessage().startsWith("keys:"), e.getMessage());
    }
}
