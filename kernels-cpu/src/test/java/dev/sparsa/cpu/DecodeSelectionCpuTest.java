package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KeySpans;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SelectionReuse;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/** Selections made on the CPU: Quest against its authors' reference, the CPU scorer against the plain one, reuse. */
class DecodeSelectionCpuTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    /**
     * Quest's page estimate and page choice, ported from the authors' code (github.com/mit-han-lab/Quest
     * at commit 01c1623bf9395009520874e989e29f683203b357): {@code _ref_cpu_estimate} in {@code
     * quest/tests/test_estimate.py} (keys times the sign of the query, their page-wise maximum, a
     * matmul with |q|, the last page dropped) and the page budget of {@code quest/utils/controller.py}
     * ({@code page_budget} counts the last page; no estimate while the pages fit the budget; top
     * {@code page_budget − 1} of the other pages, plus the last page). One head, one query row, as in
     * their test (32 heads there, 4 here), at kv lengths from their parameter list.
     */
    private static int[] questReferencePages(float[] q, float[][] keys, int pageSize, int pageBudget) {
        int kvLen = keys.length;
        int dim = q.length;
        int pages = (kvLen + pageSize - 1) / pageSize;
        int budget = Math.min(pageBudget, pages);
        if (pages <= budget) {
            int[] all = new int[pages];
            Arrays.setAll(all, i -> i);
            return all;
        }
        double[] sign = new double[dim];
        for (int c = 0; c < dim; c++) {
            sign[c] = q[c] > 0 ? 1 : -1;
        }
        // max_key = k * sign, padded with the dtype's minimum to whole pages, amax over each page
        double[][] pageMaxKey = new double[pages][dim];
        for (double[] row : pageMaxKey) {
            Arrays.fill(row, -Float.MAX_VALUE);
        }
        for (int t = 0; t < kvLen; t++) {
            for (int c = 0; c < dim; c++) {
                pageMaxKey[t / pageSize][c] = Math.max(pageMaxKey[t / pageSize][c], keys[t][c] * sign[c]);
            }
        }
        // approx_attn_paged = (q * sign) @ page_max_key^T, without the last page
        double[] approx = new double[pages - 1];
        for (int p = 0; p < pages - 1; p++) {
            for (int c = 0; c < dim; c++) {
                approx[p] += q[c] * sign[c] * pageMaxKey[p][c];
            }
        }
        // torch.topk(approx, page_budget - 1), then the last page
        Integer[] order = new Integer[pages - 1];
        Arrays.setAll(order, i -> i);
        Arrays.sort(order, (a, b) -> Double.compare(approx[b], approx[a]));
        int[] chosen = new int[budget];
        for (int i = 0; i < budget - 1; i++) {
            chosen[i] = order[i];
        }
        chosen[budget - 1] = pages - 1;
        Arrays.sort(chosen);
        return chosen;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void questChoosesThePagesOfTheAuthorsReference(DType dtype) {
        int heads = 4;
        int dim = 128;
        int pageSize = 16;
        for (int kvLen : new int[] {27, 61, 113, 482, 577, 1110}) {
            for (int pageBudget : new int[] {2, 5, 9}) {
                KvProblems.Caches c = KvProblems.caches(kvLen, dtype, new int[] {kvLen}, heads, dim, dim, pageSize, 97);
                Tensor q = DecodeFixtures.query(kvLen + pageBudget, c.paged(), heads, 1);
                DecodePattern quest = DecodePattern.quest(pageBudget * pageSize);
                DecodeSelection cpu = CPU.select(q, c.paged(), quest, DecodeOptions.defaults());
                DecodeSelection plain = DecodeSelector.select(q, c.paged(), quest);
                for (int g = 0; g < heads; g++) {
                    float[] qv = new float[dim];
                    q.readRow(0, g, 0, qv, 0);
                    float[][] keys = new float[kvLen][dim];
                    for (int t = 0; t < kvLen; t++) {
                        c.keys()[0].readRow(0, g, t, keys[t], 0);
                    }
                    int[] expected = questReferencePages(qv, keys, pageSize, pageBudget);
                    String what = dtype + " kvLen " + kvLen + " budget " + pageBudget + " head " + g;
                    assertArrayEquals(expected, pagesOf(cpu, g, kvLen, pageSize), what + " (cpu scorer)");
                    assertArrayEquals(expected, pagesOf(plain, g, kvLen, pageSize), what + " (plain scorer)");
                }
            }
        }
    }

    /** The pages a selection's chosen spans cover (each span starts and ends on a page or at the length). */
    private static int[] pagesOf(DecodeSelection sel, int g, int length, int pageSize) {
        List<Integer> pages = new ArrayList<>();
        int[] spans = sel.chosenSpans(0, g);
        for (int i = 0; i < spans.length; i += 2) {
            assertEquals(0, spans[i] % pageSize);
            assertTrue(spans[i + 1] % pageSize == 0 || spans[i + 1] == length);
            for (int p = spans[i] / pageSize; p * pageSize < spans[i + 1]; p++) {
                pages.add(p);
            }
        }
        return pages.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The CPU's vector scorer chooses what the plain scorer chooses (GQA, several rows, sinks and windows). */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void cpuScorerChoosesAsThePlainScorer(DType dtype) {
        int[] lengths = {0, 3, 300, 1000};
        KvProblems.Caches c = KvProblems.caches(41, dtype, lengths, 2, 40, 24, 16, 100);
        for (int rows : new int[] {1, 3}) {
            Tensor q = DecodeFixtures.query(rows * 7, c.paged(), 6, rows);
            for (DecodePattern p : List.of(DecodePattern.quest(128), DecodePattern.quest(64).withSinks(4).withWindow(16),
                    DecodePattern.topK(50), DecodePattern.topK(100).withSinks(8).withWindow(32),
                    DecodePattern.perKvHead(List.of(DecodePattern.topK(20), DecodePattern.quest(32))))) {
                for (KvCache cache : List.of(c.paged(), c.contiguous())) {
                    if (p.name().contains("quest") && !(cache instanceof PagedKvCache)) {
                        continue;
                    }
                    assertSameSelection(DecodeSelector.select(q, cache, p), CPU.select(q, cache, p, DecodeOptions.defaults()),
                            p.name() + " rows " + rows);
                }
            }
        }
    }

    /**
     * NaN and infinities in the keys and the query ({@link KvProblems#questEdgeKeys}, {@link
     * KvProblems#questEdgeQueries}): the CPU's scorer chooses what the plain scorer chooses (Math.max per
     * channel, NaN when either product is; a NaN-keeping max over the group's vectors); with a NaN in query
     * head 2 every page of KV head 0 scores NaN, and the lowest pages and the last are kept.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void cpuScorerChoosesAsThePlainScorerOnNaNAndInfinities(DType dtype) {
        int[] lengths = {0, 1, 63, 64, 65, 4097};
        int kvHeads = 2;
        int dim = 128;
        int page = 16;
        int pages = 0;
        for (int len : lengths) {
            pages += (len + page - 1) / page;
        }
        PagedKvCache paged = PagedKvCache.allocate(dtype, lengths.length, kvHeads, dim, dim, page, pages, true);
        for (int b = 0; b < lengths.length; b++) {
            if (lengths[b] == 0) {
                continue;
            }
            Tensor k = Problems.random(new SplittableRandom(281 + b), dtype, Layout.BHSD, 1, kvHeads, lengths[b], dim, 2.0);
            Tensor v = Problems.random(new SplittableRandom(381 + b), dtype, Layout.BHSD, 1, kvHeads, lengths[b], dim, 2.0);
            KvProblems.questEdgeKeys(k, page);
            paged.append(b, k, v);
        }
        Tensor q = DecodeFixtures.query(282, paged, 4 * kvHeads, 1);
        for (boolean nanQuery : new boolean[] {false, true}) {
            KvProblems.questEdgeQueries(q, nanQuery);
            for (int budgetPages : new int[] {1, 9, 32, 120}) {
                DecodePattern quest = DecodePattern.quest(budgetPages * page);
                DecodeSelection plain = DecodeSelector.select(q, paged, quest);
                assertSameSelection(plain, CPU.select(q, paged, quest, DecodeOptions.defaults()),
                        dtype + " " + budgetPages + " pages" + (nanQuery ? ", NaN in query head 2" : ""));
                if (nanQuery && budgetPages == 9) {
                    assertArrayEquals(new int[] {0, 8 * page, 4096, 4097}, plain.chosenSpans(5, 0));
                }
            }
        }
    }

    /**
     * Quest's bounds of several KV heads from one read of the pool's bounds have the bits of the
     * one-head method for every head, however the pages are cut into pieces, and so do the one-head
     * method's bounds of the same pool in native memory: f32 and bf16 pools on the heap (read whole) and
     * in native memory (copied run by run), f16 and e4m3 pools (widened run by run, e4m3 under a
     * different scale per head), head dims that are and are not a multiple of the lanes, GQA with two
     * rows, NaN and infinities among the keys and the query.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16", "E4M3"})
    void questBoundsOfSeveralHeadsHaveTheOneHeadBits(DType dtype) {
        int[] lengths = {1, 17, 700, 2500};
        int kvHeads = 4;
        int page = 16;
        int pages = 0;
        for (int len : lengths) {
            pages += (len + page - 1) / page;
        }
        SplittableRandom rnd = new SplittableRandom(97);
        // e4m3: one scale per KV head for the whole pool, a different one for each head
        float[] ks = dtype.isScaled() ? Problems.e4m3Scales(new SplittableRandom(99), kvHeads, 2.0) : null;
        float[] vs = dtype.isScaled() ? Problems.e4m3Scales(new SplittableRandom(100), kvHeads, 2.0) : null;
        for (int dim : new int[] {128, 40}) {
            PagedKvCache paged = dtype.isScaled()
                    ? PagedKvCache.allocateE4m3(lengths.length, kvHeads, dim, dim, page, pages, true, ks, vs)
                    : PagedKvCache.allocate(dtype, lengths.length, kvHeads, dim, dim, page, pages, true);
            for (int b = 0; b < lengths.length; b++) {
                Tensor k = random(500 + b, dtype, ks, kvHeads, lengths[b], dim);
                Tensor v = random(600 + b, dtype, vs, kvHeads, lengths[b], dim);
                KvProblems.questEdgeKeys(k, page);
                paged.append(b, k, v);
            }
            Tensor q = DecodeFixtures.query(98, paged, 3 * kvHeads, 2);
            KvProblems.questEdgeQueries(q, false);
            DecodeMath math = DecodeMathProvider.forFlavour(TileMathProvider.best().flavour());
            CpuDecodeScorer scorer = new CpuDecodeScorer(math, TileMathProvider.best(), q, paged);
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                PagedKvCache offHeap = PagedKvCache.wrap(DecodeFixtures.offHeap(arena, paged.keyPages()),
                        DecodeFixtures.offHeap(arena, paged.valuePages()), DecodeFixtures.offHeap(arena, paged.pageBounds()),
                        page, lengths.length, null);
                for (int b = 0; b < lengths.length; b++) {
                    offHeap.setBlockTable(b, paged.blockTable(b), paged.length(b));
                }
                CpuDecodeScorer nativeScorer = new CpuDecodeScorer(math, TileMathProvider.best(), q, offHeap);
                assertTrue(scorer.readsBoundsWhole(), "a heap pool's bounds are read whole");
                assertTrue(nativeScorer.readsBoundsWhole(), "a native pool's bounds are copied whole");
                int[] heads = {3, 0, 2};
                for (int b = 0; b < lengths.length; b++) {
                    int[] table = paged.blockTable(b);
                    int count = table.length;
                    float[][] together = new float[heads.length][count];
                    float[][] inNative = new float[heads.length][count];
                    for (int from = 0, to; from < count; from = to) {
                        to = Math.min(count, from + 1 + rnd.nextInt(150));
                        scorer.questBounds(b, heads, table, from, to, together);
                        nativeScorer.questBounds(b, heads, table, from, to, inNative);
                    }
                    for (int i = 0; i < heads.length; i++) {
                        float[] alone = new float[count];
                        scorer.questBounds(b, heads[i], table, count, alone);
                        float[] aloneInNative = new float[count];
                        nativeScorer.questBounds(b, heads[i], table, count, aloneInNative);
                        String what = dtype + " dim " + dim + " sequence " + b + " head " + heads[i];
                        assertArrayEquals(alone, together[i], what);
                        assertArrayEquals(alone, inNative[i], what + ", native pool");
                        assertArrayEquals(alone, aloneInNative, what + ", native pool, one head");
                    }
                }
            }
        }
    }

    /** Random rows in {@code dtype}, amplitude 2; e4m3 rows under {@code scales}. */
    private static Tensor random(long seed, DType dtype, float[] scales, int heads, int length, int dim) {
        if (scales == null) {
            return Problems.random(new SplittableRandom(seed), dtype, Layout.BHSD, 1, heads, length, dim, 2.0);
        }
        Tensor f32 = Problems.random(new SplittableRandom(seed), DType.F32, Layout.BHSD, 1, heads, length, dim, 2.0);
        Tensor t = Tensor.allocate(dtype, Layout.BHSD, 1, heads, length, dim).withScales(scales);
        Tensor.convert(f32, t);
        return t;
    }

    private static void assertSameSelection(DecodeSelection a, DecodeSelection b, String what) {
        assertEquals(a.batch(), b.batch());
        assertArrayEquals(a.madeAt(), b.madeAt());
        for (int s = 0; s < a.batch(); s++) {
            for (int g = 0; g < a.kvHeads(); g++) {
                assertEquals(a.isDense(s, g), b.isDense(s, g), what);
                assertEquals(a.sinks(s, g), b.sinks(s, g), what);
                assertEquals(a.window(s, g), b.window(s, g), what);
                assertArrayEquals(a.chosenSpans(s, g), b.chosenSpans(s, g), what + " sequence " + s + " head " + g);
            }
        }
    }

    /** Top-k keeps the k best scores outside the forced keys, by the definition (f64 scores, no near ties here). */
    @Test
    void topKKeepsTheBestScores() {
        KvProblems.Caches c = KvProblems.caches(43, DType.F32, new int[] {500}, 1, 16, 16, 16, 100);
        Tensor q = DecodeFixtures.query(3, c.paged(), 2, 1);
        DecodeSelection sel = CPU.select(q, c.paged(), DecodePattern.topK(40).withSinks(4).withWindow(10),
                DecodeOptions.defaults());
        double[] score = new double[500];
        float[] k = new float[16];
        float[] qv = new float[16];
        for (int t = 0; t < 500; t++) {
            c.keys()[0].readRow(0, 0, t, k, 0);
            score[t] = Double.NEGATIVE_INFINITY;
            for (int h = 0; h < 2; h++) {
                q.readRow(0, h, 0, qv, 0);
                double s = 0;
                for (int d = 0; d < 16; d++) {
                    s += (double) qv[d] * k[d];
                }
                score[t] = Math.max(score[t], s);
            }
        }
        Integer[] order = new Integer[500 - 14];
        Arrays.setAll(order, i -> i + 4);
        Arrays.sort(order, (a, b) -> Double.compare(score[b], score[a]));
        int[] expected = Arrays.stream(order).limit(40).mapToInt(Integer::intValue).sorted().toArray();
        int[] spans = sel.chosenSpans(0, 0);
        List<Integer> got = new ArrayList<>();
        for (int i = 0; i < spans.length; i += 2) {
            for (int t = spans[i]; t < spans[i + 1]; t++) {
                got.add(t);
            }
        }
        assertArrayEquals(expected, got.stream().mapToInt(Integer::intValue).toArray());
    }

    /**
     * A decode loop under SelectionReuse.forSteps(2): whenever the rule says fresh, the selection equals
     * a fresh one; otherwise it is the remembered one, and the keys appended since are seen through the
     * window; every step's output matches the oracle of the selection it used.
     */
    @Test
    void reuseEqualsAFreshSelectionWheneverTheRuleSaysSo() {
        int[] lengths = {200, 90};
        KvProblems.Caches c = KvProblems.caches(47, DType.F32, lengths, 2, 16, 16, 16, 64);
        PagedKvCache cache = c.paged();
        DecodePattern pattern = DecodePattern.quest(48).withWindow(3);
        SelectionReuse reuse = SelectionReuse.forSteps(2);
        SplittableRandom rnd = new SplittableRandom(5);
        DecodeOptions o = DecodeOptions.defaults();
        DecodeSelection previous = null;
        int fresh = 0;
        for (int step = 0; step < 9; step++) {
            Tensor k = Problems.random(rnd, DType.F32, Layout.BHSD, 2, 2, 1, 16, 2.0);
            Tensor v = Problems.random(rnd, DType.F32, Layout.BHSD, 2, 2, 1, 16, 1.0);
            if (step == 5) {
                // rejected draft tokens: sequence 1 falls below the length it was selected at
                cache.truncate(1, cache.length(1) - 5);
            }
            cache.appendStep(k, v);
            Tensor q = DecodeFixtures.query(100 + step, cache, 4, 1);
            boolean mustBeFresh = reuse.needsFresh(cache, pattern);
            DecodeSelection sel = Attention.select(q, cache, pattern, o, reuse);
            // another layer of the same step shares it (TidalDecode)
            assertSame(sel, Attention.select(DecodeFixtures.query(900 + step, cache, 4, 1), cache, pattern, o, reuse));
            assertEquals(mustBeFresh, reuse.lastWasFresh() || sel != previous);
            if (mustBeFresh) {
                fresh++;
                assertSameSelection(CPU.select(q, cache, pattern, o), sel, "step " + step);
            } else {
                assertSame(previous, sel);
                KeySpans spans = new KeySpans();
                for (int b = 0; b < 2; b++) {
                    sel.resolve(b, 0, cache.length(b), 1, spans);
                    int newest = cache.length(b) - 1;
                    assertTrue(spans.admits(newest, newest), "the newest key comes through the window");
                }
            }
            DecodeFixtures.Run run = DecodeFixtures.decode(CPU, q, cache, sel, o, DType.F32);
            ReferenceResult ref = DecodeFixtures.oracle(q, cache, sel, o);
            assertTrue(ref.maxRelativeError(run.out()) <= 1e-5, "step " + step);
            previous = sel;
        }
        // fresh at step 0, at step 3 (three steps old), at step 5 (a shorter sequence) and at step 8
        assertEquals(4, fresh);
        assertFalse(reuse.needsFresh(cache, pattern));
    }
}
