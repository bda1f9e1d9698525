package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.testing.RandomPlans;
import java.util.BitSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class BlockExpansionTest {

    /** The keys a slice's tiles admit for each row. */
    private static BitSet[] admitted(SparsePlan plan, int b, int h) {
        HeadLayout lay = plan.layout(b, h);
        BitSet[] rows = new BitSet[plan.shape().queryLength()];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = new BitSet();
        }
        for (int t = 0; t < lay.tileCount(); t++) {
            for (int i = 0; i < lay.rowCount(t); i++) {
                int r = lay.row(t, i);
                lay.forEachAdmittedKey(t, r, (k, w) -> rows[r].set(k));
            }
        }
        return rows;
    }

    @Test
    void theExpandedFormAdmitsASupersetInsideTheCausalMaskInFullTiles() {
        SplittableRandom rnd = new SplittableRandom(3);
        int replaceable = 0;
        for (int i = 0; i < 400; i++) {
            AttentionShape s = new AttentionShape(1, 2, 1, rnd.nextInt(1, 200), rnd.nextInt(1, 200), 8, 8);
            boolean causal = rnd.nextBoolean();
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal)
                    .withGeometry(new TileGeometry(8 * rnd.nextInt(1, 5), 8 * rnd.nextInt(1, 5))));
            SparsePlan plan = RandomPlans.randomPlan(rnd.nextLong(), ctx, false);
            if (BlockExpansion.whyNotReplaceable(plan) != null) {
                continue;
            }
            replaceable++;
            SparsePlan ex = BlockExpansion.expand(plan);
            assertEquals(plan.shape(), ex.shape());
            for (int h = 0; h < s.qHeads(); h++) {
                BitSet[] before = admitted(plan, 0, h);
                BitSet[] after = admitted(ex, 0, h);
                for (int r = 0; r < before.length; r++) {
                    BitSet missing = (BitSet) before[r].clone();
                    missing.andNot(after[r]);
                    assertTrue(missing.isEmpty(), "row " + r + " lost keys " + missing + " in " + ctx);
                    long qPos = (long) r + ctx.queryOffset();
                    int row = r;
                    after[r].stream().forEach(k -> assertTrue(!causal || k <= qPos,
                            "row " + row + " admits key " + k + " past the causal mask"));
                }
                HeadLayout lay = ex.layout(0, h);
                for (int t = 0; t < lay.tileCount(); t++) {
                    assertFalse(lay.isListed(t));
                    assertEquals(0, lay.rowStart(t) % ctx.geometry().tileRows());
                    assertEquals(lay.gatherStart(t), lay.gatherEnd(t), "no gathered keys");
                    assertEquals(lay.unconditionalStart(t), lay.unconditionalEnd(t));
                }
            }
        }
        assertTrue(replaceable > 40, "enough replaceable plans drawn: " + replaceable);
    }

    @Test
    void plansWithWeightsOrPairsPastTheCausalMaskAreNotReplaceable() {
        AttentionShape s = AttentionShape.of(1, 1, 16, 16, 8);
        PlanContext causal = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(8, 8)));
        PlanContext open = PlanContext.of(s, Options.defaults().withGeometry(new TileGeometry(8, 8)));

        HeadLayout weighted = HeadLayout.builder(open, open.basePredicate()).tile(0, 8).gather(3, 0.5f).end().build();
        assertEquals("its gathered keys carry log-weights",
                BlockExpansion.whyNotReplaceable(SparsePlan.uniform(open, weighted, "w")));

        HeadLayout uncondWeighted = HeadLayout.builder(open, open.basePredicate()).tile(0, 8).unconditional(3, -1f).end().build();
        assertEquals("its unconditional keys carry log-weights",
                BlockExpansion.whyNotReplaceable(SparsePlan.uniform(open, uncondWeighted, "u")));

        // a full block above the diagonal: rows 0..7 would see keys 8..15
        HeadLayout fullAbove = HeadLayout.builder(causal, causal.basePredicate()).tile(0, 8).full(1).end().build();
        assertTrue(BlockExpansion.whyNotReplaceable(SparsePlan.uniform(causal, fullAbove, "f")).startsWith("a full block"));

        HeadLayout uncondAhead = HeadLayout.builder(causal, causal.basePredicate()).tile(0, 8).unconditional(9, 0f).end().build();
        assertTrue(BlockExpansion.whyNotReplaceable(SparsePlan.uniform(causal, uncondAhead, "u")).startsWith("an unconditional"));

        // an unconditional key inside the mask, unweighted, is fine; so is the same plan without causality
        HeadLayout uncondInside = HeadLayout.builder(causal, causal.basePredicate()).tile(8, 8).unconditional(3, 0f).end().build();
        assertNull(BlockExpansion.whyNotReplaceable(SparsePlan.uniform(causal, uncondInside, "u")));
        HeadLayout openAhead = HeadLayout.builder(open, open.basePredicate()).tile(0, 8).full(0).unconditional(9, 0f).end().build();
        assertNull(BlockExpansion.whyNotReplaceable(SparsePlan.uniform(open, openAhead, "o")));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockExpansion.expand(SparsePlan.uniform(open, weighted, "w")));
        assertTrue(e.getMessage().contains("log-weights"), e.getMessage());
    }

    @Test
    void oneRowTilesBecomeOneFullTileOverTheUnionOfTheirBlocks() {
        AttentionShape s = AttentionShape.of(1, 1, 16, 64, 8);
        PlanContext ctx = PlanContext.of(s, Options.defaults().withGeometry(new TileGeometry(8, 16)));
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int r = 0; r < 8; r++) {
            b.listedTile(new int[] {r}).gather(r * 2).end(); // keys 0..14: block 0
        }
        b.listedTile(new int[] {12}).gather(40).gather(63).end(); // blocks 2 and 3, rows 8..15
        SparsePlan ex = BlockExpansion.expand(SparsePlan.uniform(ctx, b.build(), "one-row"));
        HeadLayout lay = ex.layout(0, 0);
        assertEquals(2, lay.tileCount());
        assertEquals(8, lay.rowCount(0));
        assertEquals(1, lay.fullEnd(0) - lay.fullStart(0));
        assertEquals(0, lay.fullBlock(lay.fullStart(0)));
        assertEquals(2, lay.fullEnd(1) - lay.fullStart(1));
        assertNotNull(ex.description());
        assertEquals(8L * 16 + 8L * 32, ex.pairsVisited());
    }
}
