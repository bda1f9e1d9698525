package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PlanFeaturesTest {

    @Test
    void denseFeaturesWithoutAPlanEqualThoseOfDensesPlan() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < 300; i++) {
            int kv = rnd.nextInt(1, 3);
            AttentionShape s = new AttentionShape(rnd.nextInt(1, 3), kv * rnd.nextInt(1, 4), kv, rnd.nextInt(1, 300),
                    rnd.nextInt(1, 300), 8 * rnd.nextInt(1, 5), 8 * rnd.nextInt(1, 5));
            TileGeometry g = new TileGeometry(8 * rnd.nextInt(1, 9), 8 * rnd.nextInt(1, 9));
            Integer offset = rnd.nextInt(3) == 0 ? rnd.nextInt(-50, 50) : null;
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(rnd.nextBoolean()).withQueryOffset(offset)
                    .withGeometry(g));
            int quantum = new int[] {1, 8, 16, 64}[rnd.nextInt(4)];
            boolean stack = rnd.nextBoolean();
            assertEquals(PlanFeatures.of(Dense.INSTANCE.plan(ctx), quantum, stack), PlanFeatures.dense(ctx, quantum, stack),
                    ctx + " quantum " + quantum + " stack " + stack);
        }
    }

    @Test
    void rowsArePaddedToTheQuantumAndGroupsStacked() {
        // 2 kv heads, groups of 4, one layout for all: stacked items hold 4 heads' rows
        AttentionShape s = new AttentionShape(1, 8, 2, 3, 100, 16, 8);
        PlanContext ctx = PlanContext.of(s, Options.defaults().withGeometry(new TileGeometry(8, 32)));
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, 10));
        b.listedTile(new int[] {2}).gatherAll(new int[] {1, 7, 99}, 0, 3).end();
        b.tile(0, 2).full(0).partial(3).end(); // block 3 holds keys 96..99: 4 keys
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "t");
        PlanFeatures stacked = PlanFeatures.of(plan, 16, true);
        // items: 2 tiles × 2 kv groups; rows: (1 + 2) × 8 heads
        assertEquals(4, stacked.items());
        assertEquals(24, stacked.rows());
        // tile 0: 4 stacked rows padded to 16, 3 keys; tile 1: 8 stacked rows padded to 16, 32 + 4 keys
        assertEquals(2 * (16 * 3 + 16 * 36), stacked.paddedRowKeys());
        assertEquals(0, stacked.causalMaskPairs());
        // element tests per (row, key) of one head: tile 0 1 row × 3 gathered, tile 1 2 rows × 4 partial
        assertEquals(2 * (3 + 8), stacked.predicateMaskPairs());
        assertEquals(2 * 36, stacked.blockKeys());
        assertEquals(2 * 3, stacked.listedKeys());
        assertEquals(2 * (1 + 2), stacked.chunks());
        PlanFeatures single = PlanFeatures.of(plan, 16, false);
        assertEquals(16, single.items());
        assertEquals(8 * (16 * 3 + 16 * 36), single.paddedRowKeys());
        assertEquals(8 * (3 + 8), single.predicateMaskPairs());
    }
}
