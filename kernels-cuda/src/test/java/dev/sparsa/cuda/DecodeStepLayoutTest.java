package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The prepared decode step's metadata without a GPU: the item and merge counts stay fixed while the
 * lengths change, every (sequence, KV head, pair tile) visits exactly its keys {@code [0, length)}
 * in chunk order, scratch rows never overlap, and the metadata, read with the scalars the step
 * passes by {@link DecodeMetaInterpreter} (the kernels' contract in doubles), gives the fp64 decode
 * oracle's outputs and LSEs; for Quest and top-k steps, with the lists filled from {@code
 * DecodeSelector}'s selection as the choice kernels write them, the oracle's decode of that selection,
 * and the counts the choice kernels read are a direct call's.
 */
class DecodeStepLayoutTest {
    private static final int[] LENGTHS = {0, 1, 6, 63, 64, 65, 300, 1000};
    private static final int MAX = 1024;
    private static final int KV_HEADS = 2;
    private static final int GROUP = 3;
    private static final int ROWS = 7;
    private static final int DIM = 16;

    @Test
    void countsStayFixedAndEveryTileVisitsItsKeysOnceInOrder() {
        for (int fixed : new int[] {0, 256}) {
            int chunks = fixed == 0 ? 5 : MAX / fixed;
            DecodeStepLayout l = new DecodeStepLayout(LENGTHS.length, KV_HEADS, GROUP * ROWS, chunks, fixed, 0);
            assertEquals(2, l.tiles, "21 pairs make a tile of 16 and one of 5");
            assertEquals(LENGTHS.length * KV_HEADS * 2 * chunks, l.items);
            assertEquals(LENGTHS.length * KV_HEADS * 2, l.merges);
            int[] meta = new int[l.size];
            int[] previous = null;
            for (int shift : new int[] {0, 1, 17, 24}) {
                int[] lengths = Arrays.stream(LENGTHS).map(x -> Math.min(MAX, x + shift)).toArray();
                l.write(meta, lengths, null);
                // the fields that a captured graph cannot follow stay put: everything but lengths and key ranges
                int[] fixedPart = fixedFields(l, meta);
                if (previous != null) {
                    assertEquals(Arrays.toString(previous), Arrays.toString(fixedPart), "shift " + shift);
                }
                previous = fixedPart;
                boolean[] scratchUsed = new boolean[l.scratchEntries];
                int at = l.oItems;
                for (int b = 0; b < lengths.length; b++) {
                    for (int g = 0; g < KV_HEADS; g++) {
                        for (int t = 0; t < l.tiles; t++) {
                            int next = 0;
                            for (int c = 0; c < chunks; c++, at += DI_STRIDE) {
                                assertEquals(b, meta[at + DI_B]);
                                assertEquals(g, meta[at + DI_G]);
                                assertEquals(16 * t, meta[at + DI_PAIR0]);
                                assertEquals(next, meta[at + DI_V0], "chunk " + c + " starts where the last ended");
                                assertTrue(meta[at + DI_V1] >= meta[at + DI_V0]);
                                if (fixed > 0) {
                                    assertEquals(Math.min(lengths[b], c * fixed), meta[at + DI_V0], "fixed cut");
                                }
                                next = meta[at + DI_V1];
                                for (int i = 0; i < meta[at + DI_PAIRS]; i++) {
                                    int e = meta[at + DI_SCRATCH] + i;
                                    assertTrue(!scratchUsed[e], "scratch row " + e + " written twice");
                                    scratchUsed[e] = true;
                                }
                            }
                            assertEquals(lengths[b], next, "sequence " + b + " covered to its length");
                        }
                    }
                }
                for (int e = 0; e < scratchUsed.length; e++) {
                    assertTrue(scratchUsed[e], "scratch row " + e + " unused");
                }
            }
        }
    }

    @Test
    void theEvenCutSpreadsShortSequencesOverEveryChunkInWholeTiles() {
        DecodeStepLayout l = new DecodeStepLayout(1, 1, 1, 16, 0, 0);
        for (int c = 0; c <= 16; c++) {
            assertEquals(Math.min(1000, c * 64), l.chunkStart(1000, c), "1000 keys in chunks of 64");
            assertEquals(Math.min(8192, c * 512), l.chunkStart(8192, c));
        }
        assertEquals(0, l.chunkStart(0, 16));
    }

    @Test
    void blockTablesArePaddedToTheWidthAndLengthsLead() {
        DecodeStepLayout l = new DecodeStepLayout(2, 1, 1, 1, 0, 4);
        int[] meta = new int[l.size];
        Arrays.fill(meta, -7);
        l.write(meta, new int[] {40, 3}, new int[][] {{9, 8, 7}, {5, 6, 1, 2, 3, 4}});
        assertEquals(40, meta[0]);
        assertEquals(3, meta[1]);
        assertEquals("[9, 8, 7, 0, 5, 6, 1, 2]", Arrays.toString(Arrays.copyOfRange(meta, l.oTables, l.oItems)));
        assertEquals(-1, meta[l.oItems + DI_SCRATCH], "one chunk: rows written directly");
        assertEquals(l.oMerges, l.size, "no merge tiles");
    }

    @Test
    void refusesCountsOutOfRangeAndShortArrays() {
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(0, 1, 1, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1 << 16, 64, 64, 1 << 12, 0, 0));
        DecodeStepLayout l = new DecodeStepLayout(2, 1, 1, 2, 0, 0);
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1}, null));
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1, -1}, null));
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1, 1}, new int[][] {{}, {}}));
    }

    @Test
    void interpretedItemsAndMergesGiveTheOraclesDecode() {
        SplittableRandom r = new SplittableRandom(5);
        int batch = LENGTHS.length;
        Tensor k = Problems.random(r, DType.F32, Layout.BHSD, batch, KV_HEADS, MAX, DIM, 1);
        Tensor v = Problems.random(r, DType.F32, Layout.BHSD, batch, KV_HEADS, MAX, DIM, 1);
        Tensor q = Problems.random(r, DType.F32, Layout.BHSD, batch, KV_HEADS * GROUP, ROWS, DIM, 1);
        RunOptions run = RunOptions.defaults();
        for (int fixed : new int[] {0, 256}) {
            int chunks = fixed > 0 ? MAX / fixed : 7;
            for (int shift : new int[] {0, 9}) {
                int[] lengths = Arrays.stream(LENGTHS).map(x -> Math.min(MAX, x + shift)).toArray();
                ContiguousKvCache cache = ContiguousKvCache.wrap(k, v, lengths);
                ReferenceResult ref = ReferenceDecode.decode(q, cache, null, run);
                for (int c : new int[] {1, chunks}) {
                    DecodeStepLayout l = new DecodeStepLayout(batch, KV_HEADS, GROUP * ROWS, c, c == 1 ? 0 : fixed, 0);
                    int[] meta = new int[l.size];
                    l.write(meta, lengths, null);
                    long[] scalars = CudaDecode.scalars(q, k, v, null, null, GROUP, ROWS, false, 0, 0,
                            CudaDecode.MODE_DENSE, KV_HEADS, batch, l.offsets(), 1, run.scaleFor(DIM), 0);
                    double[][] got = DecodeMetaInterpreter.run(meta, scalars, l.items, l.merges, l.scratchEntries, q, k,
                            v, run.scaleFor(DIM));
                    DecodeMetaInterpreter.assertMatches("fixed " + fixed + " chunks " + c + " shift " + shift, ref, got);
                }
            }
        }
    }

    @Test
    void questAndTopKStepsVisitTheirListsAndGiveTheOraclesSparseDecode() {
        SplittableRandom r = new SplittableRandom(11);
        int batch = LENGTHS.length;
        int page = 16;
        PagedKvCache cache = PagedKvCache.allocate(DType.F32, batch, KV_HEADS, DIM, DIM, page,
                batch * (MAX / page + 1) + 4, true);
        // in rounds of up to 40 tokens, so that the sequences' pages interleave in the pool
        for (int done = 0; done < MAX; done += 40) {
            for (int b = 0; b < batch; b++) {
                int n = Math.min(40, LENGTHS[b] - done);
                if (n > 0) {
                    cache.append(b, Problems.random(r, DType.F32, Layout.BHSD, 1, KV_HEADS, n, DIM, 1),
                            Problems.random(r, DType.F32, Layout.BHSD, 1, KV_HEADS, n, DIM, 1));
                }
            }
        }
        RunOptions run = RunOptions.defaults();
        int width = (MAX + page - 1) / page;
        List<DecodePattern> patterns = List.of(new DecodePattern.Quest(128, 0, 0), new DecodePattern.Quest(16, 0, 0),
                new DecodePattern.TopK(40, 0, 0), new DecodePattern.TopK(40, 4, 16), new DecodePattern.TopK(0, 4, 16),
                new DecodePattern.TopK(5000, 0, 0));
        for (int step = 0; step < 2; step++) {
            if (step == 1) {
                for (int b = 0; b < batch; b++) {
                    cache.append(b, Problems.random(r, DType.F32, Layout.BHSD, 1, KV_HEADS, 9, DIM, 1),
                            Problems.random(r, DType.F32, Layout.BHSD, 1, KV_HEADS, 9, DIM, 1));
                }
            }
            int[] lengths = cache.lengths();
            int[][] tables = new int[batch][];
            for (int b = 0; b < batch; b++) {
                tables[b] = cache.blockTable(b);
            }
            for (DecodePattern pattern : patterns) {
                for (int rows : new int[] {1, ROWS}) {
                    if (pattern instanceof DecodePattern.TopK top && top.window() > 0 && rows > 1) {
                        continue; // the device chooses top-k with a window for one row only
                    }
                    Tensor q = Problems.random(r, DType.F32, Layout.BHSD, batch, KV_HEADS * GROUP, rows, DIM, 1);
                    DecodeSelection sel = DecodeSelector.select(q, cache, pattern);
                    ReferenceResult ref = ReferenceDecode.decode(q, cache, sel, run);
                    CudaDecode.Plan direct = CudaDecode.plan(8, q, cache, CudaDecode.Storage.of(cache), null, pattern, null,
                            null, DecodeOptions.defaults(), false);
                    int longest = DecodeStepLayout.maxVisits(pattern, page, rows, MAX + 9);
                    for (int[] cut : new int[][] {{1, 0}, {6, 0}, {(longest + 63) / 64, 64}}) {
                        String what = pattern.name() + " rows " + rows + " step " + step + " chunks " + cut[0]
                                + " fixed " + cut[1];
                        DecodeStepLayout l = new DecodeStepLayout(batch, KV_HEADS, GROUP * rows, cut[0], cut[1], width,
                                pattern, page, rows, MAX + 9);
                        int[] meta = new int[l.size];
                        l.write(meta, lengths, tables);
                        assertEquals(Arrays.toString(Arrays.copyOfRange(direct.meta, (int) direct.oCounts,
                                (int) direct.oLists)), Arrays.toString(Arrays.copyOfRange(meta, l.oCounts, l.oLists)),
                                what + ": the counts a direct call gives the choice kernels");
                        assertTrue(direct.listWidth <= l.listWidth && direct.questWidth <= l.scoreWidth, what);
                        long[] keys = DecodeMetaInterpreter.fillChoiceLists(meta, l.oLists, l.listWidth, cache, sel,
                                pattern, rows);
                        for (int b = 0; b < batch; b++) {
                            for (int g = 0; g < KV_HEADS; g++) {
                                assertEquals(l.visits(lengths[b]), keys[b * KV_HEADS + g], what + ": sequence " + b
                                        + " head " + g + " visits its list's keys");
                            }
                        }
                        long[] scalars = CudaDecode.scalars(q, cache.keyPages(), cache.valuePages(), null, null, GROUP,
                                rows, true, Integer.numberOfTrailingZeros(page), width, l.mode, KV_HEADS, batch,
                                l.offsets(), l.listWidth, run.scaleFor(DIM), 0);
                        double[][] got = DecodeMetaInterpreter.run(meta, scalars, l.items, l.merges, l.scratchEntries, q,
                                cache.keyPages(), cache.valuePages(), run.scaleFor(DIM));
                        DecodeMetaInterpreter.assertMatches(what, ref, got);
                    }
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 1, 0, 0,
                new DecodePattern.Quest(64, 0, 0), 0, 1, 100), "Quest on a contiguous cache");
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 1, 0, 4,
                new DecodePattern.Quest(64, 4, 0), 16, 1, 100), "Quest with sinks");
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 1, 0, 4,
                new DecodePattern.SinkWindow(4, 16), 16, 1, 100), "sinks + window (no choice on the device)");
        // Quest visits all 512 keys at length 512 and fewer past it: a fixed cut must cover the 512
        assertEquals(512, DecodeStepLayout.maxVisits(new DecodePattern.Quest(512, 0, 0), 16, 1, 1000));
        assertEquals(31 * 16 + 8, DecodeStepLayout.visits(new DecodePattern.Quest(512, 0, 0), 16, 1, 1000));
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 7, 64, 63,
                new DecodePattern.Quest(512, 0, 0), 16, 1, 1000), "7 chunks of 64 keys for 512");
        new DecodeStepLayout(1, 1, 1, 8, 64, 63, new DecodePattern.Quest(512, 0, 0), 16, 1, 1000);
    }

    /** Every int of the metadata but the lengths and the items' key ranges. */
    private static int[] fixedFields(DecodeStepLayout l, int[] meta) {
        int[] copy = Arrays.copyOf(meta, l.size);
        Arrays.fill(copy, 0, l.batch, 0);
        for (int i = 0; i < l.items; i++) {
            copy[l.oItems + i * DI_STRIDE + DI_V0] = 0;
            copy[l.oItems + i * DI_STRIDE + DI_V1] = 0;
        }
        return copy;
    }
}
