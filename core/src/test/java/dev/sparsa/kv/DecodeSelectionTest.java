package dev.sparsa.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DecodeSelectionTest {

    /** Resolved spans admit exactly the pairs of the token rule, are ascending and disjoint. */
    @Test
    void resolvedSpansAdmitExactlyTheTokenRule() {
        SplittableRandom rnd = new SplittableRandom(7);
        KeySpans spans = new KeySpans();
        for (int trial = 0; trial < 400; trial++) {
            int madeAt = rnd.nextInt(0, 90);
            int length = madeAt + rnd.nextInt(0, 12);
            int rows = 1 + rnd.nextInt(6);
            DecodeSelection.Builder b = DecodeSelection.builder(1, 2, new int[] {madeAt});
            b.forced(0, 0, rnd.nextInt(0, 8), rnd.nextInt(0, 3) == 0 ? 0 : rnd.nextInt(1, 20));
            for (int k = rnd.nextInt(0, 5); k < madeAt; k += 1 + rnd.nextInt(12)) {
                int e = Math.min(madeAt, k + 1 + rnd.nextInt(6));
                b.span(0, 0, k, e);
                k = e;
            }
            b.dense(0, 1);
            DecodeSelection sel = b.build();
            for (int g = 0; g < 2; g++) {
                sel.resolve(0, g, length, rows, spans);
                for (int i = 0; i < spans.size(); i++) {
                    assertTrue(spans.start(i) < spans.end(i) && spans.end(i) <= length);
                    assertTrue(i == 0 || spans.start(i) >= spans.end(i - 1), spans.toString());
                }
                for (long p = length - rows; p < length; p++) {
                    for (int key = 0; key < length + 2; key++) {
                        assertEquals(sel.admits(0, g, length, p, key), spans.admits(p, key),
                                "trial " + trial + " head " + g + " row " + p + " key " + key + " " + spans + " " + sel);
                    }
                }
            }
        }
    }

    @Test
    void keysAppendedSinceASelectionComeOnlyThroughTheWindow() {
        DecodeSelection sel = DecodeSelection.builder(1, 1, new int[] {40}).forced(0, 0, 2, 4).span(0, 0, 10, 20)
                .build();
        KeySpans spans = new KeySpans();
        sel.resolve(0, 0, 50, 1, spans);
        assertEquals(2 + 10 + 4, spans.keyCount());
        assertTrue(spans.admits(49, 46) && !spans.admits(49, 45) && !spans.admits(49, 40) && spans.admits(49, 15));
        var shorter = assertThrows(IllegalArgumentException.class, () -> sel.resolve(0, 0, 39, 1, spans));
        assertTrue(shorter.getMessage().contains("sequence 0"), shorter.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> DecodeSelection.builder(1, 1, new int[] {40}).span(0, 0, 30, 41));
        assertThrows(IllegalArgumentException.class,
                () -> DecodeSelection.builder(1, 1, new int[] {40}).span(0, 0, 30, 35).span(0, 0, 34, 36));
    }

    @Test
    void spanTableFlattensEveryEntry() {
        DecodeSelection sel = DecodeSelection.builder(2, 2, new int[] {10, 30}).dense(0, 0).forced(0, 1, 1, 2)
                .span(1, 0, 3, 5).span(1, 0, 8, 9).forced(1, 1, 0, 3).build();
        SpanTable t = sel.spanTable(new int[] {10, 31}, 2);
        assertArrayEquals(new int[] {0, 1, 3, 5, 6}, t.offsets());
        assertArrayEquals(new int[] {0, 0, 7, 3, 8, 27}, t.starts());
        assertArrayEquals(new int[] {10, 1, 10, 5, 9, 31}, t.ends());
        assertEquals(KeySpans.UNBANDED, t.maxDelta()[0]);
        assertEquals(1, t.maxDelta()[2]);
        assertEquals(4, t.keyCount(1, 1));
    }

    @Test
    void splitRule() {
        SplitKv rule = SplitKv.rule();
        // enough units to fill the workers: no split
        assertEquals(Integer.MAX_VALUE, rule.chunkKeys(1, 8, 32768, 2));
        assertEquals(Integer.MAX_VALUE, rule.chunkKeys(64, 8, 32768, 108));
        // 128 units for 132 SMs x 4: 4 splits of 8192
        assertEquals(8192, rule.chunkKeys(16, 8, 32768, 132));
        // 24 units: 22 splits (rounded down), 1490 keys rounded up to the granule
        assertEquals(1536, rule.chunkKeys(3, 8, 32768, 132));
        // one unit on two workers: 8 items of 4096
        assertEquals(4096, rule.chunkKeys(1, 1, 32768, 2));
        // short lists are never split
        assertEquals(Integer.MAX_VALUE, rule.chunkKeys(1, 1, 1024, 64));
        // 2 units for 132 SMs x 4: 264 splits wanted, the minimum chunk of 1024 wins
        assertEquals(1024, rule.chunkKeys(1, 2, 131072, 132));
        assertEquals(1280, rule.chunkKeys(1, 1, 10000, 2));
        // the GPU's parameters for the default rule: one item per SM, in one wave
        SplitKv gpu = rule.onGpu();
        assertEquals(SplitKv.GPU_DEFAULT, gpu);
        assertEquals(SplitKv.fixed(64), SplitKv.fixed(64).onGpu());
        assertEquals(SplitKv.rule(512, 2), SplitKv.rule(512, 2).onGpu());
        assertEquals(Integer.MAX_VALUE, gpu.chunkKeys(16, 8, 32768, 132));
        assertEquals(8192, gpu.chunkKeys(4, 8, 32768, 132));
        // 24 units: 5 splits, not 6, so that the 120 items start in one wave
        assertEquals(6656, gpu.chunkKeys(3, 8, 32768, 132));
        // 8 units at 128k: 16 splits of 8192 (128 items), not 17 (136)
        assertEquals(8192, gpu.chunkKeys(1, 8, 131072, 132));
        assertEquals(Integer.MAX_VALUE, gpu.chunkKeys(1, 1, 256, 64));
        assertEquals(512, SplitKv.rule(256, 1).chunkKeys(1, 1, 1000, 2));
        assertEquals(16, SplitKv.fixed(16).chunkKeys(4, 4, 10, 1));
        assertEquals(Integer.MAX_VALUE, SplitKv.none().chunkKeys(1, 1, 1 << 20, 64));
        assertEquals(3, SplitKv.chunks(4097, 2048));
        assertEquals(1, SplitKv.chunks(0, 2048));
        assertThrows(IllegalArgumentException.class, () -> rule.chunkKeys(0, 1, 10, 1));
    }

    @Test
    void bestBreaksTiesTowardsTheLowerIndexAndRanksNaNLast() {
        float[] s = {1f, 3f, Float.NaN, 3f, -0f, 0f, 2f, Float.NEGATIVE_INFINITY};
        assertArrayEquals(new int[] {1, 3}, DecodeSelector.best(s, s.length, 2));
        assertArrayEquals(new int[] {0, 1, 3, 6}, DecodeSelector.best(s, s.length, 4));
        assertArrayEquals(new int[] {0, 1, 3, 4, 6}, DecodeSelector.best(s, s.length, 5));
        assertArrayEquals(new int[] {0, 1, 3, 4, 5, 6, 7}, DecodeSelector.best(s, s.length, 7));
    }

    @Test
    void reuseRule() {
        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 2, 1, 64, 8, 8);
        Tensor row = Tensor.allocate(DType.F32, Layout.BHSD, 2, 1, 1, 8);
        DecodePattern p = DecodePattern.sinkWindow(1, 4);
        SelectionReuse reuse = SelectionReuse.forSteps(2);
        int[] made = {0};
        java.util.function.Supplier<DecodeSelection> fresh = () -> {
            made[0]++;
            return DecodeSelection.builder(2, 1, cache.lengths()).build();
        };
        cache.appendStep(row, row);
        DecodeSelection first = reuse.obtain(cache, p, fresh);
        assertTrue(reuse.lastWasFresh());
        assertEquals(first, reuse.obtain(cache, p, fresh)); // another layer of the same step
        for (int step = 1; step <= 2; step++) {
            cache.appendStep(row, row);
            assertFalse(reuse.needsFresh(cache, p) && step <= 2);
            assertEquals(first, reuse.obtain(cache, p, fresh));
        }
        cache.appendStep(row, row);
        assertTrue(reuse.needsFresh(cache, p));
        DecodeSelection third = reuse.obtain(cache, p, fresh);
        assertTrue(reuse.lastWasFresh() && third != first);
        // a shorter sequence, another pattern, or refresh() force a fresh selection
        cache.truncate(1, 2);
        assertTrue(reuse.needsFresh(cache, p));
        reuse.obtain(cache, p, fresh);
        assertTrue(reuse.needsFresh(cache, DecodePattern.sinkWindow(1, 5)));
        reuse.refresh();
        assertTrue(reuse.needsFresh(cache, p));
        assertEquals(3, made[0]);
    }
}
