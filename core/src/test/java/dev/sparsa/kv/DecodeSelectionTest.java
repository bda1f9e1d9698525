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

    /**
     * {@code best} against its definition by sorting (score descending, NaN last, −0 equal to 0, ties to
     * the lower index): scores drawn from a few values (many ties), from a narrow band (one exponent),
     * and with NaN and infinities.
     */
    @Test
    void bestIsTheSortedDefinition() {
        SplittableRandom rnd = new SplittableRandom(12);
        float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, Float.MIN_VALUE,
            -Float.MIN_VALUE, Float.MAX_VALUE, -Float.MAX_VALUE};
        for (int trial = 0; trial < 600; trial++) {
            int n = 1 + rnd.nextInt(trial < 500 ? 60 : 5000);
            float[] s = new float[n];
            int kind = trial % 4;
            for (int i = 0; i < n; i++) {
                s[i] = switch (kind) {
                    case 0 -> rnd.nextInt(4) - 1.5f;
                    case 1 -> 5f + (float) rnd.nextDouble();
                    case 2 -> rnd.nextInt(8) == 0 ? specials[rnd.nextInt(specials.length)] : (float) rnd.nextGaussian();
                    default -> Float.intBitsToFloat(rnd.nextInt());
                };
            }
            int k = rnd.nextInt(n + 2);
            Integer[] order = new Integer[n];
            java.util.Arrays.setAll(order, i -> i);
            java.util.Arrays.sort(order, (x, y) -> {
                float a = s[x];
                float b = s[y];
                if (Float.isNaN(a) || Float.isNaN(b)) {
                    return Float.isNaN(a) == Float.isNaN(b) ? Integer.compare(x, y) : Float.isNaN(a) ? 1 : -1;
                }
                return a != b ? Float.compare(b, a) : Integer.compare(x, y); // a == b holds for −0 and 0
            });
            int[] expected = java.util.Arrays.stream(order).limit(Math.min(k, n)).mapToInt(Integer::intValue).sorted()
                    .toArray();
            assertArrayEquals(expected, DecodeSelector.best(s, n, k), "trial " + trial + " n " + n + " k " + k);
        }
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

    /** Scored pieces are whole pages of every power-of-two size up to 256, about four per worker, 1024–8192 keys. */
    @Test
    void scorePieces() {
        for (int keys : new int[] {1, 1000, 5000, 32768, 1 << 20}) {
            for (int workers : new int[] {1, 2, 16}) {
                int piece = DecodeSelector.scorePiece(keys, workers);
                String what = keys + " keys, " + workers + " workers: " + piece;
                assertEquals(0, piece % 256, what);
                assertTrue(piece >= 1024 && piece <= 8192, what);
                if (piece > 1024 && piece < 8192) {
                    assertTrue((keys + piece - 1) / piece <= 4 * workers, what);
                }
            }
        }
        assertEquals(4096, DecodeSelector.scorePiece(32768, 2));
        assertEquals(1024, DecodeSelector.scorePiece(32768, 16));
        assertEquals(8192, DecodeSelector.scorePiece(1 << 20, 2));
    }

    /**
     * Top-k heads of a sequence with the same candidates are scored together, in pieces that cover the
     * candidates exactly once; heads with other candidates (other sinks) apart; and the selection is
     * the same whatever the workers (so whatever the pieces).
     */
    @Test
    void topKScoresHeadsTogetherInPiecesThatDoNotChangeTheSelection() {
        int dim = 8;
        int[] lengths = {6000, 40, 3000};
        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 3, 3, 6000, dim, dim);
        SplittableRandom rnd = new SplittableRandom(5);
        appendGaussianRows(cache, lengths, rnd);
        Tensor q = gaussianQuery(3, 6, dim, rnd);
        DecodePattern p = DecodePattern.perKvHead(java.util.List.of(DecodePattern.topK(100),
                DecodePattern.topK(100).withSinks(7), DecodePattern.topK(30)));
        DecodeScorer plain = DecodeSelector.plainScorer(q, cache);
        java.util.List<String> calls = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        int[][] covered = new int[9][6000];
        DecodeScorer recording = new DecodeScorer() {
            @Override
            public void questBounds(int b, int g, int[] pages, int count, float[] out) {
                throw new AssertionError("no Quest here");
            }

            @Override
            public void keyScores(int b, int g, int from, int to, float[] out) {
                plain.keyScores(b, g, from, to, out);
            }

            @Override
            public void keyScores(int b, int[] heads, int from, int to, float[][] out, int base) {
                calls.add(b + ":" + java.util.Arrays.toString(heads));
                for (int g : heads) {
                    for (int t = from; t < to; t++) {
                        covered[b * 3 + g][t]++;
                    }
                }
                DecodeScorer.super.keyScores(b, heads, from, to, out, base);
            }
        };
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(3);
        try {
            DecodeSelection one = DecodeSelector.select(q, cache, p, recording, dev.sparsa.spec.Workers.callerOnly());
            for (int b = 0; b < 3; b++) {
                for (int g = 0; g < 3; g++) {
                    int from = g == 1 ? 7 : 0;
                    for (int t = 0; t < 6000; t++) {
                        boolean ranked = lengths[b] - from > (g == 2 ? 30 : 100);
                        int expected = ranked && t >= from && t < lengths[b] ? 1 : 0;
                        assertEquals(expected, covered[b * 3 + g][t], "sequence " + b + " head " + g + " key " + t);
                    }
                }
            }
            // sequence 0: heads 0 and 2 share candidates [0, 6000) (four pieces of 1536 keys at one worker),
            // head 1 (sinks) has its own
            assertEquals(4, calls.stream().filter("0:[0, 2]"::equals).count());
            assertEquals(4, calls.stream().filter("0:[1]"::equals).count());
            DecodeSelection four = DecodeSelector.select(q, cache, p, plain,
                    dev.sparsa.spec.Workers.of(pool, 4));
            // one sequence per wave of scores (the smallest wave), and every sequence in one
            DecodeSelection waves = DecodeSelector.select(q, cache, p, plain, dev.sparsa.spec.Workers.of(pool, 4), 1);
            DecodeSelection oneWave = DecodeSelector.select(q, cache, p, plain, dev.sparsa.spec.Workers.callerOnly(),
                    Long.MAX_VALUE);
            for (int b = 0; b < 3; b++) {
                for (int g = 0; g < 3; g++) {
                    String what = "sequence " + b + " head " + g;
                    assertArrayEquals(one.chosenSpans(b, g), four.chosenSpans(b, g), what);
                    assertArrayEquals(one.chosenSpans(b, g), waves.chosenSpans(b, g), what);
                    assertArrayEquals(one.chosenSpans(b, g), oneWave.chosenSpans(b, g), what);
                    // sequence 1 (40 keys): heads 0 and 1 keep all their candidates, head 2 ranks them
                    int expected = b == 1 ? new int[] {40, 33, 30}[g] : new int[] {100, 100, 30}[g];
                    int kept = 0;
                    int[] spans = one.chosenSpans(b, g);
                    for (int i = 0; i < spans.length; i += 2) {
                        kept += spans[i + 1] - spans[i];
                    }
                    assertEquals(expected, kept, what);
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void assembledFromChosenSpansEqualsTheSelectorsOwnSelection() {
        // the selector's choice, taken apart into its chosen spans and put back together by assemble, gives the same
        // selection: what a backend that ranks the pages or keys itself builds
        SplittableRandom rnd = new SplittableRandom(31);
        int dim = 16;
        PagedKvCache cache = PagedKvCache.allocate(DType.F32, 2, 4, dim, dim, 16, 64, true);
        appendGaussianRows(cache, new int[] {300, 77}, rnd);
        Tensor q = gaussianQuery(2, 8, dim, rnd);
        DecodePattern mix = DecodePattern.perKvHead(java.util.List.of(DecodePattern.topK(40).withSinks(3),
                DecodePattern.dense(), DecodePattern.quest(64).withWindow(20), DecodePattern.sinkWindow(4, 30)));
        for (DecodePattern p : java.util.List.of(mix, DecodePattern.topK(25).withWindow(10), DecodePattern.quest(48))) {
            DecodeSelection direct = DecodeSelector.select(q, cache, p);
            int[][] spans = new int[2 * 4][];
            for (int u = 0; u < spans.length; u++) {
                spans[u] = direct.chosenSpans(u / 4, u % 4);
            }
            DecodeSelection assembled = DecodeSelector.assemble(cache, p, spans);
            assertEquals(direct.description(), assembled.description());
            for (int b = 0; b < 2; b++) {
                assertEquals(direct.madeAt(b), assembled.madeAt(b));
                for (int g = 0; g < 4; g++) {
                    String at = p.name() + " sequence " + b + " head " + g;
                    assertEquals(direct.isDense(b, g), assembled.isDense(b, g), at);
                    assertEquals(direct.sinks(b, g), assembled.sinks(b, g), at);
                    assertEquals(direct.window(b, g), assembled.window(b, g), at);
                    assertArrayEquals(direct.chosenSpans(b, g), assembled.chosenSpans(b, g), at);
                }
            }
        }
        // the mix's top-k and Quest heads chose something: the comparison above saw spans
        assertTrue(DecodeSelector.select(q, cache, mix).chosenKeys(0, 0) > 0);
        assertThrows(IllegalArgumentException.class, () -> DecodeSelector.assemble(cache, mix, new int[3][]));
        assertThrows(IllegalArgumentException.class, () -> DecodeSelector.assemble(cache,
                DecodePattern.perKvHead(java.util.List.of(DecodePattern.dense())), new int[8][]));
        int[][] backwards = new int[8][];
        backwards[0] = new int[] {50, 60, 10, 20};
        assertThrows(IllegalArgumentException.class, () -> DecodeSelector.assemble(cache, mix, backwards));
    }

    /**
     * Room reserved ahead (span lists of a selection and of resolved spans) changes nothing, and a
     * thread's kept score arrays and working memory carry nothing from one selection into the next:
     * a top-k selection made after others of longer and shorter caches equals the first one made.
     */
    @Test
    void reservedRoomAndKeptWorkingMemoryChangeNoSelection() {
        KeySpans plain = new KeySpans();
        KeySpans roomy = new KeySpans();
        roomy.add(0, 4, KeySpans.UNBANDED);
        roomy.ensureCapacity(100);
        roomy.ensureCapacity(1);
        assertEquals(1, roomy.size());
        roomy.clear();
        for (int i = 0; i < 40; i++) {
            plain.add(3 * i, 3 * i + 2, i % 3 == 0 ? KeySpans.UNBANDED : i);
            roomy.add(3 * i, 3 * i + 2, i % 3 == 0 ? KeySpans.UNBANDED : i);
        }
        assertEquals(plain.size(), roomy.size());
        for (int i = 0; i < plain.size(); i++) {
            assertEquals(plain.start(i), roomy.start(i));
            assertEquals(plain.end(i), roomy.end(i));
            assertEquals(plain.maxDelta(i), roomy.maxDelta(i));
        }
        assertThrows(IllegalArgumentException.class, () -> roomy.ensureCapacity(-1));

        DecodeSelection.Builder a = DecodeSelection.builder(1, 2, new int[] {100});
        DecodeSelection.Builder b = DecodeSelection.builder(1, 2, new int[] {100});
        b.reserve(0, 0, 1).reserve(0, 1, 50);
        for (int i = 0; i < 5; i++) {
            a.span(0, 0, 10 * i, 10 * i + 3).span(0, 1, 10 * i + 5, 10 * i + 7);
            b.span(0, 0, 10 * i, 10 * i + 3).span(0, 1, 10 * i + 5, 10 * i + 7);
        }
        b.reserve(0, 0, 0);
        DecodeSelection sa = a.build();
        DecodeSelection sb = b.build();
        for (int g = 0; g < 2; g++) {
            assertArrayEquals(sa.chosenSpans(0, g), sb.chosenSpans(0, g));
        }
        assertThrows(IllegalArgumentException.class, () -> b.reserve(0, 0, -1));
        assertThrows(IllegalArgumentException.class, () -> b.reserve(1, 0, 1));

        SplittableRandom rnd = new SplittableRandom(5);
        int dim = 16;
        PagedKvCache longer = PagedKvCache.allocate(DType.F32, 2, 2, dim, dim, 16, 64, true);
        PagedKvCache shorter = PagedKvCache.allocate(DType.F32, 1, 2, dim, dim, 16, 16, true);
        appendGaussianRows(longer, new int[] {500, 430}, rnd);
        appendGaussianRows(shorter, new int[] {90}, rnd);
        Tensor qLonger = gaussianQuery(2, 4, dim, rnd);
        Tensor qShorter = gaussianQuery(1, 4, dim, rnd);
        DecodePattern topK = DecodePattern.topK(60).withSinks(2);
        DecodeSelection first = DecodeSelector.select(qLonger, longer, topK);
        DecodeSelector.select(qShorter, shorter, DecodePattern.topK(30));
        DecodeSelector.select(qLonger, longer, DecodePattern.topK(200));
        DecodeSelection again = DecodeSelector.select(qLonger, longer, topK);
        for (int s = 0; s < 2; s++) {
            for (int g = 0; g < 2; g++) {
                assertTrue(first.chosenKeys(s, g) > 0);
                assertArrayEquals(first.chosenSpans(s, g), again.chosenSpans(s, g), "sequence " + s + " head " + g);
            }
        }
    }

    /** Appends {@code lengths[b]} Gaussian key rows (the values the same rows) to each sequence {@code b} of an f32 cache. */
    private static void appendGaussianRows(KvCache cache, int[] lengths, SplittableRandom rnd) {
        int dim = cache.headDim();
        for (int b = 0; b < lengths.length; b++) {
            Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, cache.kvHeads(), lengths[b], dim);
            for (int h = 0; h < cache.kvHeads(); h++) {
                for (int t = 0; t < lengths[b]; t++) {
                    for (int d = 0; d < dim; d++) {
                        k.set(0, h, t, d, (float) rnd.nextGaussian());
                    }
                }
            }
            cache.append(b, k, k);
        }
    }

    /** A Gaussian f32 query {@code [batch, heads, 1, dim]}. */
    private static Tensor gaussianQuery(int batch, int heads, int dim, SplittableRandom rnd) {
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, batch, heads, 1, dim);
        for (int i = 0; i < batch * heads * dim; i++) {
            q.set(i / (heads * dim), i / dim % heads, 0, i % dim, (float) rnd.nextGaussian());
        }
        return q;
    }
}
