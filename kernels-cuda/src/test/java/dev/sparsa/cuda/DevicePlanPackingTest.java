package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntUnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The head-packed work list ({@link DevicePlan#workItems}) without a device: expanded back into (slice,
 * query row) pairs with their scratch entries, it computes exactly the rows the unpacked list does,
 * each once and into the same entry; a packed
 * item stacks consecutive heads of one GQA group that share its layout and fits the CTA; one-row tiles
 * shared by a group give one item per (group, tile) as long as the group fits the CTA; and plans
 * whose heads share no layout get no packed list.
 */
class DevicePlanPackingTest {

    /** Per-row lists (every row a one-row tile, some rows empty, a dense causal prefix) per layout key. */
    static SparsePlan perRowLists(PlanContext ctx, long seed, IntUnaryOperator layoutOfHead) {
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe("per-row lists");
        Map<Integer, HeadLayout> byKey = new HashMap<>();
        for (int h = 0; h < ctx.shape().qHeads(); h++) {
            int key = layoutOfHead.applyAsInt(h);
            HeadLayout layout = byKey.computeIfAbsent(key, k -> CudaGatherGpuTest.rowLists(ctx, seed + k, 40));
            plan.head(h, layout);
        }
        return plan.build();
    }

    /**
     * (slice, row) → the scratch entry the device writes it to (−1: directly), from the items in the
     * device format's meaning ({@code sparsa_plan.cuh}); fails on a row computed twice.
     */
    private static Map<Long, Long> coverage(SparsePlan plan, List<long[]> items, int rows) {
        Map<Long, Long> seen = new HashMap<>();
        int qh = plan.shape().qHeads();
        for (long[] it : items) {
            int slice = (int) it[1];
            HeadLayout h = plan.layouts().get((int) it[2]);
            int tile = (int) it[3];
            int rowBegin = (int) it[4];
            long entryBase = it[5];
            int pack = (int) it[6];
            int packRows = (int) it[7];
            assertEquals(plan.layoutIndex(slice / qh, slice % qh), (int) it[2], "the item's layout is its slice's");
            if (pack > 1) {
                assertTrue(pack * packRows <= rows, "a stack fits the CTA");
                assertEquals(h.rowCount(tile), packRows, "a stack holds the tile's rows");
                int group = plan.shape().groupSize();
                assertTrue((slice % qh) / group == (slice % qh + pack - 1) / group, "one GQA group");
                for (int j = 0; j < pack; j++) {
                    assertEquals((int) it[2], plan.layoutIndex(slice / qh, slice % qh + j), "stacked heads share the layout");
                    for (int i = 0; i < packRows; i++) {
                        long e = entryBase < 0 ? -1 : entryBase + j * it[8] + i;
                        assertNull(seen.put((long) (slice + j) << 32 | h.row(tile, i), e), "computed twice");
                    }
                }
            } else {
                for (int i = rowBegin; i < Math.min(h.rowCount(tile), rowBegin + rows); i++) {
                    long e = entryBase < 0 ? -1 : entryBase + i - rowBegin;
                    assertNull(seen.put((long) slice << 32 | h.row(tile, i), e), "computed twice");
                }
            }
        }
        return seen;
    }

    private static long[] direct(SparsePlan plan) {
        return DevicePlan.entryBases(plan);
    }

    @ParameterizedTest
    @CsvSource({
        // qHeads, kvHeads, queryLength, causal, items per (group, one-row tile)
        "4, 4, 50, true, 1",
        "8, 2, 77, true, 1",
        "16, 2, 61, false, 1",
        "32, 1, 90, true, 1",
        "128, 1, 33, true, 2",
    })
    void packedItemsCoverEveryRowOnceAndStackWholeGroups(int qHeads, int kvHeads, int n, boolean causal, int perTile) {
        AttentionShape s = new AttentionShape(2, qHeads, kvHeads, n, n + 3, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64)));
        int group = s.groupSize();
        SparsePlan plan = perRowLists(ctx, 11, h -> h / group);
        List<long[]> unpacked = DevicePlan.workItems(plan, direct(plan), 64, false);
        List<long[]> packed = DevicePlan.workItems(plan, direct(plan), 64, true);
        Map<Long, Long> want = coverage(plan, unpacked, 64);
        assertEquals(unpacked.size(), DevicePlan.unpackedItems(plan, 64), "unpacked item count");
        if (group == 1) {
            assertNull(packed, "no two heads share a layout");
            return;
        }
        assertNotNull(packed);
        Map<Long, Long> got = coverage(plan, packed, 64);
        assertEquals(want, got, "the packed list computes the same (slice, row) pairs into the same entries");
        assertTrue(got.values().stream().anyMatch(e -> e >= 0), "rows without keys: the rows go through the merge");
        int oneRowTiles = 0;
        int otherItems = 0;
        for (int l = 0; l < plan.layouts().size(); l++) {
            HeadLayout h = plan.layouts().get(l);
            for (int t = 0; t < h.tileCount(); t++) {
                if (h.rowCount(t) == 1) {
                    oneRowTiles++;
                } else {
                    otherItems += group * ((h.rowCount(t) + 63) / 64);
                }
            }
        }
        assertEquals(s.batch() * (oneRowTiles * perTile + otherItems), packed.size(), "items");
    }

    @ParameterizedTest
    @CsvSource({"32, 1, 64", "32, 8, 64", "16, 2, 128"})
    void dsaPlansMixStacksOfOneRowTilesWithPerHeadItemsOfDenseTiles(int qHeads, int kvHeads, int tileRows) {
        // early causal rows see fewer keys than the budget: TokenListLayout puts them in dense tiles of
        // up to tileRows rows, which stay one item per head (and per 64 rows); the others are stacked
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, 200, 200, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(tileRows, tileRows)));
        SparsePlan plan = CudaGatherBench.dsaPlan(ctx, 40, 3);
        List<long[]> packed = DevicePlan.workItems(plan, direct(plan), 64, true);
        assertNotNull(packed);
        Map<Long, Long> got = coverage(plan, packed, 64);
        assertEquals(coverage(plan, DevicePlan.workItems(plan, direct(plan), 64, false), 64), got);
        assertEquals((long) s.slices() * 200, got.size(), "every (slice, row) once");
        assertTrue(got.values().stream().allMatch(e -> e == -1), "written directly");
        long stacked = packed.stream().filter(it -> it[6] > 1).count();
        long perHead = packed.stream().filter(it -> it[6] <= 1).count();
        assertEquals(kvHeads * (200 - 40), stacked, "a stack per KV head and one-row tile");
        assertEquals((long) qHeads * ((40 + 63) / 64), perHead, "dense tiles: one item per head and 64 rows");
    }

    @Test
    void headsThatDoNotShareALayoutKeepTheUnpackedList() {
        AttentionShape s = new AttentionShape(1, 8, 2, 40, 40, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        SparsePlan own = perRowLists(ctx, 3, h -> h);
        assertNull(DevicePlan.workItems(own, direct(own), 64, true));
        SparsePlan dense = Dense.INSTANCE.plan(ctx);
        // every head shares the dense layout, but its tiles are 40 rows: nothing to stack
        assertNull(DevicePlan.workItems(dense, direct(dense), 64, true));
    }

    @Test
    void plansOfShortTilesGetTheGatherListEvenWithoutSharedLayouts() {
        AttentionShape s = new AttentionShape(1, 8, 2, 200, 200, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        // every head its own per-row lists (one-row tiles, a tenth of the rows without keys): nothing to
        // stack, but one row per tile
        SparsePlan own = perRowLists(ctx, 3, h -> h);
        assertNull(DevicePlan.workItems(own, direct(own), 64, true));
        assertTrue(DevicePlan.fewRowsPerTile(own));
        // 64-row tiles (the last of 8 rows): 25 rows per tile on average
        assertFalse(DevicePlan.fewRowsPerTile(Dense.INSTANCE.plan(ctx)));
        // tiles weigh by the heads that use them: two heads of about 180 one-row tiles among six of four
        // dense tiles give about (2 * 180 + 6 * 200) / (2 * 180 + 6 * 4) = 4.1 rows per tile
        SparsePlan.Builder mixed = SparsePlan.builder(ctx).describe("mixed");
        SparsePlan dense = Dense.INSTANCE.plan(ctx);
        for (int h = 0; h < 8; h++) {
            mixed.head(h, h < 2 ? own.layouts().get(own.layoutIndex(0, h)) : dense.layouts().get(0));
        }
        assertTrue(DevicePlan.fewRowsPerTile(mixed.build()));
        // sixteen query rows or fewer: short tiles in any tiling, the geometry's kernel
        PlanContext few = PlanContext.of(new AttentionShape(1, 8, 2, 16, 200, 64, 64),
                Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        assertFalse(DevicePlan.fewRowsPerTile(perRowLists(few, 3, h -> h)));
    }

    @Test
    void runsOfConsecutiveHeadsAreStackedSeparately() {
        // group of 8: heads 0-2 share layout A, 3 has its own, 4-7 share layout B
        AttentionShape s = new AttentionShape(1, 8, 1, 30, 30, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        SparsePlan plan = perRowLists(ctx, 5, h -> h < 3 ? 0 : h == 3 ? 1 : 2);
        List<long[]> packed = DevicePlan.workItems(plan, direct(plan), 64, true);
        assertNotNull(packed);
        assertEquals(coverage(plan, DevicePlan.workItems(plan, direct(plan), 64, false), 64), coverage(plan, packed, 64));
        for (long[] it : packed) {
            int h = (int) it[1];
            int pack = (int) it[6];
            assertTrue(pack <= 1 || h == 0 && pack == 3 || h == 4 && pack == 4, "stack of heads " + h + "+" + pack);
        }
        int[] w = DevicePlan.packWork(packed);
        boolean anyPacked = false;
        for (int i = 0; i < packed.size(); i++) {
            anyPacked |= w[i * DevicePlanFormat.W_STRIDE + DevicePlanFormat.W_PACK_HEADS] > 1;
        }
        assertTrue(anyPacked, "the device format carries the stack");
    }
}
