package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class HeadLayoutTest {

    /** The row-to-tile index lists, for every row, exactly the (tile, position) pairs that hold it, in tile order. */
    @Test
    void rowTilesIndexEveryOccurrence() {
        SplittableRandom rnd = new SplittableRandom(31);
        for (int trial = 0; trial < 200; trial++) {
            PlanContext c = ctx(1 + rnd.nextInt(70), 1 + rnd.nextInt(70), rnd.nextBoolean(), 8 * (1 + rnd.nextInt(3)), 8);
            HeadLayout l = RandomPlans.randomLayout(rnd, c, false);
            RowTiles rt = l.rowTiles();
            List<List<int[]>> expected = new ArrayList<>();
            for (int r = 0; r < l.queryLength(); r++) {
                expected.add(new ArrayList<>());
            }
            int entry = 0;
            for (int t = 0; t < l.tileCount(); t++) {
                assertEquals(entry, rt.firstEntry(t));
                for (int i = 0; i < l.rowCount(t); i++, entry++) {
                    expected.get(l.row(t, i)).add(new int[] {t, entry});
                }
            }
            assertEquals(entry, rt.entryCount());
            for (int r = 0; r < l.queryLength(); r++) {
                List<int[]> want = expected.get(r);
                assertEquals(want.size(), rt.end(r) - rt.start(r), "row " + r);
                assertEquals(!want.isEmpty(), rt.covers(r));
                for (int j = 0; j < want.size(); j++) {
                    assertEquals(want.get(j)[0], rt.tile(rt.start(r) + j), "tile of row " + r);
                    assertEquals(want.get(j)[1], rt.entry(rt.start(r) + j), "entry of row " + r);
                }
            }
            assertEquals(l.queryLength() + 1, rt.offsets().length);
            assertTrue(l.rowTiles() == rt, "built once");
        }
    }

    static PlanContext ctx(int nq, int nk, boolean causal, int rows, int cols) {
        return new PlanContext(AttentionShape.of(1, 1, nq, nk, 8), new TileGeometry(rows, cols), causal, nk - nq);
    }

    @Test
    void tileNormalisesBlocksAndKeys() {
        PlanContext c = ctx(16, 40, true, 8, 8); // offset 24: row r sits at position r + 24
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate());
        b.tile(0, 8)
                .partial(1).partial(1).full(0).partial(0) // repeat dropped; partial 0 merged into full 0
                .partial(4) // keys 32..39 vs positions 24..31: nothing causal, dropped
                .partial(1) // keys 8..15 all before position 24: promoted to full
                .partial(3) // keys 24..31 straddle the diagonal: stays partial
                .gather(20, 0.5f).gather(20, 0.5f).gather(17, 0f).gather(9, 0f) // 9 sits in block 1: dropped
                .unconditional(39, -1f)
                .end();
        HeadLayout l = b.build();
        assertEquals(2, l.fullEnd(0) - l.fullStart(0));
        assertEquals(0, l.fullBlock(0));
        assertEquals(1, l.fullBlock(1));
        assertEquals(1, l.partialEnd(0) - l.partialStart(0));
        assertEquals(3, l.partialBlock(0));
        assertEquals(List.of(17, 20), keys(l, 0));
        assertEquals(0f, l.gatherLogWeight(0));
        assertEquals(0.5f, l.gatherLogWeight(1));
        assertEquals(39, l.unconditionalKey(0));
        assertEquals(-1f, l.unconditionalLogWeight(0));
        // 8 rows x (16 full keys + causal part of block 3 + key 17 and 20 + the unconditional key)
        assertEquals(8 * 16 + (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) + 8 * 2 + 8, l.pairsAdmitted());
        assertEquals(8L * (16 + 8 + 2 + 1), l.pairsVisited());
        assertFalse(l.coversEachRowOnce());
        assertTrue(l.rowsDisjoint());
    }

    @Test
    void conflictingKeysAreRefused() {
        PlanContext c = ctx(8, 32, false, 8, 8);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.tile(0, 8).full(1).gather(9, 1f).end());
        assertTrue(e.getMessage().startsWith("gathered"), e.getMessage());
        HeadLayoutBuilder b2 = HeadLayout.builder(c, c.basePredicate());
        e = assertThrows(IllegalArgumentException.class, () -> b2.tile(0, 8).gather(3, 1f).gather(3, 2f).end());
        assertTrue(e.getMessage().contains("different log-weights"), e.getMessage());
        HeadLayoutBuilder b3 = HeadLayout.builder(c, c.basePredicate());
        e = assertThrows(IllegalArgumentException.class, () -> b3.tile(0, 8).partial(0).unconditional(3, 0f).end());
        assertTrue(e.getMessage().startsWith("unconditional"), e.getMessage());
    }

    @Test
    void badRowsBlocksAndKeysNameTheArgument() {
        PlanContext c = ctx(10, 20, false, 8, 8);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate());
        assertStarts("rows", () -> b.tile(4, 8));
        assertStarts("rows", () -> b.tile(0, 9));
        assertStarts("rows", () -> b.listedTile(new int[] {1, 1}));
        assertStarts("rows", () -> b.listedTile(new int[] {10}));
        HeadLayoutBuilder.Tile t = b.tile(0, 8);
        assertStarts("block", () -> t.full(3));
        assertStarts("key", () -> t.gather(20));
        assertStarts("logWeight", () -> t.gather(2, Float.NaN));
        assertThrows(IllegalStateException.class, () -> b.tile(8, 2));
        t.end();
        assertThrows(IllegalStateException.class, t::end);
    }

    /** The counters agree with the token semantics on random layouts. */
    @Property(tries = 60)
    void countersMatchTokenSemantics(@ForAll @IntRange(min = 0, max = 40) int nq, @ForAll @IntRange(min = 0, max = 45) int nk,
                                     @ForAll boolean causal, @ForAll @IntRange(min = 1, max = 4) int rows8,
                                     @ForAll @IntRange(min = 1, max = 3) int cols8, @ForAll long seed) {
        PlanContext c = ctx(nq, nk, causal, rows8 * 8, cols8 * 8);
        HeadLayout l = RandomPlans.randomLayout(new SplittableRandom(seed), c, true);
        long admitted = 0;
        Set<Long> seenPairs = new HashSet<>();
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int row = l.row(t, i);
                long[] n = {0};
                l.forEachAdmittedKey(t, row, (k, w) -> {
                    n[0]++;
                    assertTrue(seenPairs.add((long) row << 32 | k), "pair (" + row + ", " + k + ") admitted twice");
                    assertTrue(k >= 0 && k < nk);
                });
                admitted += n[0];
            }
        }
        assertEquals(admitted, l.pairsAdmitted());
        assertTrue(l.pairsVisited() >= l.pairsAdmitted());
    }

    /**
     * Tiles of gathered keys only (the LSH shape) take a bulk path; it must give the same layout as
     * key-by-key gathering: same keys, same counters, under a causal-only, a banded or no predicate.
     */
    @Property(tries = 80)
    void gatheredOnlyTilesMatchKeyByKeyBuilding(@ForAll @IntRange(min = 1, max = 40) int nq,
                                                 @ForAll @IntRange(min = 1, max = 45) int nk, @ForAll boolean causal,
                                                 @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll long seed) {
        PlanContext c = ctx(nq, nk, causal, 8, 8);
        ElementPredicate p = switch (kind) {
            case 0 -> c.basePredicate();
            case 1 -> c.basePredicate().withBand(0, 5);
            default -> c.basePredicate().withSinks(3);
        };
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder bulk = HeadLayout.builder(c, p);
        HeadLayoutBuilder single = HeadLayout.builder(c, p);
        for (int t = 0; t < 6; t++) {
            int[] keys = rnd.ints(rnd.nextInt(0, 12), 0, nk).sorted().distinct().toArray();
            boolean listed = rnd.nextBoolean();
            int[] rows = rnd.ints(rnd.nextInt(1, 8), 0, nq).distinct().toArray();
            int start = rnd.nextInt(0, nq);
            int count = Math.min(8, nq - start);
            HeadLayoutBuilder.Tile a = listed ? bulk.listedTile(rows) : bulk.tile(start, count);
            HeadLayoutBuilder.Tile b = listed ? single.listedTile(rows) : single.tile(start, count);
            a.gatherAll(keys, 0, keys.length);
            for (int k : keys) {
                b.gather(k);
            }
            if (t == 2 && (keys.length == 0 || keys[keys.length - 1] < nk - 1)) {
                a.gather(nk - 1, 0.5f); // a weighted key, still ascending
                b.gather(nk - 1, 0.5f);
            }
            if (t == 3 && keys.length > 1) {
                a.gather(keys[0]); // out of order: the general path again
                b.gather(keys[0]);
            }
            a.end();
            b.end();
        }
        HeadLayout x = bulk.build();
        HeadLayout y = single.build();
        assertEquals(y.pairsAdmitted(), x.pairsAdmitted());
        assertEquals(y.pairsVisited(), x.pairsVisited());
        assertEquals(java.util.Arrays.toString(y.gatherKeys()), java.util.Arrays.toString(x.gatherKeys()));
        assertEquals(java.util.Arrays.toString(y.gatherOffsets()), java.util.Arrays.toString(x.gatherOffsets()));
        assertEquals(java.util.Arrays.toString(y.gatherLogWeights()), java.util.Arrays.toString(x.gatherLogWeights()));
        long admitted = 0;
        for (int t = 0; t < x.tileCount(); t++) {
            for (int i = 0; i < x.rowCount(t); i++) {
                long[] n = {0};
                x.forEachAdmittedKey(t, x.row(t, i), (k, w) -> n[0]++);
                admitted += n[0];
            }
        }
        assertEquals(admitted, x.pairsAdmitted());
    }

    /**
     * A tile of an ascending range of a shared row array ({@code listedTile(rows, from, to)}, the
     * array reused afterwards) gives the layout that a copied list gives: same rows, blocks, keys and
     * counters, under a causal-only, a banded or no predicate.
     */
    @Property(tries = 80)
    void listedRangeTilesMatchCopiedLists(@ForAll @IntRange(min = 1, max = 40) int nq,
                                          @ForAll @IntRange(min = 1, max = 45) int nk, @ForAll boolean causal,
                                          @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll long seed) {
        PlanContext c = ctx(nq, nk, causal, 8, 8);
        ElementPredicate p = switch (kind) {
            case 0 -> c.basePredicate();
            case 1 -> c.basePredicate().withBand(0, 5);
            default -> c.basePredicate().withSinks(3);
        };
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder ranged = HeadLayout.builder(c, p);
        HeadLayoutBuilder copied = HeadLayout.builder(c, p);
        int[] shared = new int[20];
        for (int t = 0; t < 6; t++) {
            int[] rows = rnd.ints(rnd.nextInt(1, 9), 0, nq).sorted().distinct().toArray();
            int from = rnd.nextInt(0, 5);
            System.arraycopy(rows, 0, shared, from, rows.length);
            HeadLayoutBuilder.Tile a = ranged.listedTile(shared, from, from + rows.length);
            HeadLayoutBuilder.Tile b = copied.listedTile(rows);
            int block = rnd.nextInt(0, c.keyBlocks());
            a.blockByPredicate(block);
            b.blockByPredicate(block);
            int key = rnd.nextInt(0, nk);
            if (key / 8 != block) {
                a.gather(key);
                b.gather(key);
            }
            a.end();
            b.end();
            java.util.Arrays.fill(shared, -7); // the ended tile no longer reads the array
        }
        HeadLayout x = ranged.build();
        HeadLayout y = copied.build();
        assertEquals(y.pairsAdmitted(), x.pairsAdmitted());
        assertEquals(y.pairsVisited(), x.pairsVisited());
        assertEquals(java.util.Arrays.toString(y.rowList()), java.util.Arrays.toString(x.rowList()));
        assertEquals(java.util.Arrays.toString(y.rowListOffsets()), java.util.Arrays.toString(x.rowListOffsets()));
        assertEquals(java.util.Arrays.toString(y.fullBlocks()), java.util.Arrays.toString(x.fullBlocks()));
        assertEquals(java.util.Arrays.toString(y.partialBlocks()), java.util.Arrays.toString(x.partialBlocks()));
        assertEquals(java.util.Arrays.toString(y.gatherKeys()), java.util.Arrays.toString(x.gatherKeys()));
        assertEquals(java.util.Arrays.toString(y.gatherOffsets()), java.util.Arrays.toString(x.gatherOffsets()));
    }

    @Test
    void listedRangeTilesRejectUnorderedOrOutOfRangeRows() {
        PlanContext c = ctx(10, 20, false, 8, 8);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate());
        int[] rows = {3, 5, 5, 2, 10, 4, -1};
        assertStarts("rows", () -> b.listedTile(rows, 1, 3)); // repeated
        assertStarts("rows", () -> b.listedTile(rows, 2, 4)); // descending
        assertStarts("rows", () -> b.listedTile(rows, 3, 5)); // past the queries
        assertStarts("rows", () -> b.listedTile(rows, 6, 7)); // negative
        assertStarts("rows", () -> b.listedTile(rows, 2, 2)); // empty
        assertStarts("rows", () -> b.listedTile(rows, 0, 8)); // past the array
        assertStarts("rows", () -> b.listedTile(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8}, 0, 9)); // more than a tile
        b.listedTile(rows, 0, 2).full(0).end();
        assertEquals(2, b.build().rowCount(0));
    }

    /**
     * Unconditional keys added in runs ({@code unconditionalAll}, into a reserved builder) give the
     * layout that key-by-key adding gives, weights included: none are stored until a tile has one,
     * then the earlier keys read 0.
     */
    @Property(tries = 80)
    void unconditionalRunsMatchKeyByKeyBuilding(@ForAll @IntRange(min = 8, max = 40) int nq,
                                                @ForAll @IntRange(min = 1, max = 60) int nk, @ForAll boolean causal,
                                                @ForAll boolean reserve, @ForAll long seed) {
        PlanContext c = ctx(nq, nk, causal, 8, 8);
        ElementPredicate p = c.basePredicate().withBand(0, 3);
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder bulk = HeadLayout.builder(c, p);
        if (reserve) {
            bulk.reserve(6, 0, rnd.nextInt(0, 40));
        }
        HeadLayoutBuilder single = HeadLayout.builder(c, p);
        for (int t = 0; t < 6; t++) {
            int start = rnd.nextInt(0, nq - 7);
            // one block by predicate, and unconditional keys below it (outside every visited block)
            int block = Math.min(c.keyBlocks() - 1, start / 8);
            int limit = Math.min(nk, block * 8);
            int[] keys = limit == 0 ? new int[0] : rnd.ints(rnd.nextInt(0, 10), 0, limit).sorted().distinct().toArray();
            HeadLayoutBuilder.Tile a = bulk.tile(start, 8).blockByPredicate(block);
            HeadLayoutBuilder.Tile b = single.tile(start, 8).blockByPredicate(block);
            int cut = keys.length / 2;
            a.unconditionalAll(keys, 0, cut).unconditionalAll(keys, cut, keys.length);
            for (int k : keys) {
                b.unconditional(k, 0f);
            }
            if (t == 4 && keys.length > 0) {
                a.unconditionalAll(new int[] {keys[0]}, 0, 1); // a repeat, out of order: the general path
                b.unconditional(keys[0], 0f);
            }
            if (t == 3 && keys.length > 1) {
                a.unconditional(keys[keys.length - 1], 0f); // a repeat with weight 0 merges
                b.unconditional(keys[keys.length - 1], 0f);
            }
            a.end();
            b.end();
        }
        HeadLayout x = bulk.build();
        HeadLayout y = single.build();
        assertEquals(y.pairsAdmitted(), x.pairsAdmitted());
        assertEquals(y.pairsVisited(), x.pairsVisited());
        assertEquals(java.util.Arrays.toString(y.unconditionalKeys()), java.util.Arrays.toString(x.unconditionalKeys()));
        assertEquals(java.util.Arrays.toString(y.unconditionalOffsets()), java.util.Arrays.toString(x.unconditionalOffsets()));
        assertEquals(java.util.Arrays.toString(y.unconditionalLogWeights()), java.util.Arrays.toString(x.unconditionalLogWeights()));
    }

    /** Weights arrive after unweighted tiles: the earlier unconditional keys read 0, the later their own. */
    @Test
    void unconditionalWeightsAfterUnweightedTilesAreFilledIn() {
        PlanContext c = ctx(24, 40, true, 8, 8);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate().withBand(0, 3)).reserve(3, 0, 10);
        b.tile(16, 8).unconditionalAll(new int[] {0, 1, 2}, 0, 3).end();
        b.tile(8, 8).unconditional(0, -1.5f).unconditional(1, 0f).end();
        HeadLayout l = b.build();
        assertEquals("[0.0, 0.0, 0.0, -1.5, 0.0]", java.util.Arrays.toString(l.unconditionalLogWeights()));
        assertThrows(IllegalArgumentException.class, () -> HeadLayout.builder(c, c.basePredicate()).reserve(-1, 0, 0));
        assertThrows(IllegalArgumentException.class,
                () -> HeadLayout.builder(c, c.basePredicate()).tile(0, 8).unconditionalAll(new int[] {1}, 0, 2));
        assertThrows(IllegalArgumentException.class,
                () -> HeadLayout.builder(c, c.basePredicate()).tile(0, 8).unconditionalAll(new int[] {40}, 0, 1));
    }

    /** A tile's reused lists carry nothing over: bulk-gathered keys after a weighted tile weigh 0. */
    @Test
    void bulkGatheredKeysAfterAWeightedTileHaveWeightZero() {
        PlanContext c = ctx(16, 400, true, 8, 8);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate());
        HeadLayoutBuilder.Tile first = b.tile(0, 8);
        for (int k = 0; k < 40; k++) {
            first.gather(k, 0.5f);
        }
        first.end();
        int[] keys = java.util.stream.IntStream.range(100, 200).toArray(); // grows the reused list
        b.tile(8, 8).gatherAll(keys, 0, keys.length).end();
        HeadLayout l = b.build();
        for (int i = l.gatherStart(1); i < l.gatherEnd(1); i++) {
            assertEquals(0f, l.gatherLogWeight(i), "key " + l.gatherKey(i));
        }
        assertEquals(0.5f, l.gatherLogWeight(l.gatherStart(0)));
    }

    /** The dense plan admits exactly the causal (or all) pairs, for any offset and geometry. */
    @Property(tries = 60)
    void densePlanIsTheFullMask(@ForAll @IntRange(min = 0, max = 50) int nq, @ForAll @IntRange(min = 0, max = 50) int nk,
                                @ForAll boolean causal, @ForAll @IntRange(min = -20, max = 60) int offset,
                                @ForAll @IntRange(min = 1, max = 3) int rows8, @ForAll @IntRange(min = 1, max = 3) int cols8) {
        PlanContext c = new PlanContext(AttentionShape.of(1, 2, nq, nk, 8), new TileGeometry(rows8 * 8, cols8 * 8), causal, offset);
        SparsePlan p = Dense.INSTANCE.plan(c);
        HeadLayout l = p.layout(0, 1);
        assertTrue(l.coversEachRowOnce() || nq == 0);
        long expected = 0;
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int row = l.row(t, i);
                List<Integer> got = new ArrayList<>();
                l.forEachAdmittedKey(t, row, (k, w) -> got.add(k));
                List<Integer> want = new ArrayList<>();
                for (int k = 0; k < nk; k++) {
                    if (!causal || row + offset >= k) {
                        want.add(k);
                    }
                }
                expected += want.size();
                assertEquals(want, got.stream().sorted().toList(), "row " + row);
            }
        }
        assertEquals(expected * 2, p.pairsAdmitted());
        assertEquals(p.pairsAdmissible() == 0 ? 0.0 : 1.0, p.density(), 1e-12);
    }

    @Test
    void planBuilderChecksSlicesAndLayouts() {
        PlanContext c = new PlanContext(AttentionShape.of(2, 2, 8, 8, 8), TileGeometry.DEFAULT, false, 0);
        HeadLayout l = HeadLayout.builder(c, c.basePredicate()).tile(0, 8).full(0).end().build();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SparsePlan.builder(c).head(0, l).build());
        assertTrue(e.getMessage().contains("batch 0, head 1"), e.getMessage());
        PlanContext other = new PlanContext(AttentionShape.of(2, 2, 8, 9, 8), TileGeometry.DEFAULT, false, 0);
        assertStarts("layout", () -> SparsePlan.builder(other).allSlices(l));
        SparsePlan p = SparsePlan.builder(c).head(0, l).head(1, l).build();
        assertEquals(1, p.layouts().size());
        assertEquals(4 * 64, p.pairsAdmitted());
        assertEquals(1.0, p.density());
    }

    static List<Integer> keys(HeadLayout l, int tile) {
        List<Integer> k = new ArrayList<>();
        for (int i = l.gatherStart(tile); i < l.gatherEnd(tile); i++) {
            k.add(l.gatherKey(i));
        }
        return k;
    }

    static void assertStarts(String argument, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().startsWith(argument), "expected '" + argument + "…', got: " + e.getMessage());
    }
}
