package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.DecodeArguments;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Decode on the CPU against the fp64 oracle: dense, paged and contiguous, ragged, split, sparse. */
class CpuDecodeTest {
    private static final CpuBackend VECTOR_OR_SCALAR = new CpuBackend(2);

    static Stream<Arguments> flavoursAndTypes() {
        return Stream.of(KernelFlavour.values()).filter(f -> f == KernelFlavour.SCALAR
                        || TileMathProvider.best().flavour() == KernelFlavour.VECTOR)
                .flatMap(f -> Stream.of(DType.values()).map(t -> Arguments.of(f, t)));
    }

    /** Dense decode of 1 and 3 rows, GQA 2:1, head dims off the lane count, against the oracle; paged equals contiguous. */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void denseDecodeMatchesTheOracleAndPagedEqualsContiguousBitwise(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int[] lengths = {0, 1, 37, 130, 200};
        KvProblems.Caches c = KvProblems.caches(11, dtype, lengths, 2, 40, 24, 16, 29);
        for (int rows : new int[] {1, 3}) {
            Tensor q = DecodeFixtures.query(5 + rows, c.contiguous(), 4, rows);
            for (SplitKv split : List.of(SplitKv.rule(), SplitKv.fixed(48), SplitKv.none())) {
                DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                DecodeFixtures.Run flat = DecodeFixtures.decode(cpu, q, c.contiguous(), null, o, DType.F32);
                DecodeFixtures.Run paged = DecodeFixtures.decode(cpu, q, c.paged(), null, o, DType.F32);
                assertArrayEquals(flat.out().toFloatArray(), paged.out().toFloatArray(), "paged vs contiguous " + split);
                assertArrayEquals(flat.lse().toFloatArray(), paged.lse().toFloatArray());
                ReferenceResult ref = DecodeFixtures.oracle(q, c.contiguous(), null, o);
                assertTrue(ref.maxRelativeError(flat.out()) <= DecodeFixtures.tolerance(dtype),
                        flavour + " " + dtype + " rows " + rows + " " + split + ": " + ref.maxRelativeError(flat.out()));
                assertTrue(ref.maxLseError(flat.lse()) <= DecodeFixtures.lseTolerance(dtype), "lse " + ref.maxLseError(flat.lse()));
                // sequence 0 is empty: 0 and −∞
                for (int h = 0; h < 4; h++) {
                    assertEquals(Float.NEGATIVE_INFINITY, flat.lse().get(0, h, 0, 0));
                    assertEquals(0f, flat.out().get(0, h, rows - 1, 5));
                }
            }
        }
    }

    /**
     * Dense decode split over each sequence's keys (a work item per sequence and chunk, every KV head),
     * for 1, 3 and 33 query rows:
     * paged pools read page by page (HND and NHD), pools with room between pages and chunks that do not
     * start on a page (read head by head instead), and f16 (widened block by block) all give the bits of
     * the contiguous cache and stay within the oracle's tolerance.
     */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void denseDecodeAcrossHeadsEqualsContiguousBitwise(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int[] lengths = {1500, 0, 1100, 37};
        KvProblems.Caches c = KvProblems.caches(41, dtype, lengths, 3, 40, 24, 16, 300);
        PagedKvCache nhd = rewrap(c.paged(), t -> t.to(t.dtype(), Layout.BSHD));
        PagedKvCache padded = rewrap(c.paged(), CpuDecodeTest::withRoomBetweenPages);
        // 33 rows: 66 query vectors per KV head (a group of 2 heads), more than the kernels' panels of 4
        for (int rows : new int[] {1, 3, 33}) {
            Tensor q = DecodeFixtures.query(7 + rows, c.contiguous(), 6, rows);
            for (SplitKv split : List.of(SplitKv.rule(), SplitKv.rule(256, 4), SplitKv.fixed(64), SplitKv.fixed(40),
                    SplitKv.fixed(320))) {
                DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                pagedEqualsContiguous(cpu, q, c.contiguous(), List.of(c.paged(), nhd, padded), null, o,
                        flavour + " " + dtype + " rows " + rows + " " + split);
            }
        }
    }

    /**
     * Sinks + window give every KV head of a sequence the same keys, so a split sequence runs as items
     * across heads, and a paged pool is read page by page: windows that start and end inside a page,
     * sinks and window that meet, one and several query rows, splits on and off pages, HND, NHD and padded
     * pools all give the bits of the contiguous cache and stay within the oracle's tolerance for the same
     * keys.
     */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void sinksAndWindowAcrossHeadsEqualContiguousBitwise(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int[] lengths = {1500, 0, 1103, 37, 2049};
        KvProblems.Caches c = KvProblems.caches(43, dtype, lengths, 3, 40, 24, 16, 300);
        PagedKvCache nhd = rewrap(c.paged(), t -> t.to(t.dtype(), Layout.BSHD));
        PagedKvCache padded = rewrap(c.paged(), CpuDecodeTest::withRoomBetweenPages);
        List<DecodePattern> patterns = List.of(DecodePattern.sinkWindow(4, 1000), DecodePattern.sinkWindow(0, 777),
                DecodePattern.sinkWindow(21, 1090));
        for (int rows : new int[] {1, 3}) {
            Tensor q = DecodeFixtures.query(11 + rows, c.contiguous(), 6, rows);
            for (DecodePattern p : patterns) {
                DecodeSelection sel = cpu.select(q, c.paged(), p, DecodeOptions.defaults());
                for (SplitKv split : List.of(SplitKv.fixed(64), SplitKv.fixed(320), SplitKv.fixed(40))) {
                    DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                    pagedEqualsContiguous(cpu, q, c.contiguous(), List.of(c.paged(), nhd, padded), sel, o,
                            flavour + " " + dtype + " " + p.name() + " rows " + rows + " " + split);
                }
            }
        }
    }

    /**
     * A batch whose sequences alone give every worker its items (the default rule's 4 per core, {@code
     * SplitKv.none()}'s too) runs dense decode and sinks + window as items across KV heads without a split,
     * a sequence an item: paged pools read page by page (HND, NHD and padded) give the contiguous cache's
     * bits and stay within the oracle's tolerance, with lengths that end inside a page, on one, and at 0.
     * A batch one sequence short runs as {@link CpuDecode}'s rule gives (a sequence an item where the
     * workers stay balanced); dense decode of one whose longest sequence exceeds a worker's share of the
     * keys runs an item per (sequence, KV head) (3 KV heads: no groups of them); both with the same bits.
     */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void largeBatchesRunAcrossHeadsAndPagedEqualsContiguousBitwise(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int processors = Runtime.getRuntime().availableProcessors();
        int fills = 4 * processors;
        int[] cycle = {65, 0, 1, 63, 64, 200, 17, 129};
        int[] lengths = new int[fills];
        for (int b = 0; b < fills; b++) {
            lengths[b] = cycle[b % cycle.length];
        }
        int[] oneLong = lengths.clone();
        oneLong[1] = 2000;
        KvProblems.Caches c = KvProblems.caches(47, dtype, lengths, 3, 40, 24, 16, 29);
        KvProblems.Caches shorter = KvProblems.caches(47, dtype, Arrays.copyOf(lengths, fills - 1), 3, 40, 24, 16, 29);
        KvProblems.Caches uneven = KvProblems.caches(48, dtype, oneLong, 3, 40, 24, 16, 29);
        PagedKvCache nhd = rewrap(c.paged(), t -> t.to(t.dtype(), Layout.BSHD));
        PagedKvCache padded = rewrap(c.paged(), CpuDecodeTest::withRoomBetweenPages);
        DecodePattern sinkWindow = DecodePattern.sinkWindow(4, 50);
        for (int rows : new int[] {1, 3}) {
            Tensor q = DecodeFixtures.query(13 + rows, c.contiguous(), 6, rows);
            Tensor qShort = q.narrowBatch(0, fills - 1);
            Tensor qUneven = DecodeFixtures.query(17 + rows, uneven.contiguous(), 6, rows);
            for (boolean window : new boolean[] {false, true}) {
                DecodeSelection sel = window ? cpu.select(q, c.paged(), sinkWindow, DecodeOptions.defaults()) : null;
                DecodeSelection selShort = window ? cpu.select(qShort, shorter.paged(), sinkWindow,
                        DecodeOptions.defaults()) : null;
                DecodeSelection selUneven = window ? cpu.select(qUneven, uneven.paged(), sinkWindow,
                        DecodeOptions.defaults()) : null;
                for (SplitKv split : List.of(SplitKv.rule(), SplitKv.none())) {
                    DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                    String what = (window ? "sinks + window" : "dense") + " rows " + rows + " " + split;
                    assertEquals(fills, workItems(cpu, q, c.paged(), sel, o), "items across heads, " + what);
                    DecodeFixtures.Run flat = pagedEqualsContiguous(cpu, q, c.contiguous(),
                            List.of(c.paged(), nhd, padded), sel, o, flavour + " " + dtype + " " + what);
                    // one sequence fewer: a sequence an item where the workers stay balanced (on 2 cores), else
                    // an item per head (3 KV heads: no groups); the same bits for those sequences
                    int fewerItems = workItems(cpu, qShort, shorter.paged(), selShort, o);
                    assertTrue(fewerItems == fills - 1 || fewerItems == (fills - 1) * 3, fewerItems + ", " + what);
                    if (processors == 2) {
                        assertEquals(fills - 1, fewerItems, "a sequence an item, one sequence fewer, " + what);
                    }
                    float[] fewer = DecodeFixtures.decode(cpu, qShort, shorter.paged(), selShort, o, DType.F32).out()
                            .toFloatArray();
                    assertArrayEquals(Arrays.copyOf(flat.out().toFloatArray(), fewer.length), fewer,
                            "one sequence fewer, " + what);
                    // dense over one sequence longer than a worker's share: an item per (sequence, KV head)
                    // where there are several workers (sinks + window keep 54 of its keys: a sequence an item);
                    // paged still equals contiguous
                    if (processors > 1) {
                        assertEquals(window ? fills : fills * 3, workItems(cpu, qUneven, uneven.paged(), selUneven, o),
                                "items, one long sequence, " + what);
                    }
                    assertArrayEquals(
                            DecodeFixtures.decode(cpu, qUneven, uneven.contiguous(), selUneven, o, DType.F32).out()
                                    .toFloatArray(),
                            DecodeFixtures.decode(cpu, qUneven, uneven.paged(), selUneven, o, DType.F32).out()
                                    .toFloatArray(), "one long sequence, paged vs contiguous, " + what);
                }
            }
        }
    }

    /**
     * An unsplit batch of mid size on a paged pool read whole pages runs a sequence an item unless its busiest
     * worker would take longer than with some sequences cut into groups of KV heads (costed at {@link
     * HeadGrouping#HEAD_MAJOR_GROUP_COST} on HND pools, {@link HeadGrouping#TOKEN_MAJOR_GROUP_COST} on NHD ones),
     * each group's item reading its heads' rows of every page: a slice of it on HND pools, a stretch of every
     * token's rows on NHD ones; a padded pool runs an item per (sequence, KV head). On 2 cores and 4 KV heads:
     * 6 equal sequences a sequence an item; 5, the longest 4 a sequence an item and the last in halves (6
     * items); 3, two whole and one in halves (4 items); 1, fewer than the workers, a head an item (4 items);
     * on other machines between a sequence and a head an item. Every pool gives the contiguous cache's bits,
     * within the oracle's tolerance, for dense decode and sinks + window, one and three query rows, equal and
     * ragged lengths.
     */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void midSizeBatchesRunWholePagesWhileBalancedElseGroupsOfHeads(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int processors = Runtime.getRuntime().availableProcessors();
        int[] cycle = {130, 77, 0, 160, 99, 145, 64, 113};
        int[] ragged = new int[2 * processors + 1];
        for (int b = 0; b < ragged.length; b++) {
            ragged[b] = cycle[b % cycle.length];
        }
        int[][] cases = {filled(3 * processors, 120), filled(2 * processors + 1, 120), filled(processors + 1, 120),
                ragged, filled(1, 120)};
        int[] onTwoCores = {6, 6, 4, -1, 4};
        DecodeOptions o = DecodeOptions.defaults();
        for (int i = 0; i < cases.length; i++) {
            int[] lengths = cases[i];
            int batch = lengths.length;
            KvProblems.Caches c = KvProblems.caches(49 + i, dtype, lengths, 4, 40, 24, 16, 29);
            PagedKvCache nhd = rewrap(c.paged(), t -> t.to(t.dtype(), Layout.BSHD));
            PagedKvCache padded = rewrap(c.paged(), CpuDecodeTest::withRoomBetweenPages);
            for (int rows : new int[] {1, 3}) {
                Tensor q = DecodeFixtures.query(19 + rows, c.contiguous(), 8, rows);
                for (boolean window : new boolean[] {false, true}) {
                    DecodeSelection sel = window ? cpu.select(q, c.paged(), DecodePattern.sinkWindow(4, 50), o) : null;
                    String what = Arrays.toString(lengths) + (window ? " sinks + window" : " dense") + " rows " + rows;
                    for (KvCache pool : List.of(c.paged(), nhd)) {
                        int items = workItems(cpu, q, pool, sel, o);
                        String where = (pool == nhd ? "NHD, " : "HND, ") + what;
                        assertTrue(items >= batch && items <= batch * 4, items + " items, " + where);
                        if (processors == 2 && onTwoCores[i] > 0) {
                            assertEquals(onTwoCores[i], items, "on 2 cores, " + where);
                        }
                    }
                    assertEquals(batch * 4, workItems(cpu, q, padded, sel, o), "a head an item, padded, " + what);
                    pagedEqualsContiguous(cpu, q, c.contiguous(), List.of(c.paged(), nhd, padded), sel, o,
                            flavour + " " + dtype + " " + what);
                }
            }
        }
    }

    private static int[] filled(int n, int length) {
        int[] a = new int[n];
        Arrays.fill(a, length);
        return a;
    }

    /**
     * Decodes {@code q} on {@code contiguous} and on each of {@code paged} (the same keys): every paged
     * pool gives the contiguous cache's bits, which are within the oracle's tolerance for the cache's dtype.
     * Returns the contiguous cache's run.
     */
    private static DecodeFixtures.Run pagedEqualsContiguous(CpuBackend cpu, Tensor q, KvCache contiguous,
                                                            List<? extends KvCache> paged, DecodeSelection sel,
                                                            DecodeOptions o, String what) {
        DecodeFixtures.Run flat = DecodeFixtures.decode(cpu, q, contiguous, sel, o, DType.F32);
        for (KvCache pool : paged) {
            DecodeFixtures.Run run = DecodeFixtures.decode(cpu, q, pool, sel, o, DType.F32);
            assertArrayEquals(flat.out().toFloatArray(), run.out().toFloatArray(), "paged vs contiguous, " + what);
            assertArrayEquals(flat.lse().toFloatArray(), run.lse().toFloatArray(), "lse, paged vs contiguous, " + what);
        }
        ReferenceResult ref = DecodeFixtures.oracle(q, contiguous, sel, o);
        DType dtype = contiguous.dtype();
        assertTrue(ref.maxRelativeError(flat.out()) <= DecodeFixtures.tolerance(dtype),
                what + ": " + ref.maxRelativeError(flat.out()));
        assertTrue(ref.maxLseError(flat.lse()) <= DecodeFixtures.lseTolerance(dtype),
                "lse, " + what + ": " + ref.maxLseError(flat.lse()));
        return flat;
    }

    /** How many work items {@link CpuDecode} makes of a call. */
    private static int workItems(CpuBackend cpu, Tensor q, KvCache cache, DecodeSelection sel, DecodeOptions o) {
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, q.batch(), q.heads(), q.seqLen(), cache.valueDim());
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, q.batch(), q.heads(), q.seqLen(), 1);
        AttentionShape shape = DecodeArguments.validate(q, cache, sel, out, lse, o);
        return new CpuDecode(DecodeMathProvider.forFlavour(cpu.flavour()), TileMathProvider.best(), shape, q, cache,
                sel, out, lse, o).items().size();
    }

    /**
     * A calling thread keeps the split chunks' partial rows and the key spans from one call to the next.
     * Calls of other shapes in between (more chunks, more spans, fewer of both) change no bit of a result,
     * and a call on a thread that never decoded before gives the same bits.
     */
    @Test
    void workingMemoryKeptBetweenCallsChangesNoResult() throws Exception {
        CpuBackend cpu = new CpuBackend(2);
        KvProblems.Caches big = KvProblems.caches(51, DType.F32, new int[] {2000, 900}, 2, 40, 24, 16, 300);
        KvProblems.Caches small = KvProblems.caches(52, DType.BF16, new int[] {70, 0, 33}, 3, 24, 24, 16, 29);
        Tensor qBig = DecodeFixtures.query(3, big.contiguous(), 4, 2);
        Tensor qSmall = DecodeFixtures.query(4, small.contiguous(), 6, 1);
        DecodeOptions many = DecodeOptions.defaults().withSplit(SplitKv.fixed(40));
        DecodeOptions few = DecodeOptions.defaults().withSplit(SplitKv.fixed(64));
        DecodeSelection topK = cpu.select(qBig, big.paged(), DecodePattern.topK(700), many);
        java.util.function.Supplier<float[][]> bigCalls = () -> {
            DecodeFixtures.Run dense = DecodeFixtures.decode(cpu, qBig, big.paged(), null, many, DType.F32);
            DecodeFixtures.Run sparse = DecodeFixtures.decode(cpu, qBig, big.paged(), topK, many, DType.F32);
            return new float[][] {dense.out().toFloatArray(), dense.lse().toFloatArray(), sparse.out().toFloatArray(),
                    sparse.lse().toFloatArray()};
        };
        java.util.function.Supplier<float[][]> smallCall = () -> {
            DecodeFixtures.Run run = DecodeFixtures.decode(cpu, qSmall, small.paged(), null, few, DType.F32);
            return new float[][] {run.out().toFloatArray(), run.lse().toFloatArray()};
        };
        float[][] bigFirst = bigCalls.get();
        float[][] smallAfterBig = smallCall.get();
        float[][] bigAgain = bigCalls.get();
        var pool = java.util.concurrent.Executors.newSingleThreadExecutor();
        try {
            float[][] smallFresh = pool.submit(smallCall::get).get();
            for (int i = 0; i < smallFresh.length; i++) {
                assertArrayEquals(smallFresh[i], smallAfterBig[i], "small call after big ones, array " + i);
            }
        } finally {
            pool.shutdown();
        }
        for (int i = 0; i < bigFirst.length; i++) {
            assertArrayEquals(bigFirst[i], bigAgain[i], "big calls again, array " + i);
        }
        ReferenceResult ref = DecodeFixtures.oracle(qSmall, small.contiguous(), null, few);
        Tensor out = Tensor.of(smallAfterBig[0], Layout.BHSD, 3, 6, 1, 24);
        assertTrue(ref.maxRelativeError(out) <= DecodeFixtures.tolerance(DType.BF16), "small call against the oracle");
    }

    /** The same pages, block tables and lengths over pools made by {@code pool} from the original ones. */
    private static PagedKvCache rewrap(PagedKvCache c, java.util.function.UnaryOperator<Tensor> pool) {
        PagedKvCache p = PagedKvCache.wrap(pool.apply(c.keyPages()), pool.apply(c.valuePages()), null, c.pageSize(),
                c.batch(), null);
        for (int b = 0; b < c.batch(); b++) {
            p.setBlockTable(b, c.blockTable(b), c.length(b));
        }
        return p;
    }

    /** A copy of a BHSD pool with 64 elements of room after each page. */
    private static Tensor withRoomBetweenPages(Tensor t) {
        int[] shape = t.shape();
        long page = (long) shape[1] * shape[2] * shape[3] + 64;
        Tensor src = t.to(t.dtype(), Layout.BHSD);
        java.lang.foreign.MemorySegment seg = java.lang.foreign.MemorySegment.ofArray(new byte[(int) (page * shape[0]
                * t.dtype().byteSize())]);
        Tensor dst = Tensor.wrap(seg, t.dtype(), shape, new long[] {page, (long) shape[2] * shape[3], shape[3], 1}, 0);
        dst = t.dtype().isScaled() ? dst.withScales(t.scales()) : dst;
        Tensor.copy(src, dst);
        return dst;
    }

    /**
     * A pool that holds one sequence's pages and nothing else, in block-table order: dense decode split
     * across heads reads its pages whole up to the pool's last byte, and gives the contiguous cache's
     * bits. f16 and e4m3 rows are widened page after page (2 KV heads), or read whole as 2-byte elements and
     * then widened head by head (16 KV heads at head dim 256, whose widened runs exceed {@code
     * CpuDecode.WIDENED_PAGES_BYTES}).
     */
    @ParameterizedTest
    @MethodSource("typesAndHeads")
    void wholePagesAreReadUpToThePoolsEnd(DType dtype, int kvHeads, int dim) {
        int length = 512;
        KvProblems.Caches c = KvProblems.caches(17, dtype, new int[] {length}, kvHeads, dim, dim, 16, 200);
        int[] table = c.paged().blockTable(0);
        int pages = length / 16;
        PagedKvCache exact = PagedKvCache.wrap(onlyPages(c.paged().keyPages(), table, pages),
                onlyPages(c.paged().valuePages(), table, pages), null, 16, 1, null);
        int[] inOrder = new int[pages];
        for (int i = 0; i < pages; i++) {
            inOrder[i] = i;
        }
        exact.setBlockTable(0, inOrder, length);
        Tensor q = DecodeFixtures.query(3, c.contiguous(), 2 * kvHeads, 1);
        for (SplitKv split : List.of(SplitKv.fixed(64), SplitKv.fixed(128))) {
            DecodeOptions o = DecodeOptions.defaults().withSplit(split);
            float[] want = DecodeFixtures.decode(VECTOR_OR_SCALAR, q, c.contiguous(), null, o, DType.F32).out()
                    .toFloatArray();
            assertArrayEquals(want, DecodeFixtures.decode(VECTOR_OR_SCALAR, q, exact, null, o, DType.F32).out()
                    .toFloatArray(), dtype + " " + split);
        }
    }

    static Stream<Arguments> typesAndHeads() {
        return Stream.of(DType.values()).flatMap(t -> Stream.of(Arguments.of(t, 2, 64), Arguments.of(t, 16, 256)));
    }

    /** The {@code pages} pages of a BHSD pool that {@code table} names, in its order, as a pool of their own. */
    private static Tensor onlyPages(Tensor pool, int[] table, int pages) {
        int[] shape = pool.shape();
        Tensor dst = Tensor.allocate(pool.dtype(), Layout.BHSD, pages, shape[1], shape[2], shape[3]);
        dst = pool.dtype().isScaled() ? dst.withScales(pool.scales()) : dst;
        for (int i = 0; i < pages; i++) {
            Tensor.copy(pool.narrowBatch(table[i], 1), dst.narrowBatch(i, 1));
        }
        return dst;
    }

    /** Caches in native memory (segment loads) give the bits of heap caches (array loads), paged and not. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void nativeCachesGiveTheBitsOfHeapCaches(DType dtype) {
        int[] lengths = {45, 300};
        KvProblems.Caches c = KvProblems.caches(13, dtype, lengths, 2, 72, 40, 16, 50);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            ContiguousKvCache flat = ContiguousKvCache.wrap(DecodeFixtures.offHeap(arena, c.contiguous().keyStorage()),
                    DecodeFixtures.offHeap(arena, c.contiguous().valueStorage()), c.contiguous().lengths());
            PagedKvCache paged = PagedKvCache.wrap(DecodeFixtures.offHeap(arena, c.paged().keyPages()),
                    DecodeFixtures.offHeap(arena, c.paged().valuePages()),
                    DecodeFixtures.offHeap(arena, c.paged().pageBounds()), c.paged().pageSize(), 2, null);
            for (int b = 0; b < 2; b++) {
                paged.setBlockTable(b, c.paged().blockTable(b), c.paged().length(b));
            }
            for (int rows : new int[] {1, 5}) {
                Tensor q = DecodeFixtures.query(rows, flat, 6, rows);
                DecodeOptions o = DecodeOptions.defaults().withSplit(SplitKv.fixed(100));
                float[] heap = DecodeFixtures.decode(VECTOR_OR_SCALAR, q, c.contiguous(), null, o, DType.F32).out().toFloatArray();
                assertArrayEquals(heap, DecodeFixtures.decode(VECTOR_OR_SCALAR, q, flat, null, o, DType.F32).out().toFloatArray());
                assertArrayEquals(heap, DecodeFixtures.decode(VECTOR_OR_SCALAR, q, paged, null, o, DType.F32).out().toFloatArray());
                DecodePattern quest = DecodePattern.quest(64);
                DecodeSelection a = VECTOR_OR_SCALAR.select(q, c.paged(), quest, o);
                DecodeSelection b = VECTOR_OR_SCALAR.select(q, paged, quest, o);
                for (int s = 0; s < 2; s++) {
                    for (int g = 0; g < 2; g++) {
                        assertArrayEquals(a.chosenSpans(s, g), b.chosenSpans(s, g));
                    }
                }
            }
        }
    }


    /** Decode rows are the last rows of a causal prefill of the whole sequence: the prefill oracle agrees. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void decodeRowsEqualThePrefillOracleRows(DType dtype) {
        int[] lengths = {70, 9};
        KvProblems.Caches c = KvProblems.caches(17, dtype, lengths, 1, 16, 16, 8, 13);
        int rows = 4;
        Tensor q = DecodeFixtures.query(3, c.paged(), 3, rows);
        DecodeFixtures.Run run = DecodeFixtures.decode(VECTOR_OR_SCALAR, q, c.paged(), null, DecodeOptions.defaults(),
                dtype.defaultOutput());
        for (int b = 0; b < lengths.length; b++) {
            Tensor qb = slice(q, b);
            Tensor kb = c.keys()[b];
            Tensor vb = c.values()[b];
            Options causal = Options.causalMask();
            ReferenceResult ref = ReferenceAttention.dense(qb, kb, vb, causal, null);
            assertTrue(ref.maxRelativeError(slice(run.out(), b)) <= DecodeFixtures.tolerance(dtype),
                    dtype + " sequence " + b + ": " + ref.maxRelativeError(slice(run.out(), b)));
        }
    }

    private static Tensor slice(Tensor t, int b) {
        Tensor out = Tensor.allocate(t.dtype(), Layout.BHSD, 1, t.heads(), t.seqLen(), t.dim());
        float[] row = new float[t.dim()];
        for (int h = 0; h < t.heads(); h++) {
            for (int s = 0; s < t.seqLen(); s++) {
                t.readRow(b, h, s, row, 0);
                out.writeRow(0, h, s, row, 0);
            }
        }
        return out;
    }

    /** Ragged lengths {0, 1, 63, 64, 65, 4097} in one batch, split by the rule and by a fixed chunk. */
    @Test
    void raggedBatch() {
        int[] lengths = {0, 1, 63, 64, 65, 4097};
        KvProblems.Caches c = KvProblems.caches(23, DType.F32, lengths, 1, 8, 8, 64, 700);
        Tensor q = DecodeFixtures.query(1, c.paged(), 2, 1);
        for (SplitKv split : List.of(SplitKv.rule(), SplitKv.fixed(256), SplitKv.rule(256, 4))) {
            DecodeOptions o = DecodeOptions.defaults().withSplit(split);
            DecodeFixtures.Run run = DecodeFixtures.decode(VECTOR_OR_SCALAR, q, c.paged(), null, o, DType.F32);
            ReferenceResult ref = DecodeFixtures.oracle(q, c.paged(), null, o);
            assertTrue(ref.maxRelativeError(run.out()) <= 1e-5, split + ": " + ref.maxRelativeError(run.out()));
            assertTrue(ref.maxLseError(run.lse()) <= 1e-4);
            assertEquals(Float.NEGATIVE_INFINITY, run.lse().get(0, 1, 0, 0));
            assertEquals(0f, run.out().get(0, 1, 0, 3));
        }
    }

    /** Any thread count gives bitwise the same result (the split rule reads the machine, not the backend). */
    @Test
    void threadCountDoesNotChangeTheBits() {
        int[] lengths = {3000, 17};
        KvProblems.Caches c = KvProblems.caches(29, DType.BF16, lengths, 1, 32, 32, 16, 500);
        Tensor q = DecodeFixtures.query(2, c.paged(), 2, 2);
        DecodeOptions o = DecodeOptions.defaults().withSplit(SplitKv.rule(256, 4));
        float[] one = DecodeFixtures.decode(new CpuBackend(1), q, c.paged(), null, o, DType.F32).out().toFloatArray();
        float[] three = DecodeFixtures.decode(new CpuBackend(3), q, c.paged(), null, o, DType.F32).out().toFloatArray();
        assertArrayEquals(one, three);
    }

    /** Sparse selections (sinks + window, Quest, top-k, a per-head mix) against the oracle of the same selection. */
    @ParameterizedTest
    @MethodSource("flavoursAndTypes")
    void sparseDecodeMatchesTheOracleOfItsSelection(KernelFlavour flavour, DType dtype) {
        CpuBackend cpu = new CpuBackend(flavour, 2);
        int[] lengths = {0, 5, 100, 333};
        KvProblems.Caches c = KvProblems.caches(31, dtype, lengths, 2, 24, 16, 16, 40);
        List<DecodePattern> patterns = List.of(DecodePattern.sinkWindow(4, 20), DecodePattern.quest(64),
                DecodePattern.quest(48).withSinks(2).withWindow(5), DecodePattern.topK(30),
                DecodePattern.topK(25).withSinks(3).withWindow(7),
                DecodePattern.perKvHead(List.of(DecodePattern.dense(), DecodePattern.sinkWindow(2, 9))));
        for (int rows : new int[] {1, 4}) {
            Tensor q = DecodeFixtures.query(rows, c.paged(), 4, rows);
            for (DecodePattern p : patterns) {
                DecodeSelection sel = cpu.select(q, c.paged(), p, DecodeOptions.defaults());
                DecodeOptions o = DecodeOptions.defaults().withSplit(SplitKv.fixed(32));
                DecodeFixtures.Run paged = DecodeFixtures.decode(cpu, q, c.paged(), sel, o, DType.F32);
                DecodeFixtures.Run flat = DecodeFixtures.decode(cpu, q, c.contiguous(), sel, o, DType.F32);
                assertArrayEquals(flat.out().toFloatArray(), paged.out().toFloatArray(), p.name());
                ReferenceResult ref = DecodeFixtures.oracle(q, c.paged(), sel, o);
                assertTrue(ref.maxRelativeError(paged.out()) <= DecodeFixtures.tolerance(dtype),
                        p.name() + " rows " + rows + ": " + ref.maxRelativeError(paged.out()));
                assertTrue(ref.maxLseError(paged.lse()) <= DecodeFixtures.lseTolerance(dtype));
            }
        }
    }

    /** A chunk whose dtype differs from the cache's is refused naming the rounding; the rounded chunk runs. */
    @Test
    void aPrefillChunkInAnotherDtypeThanTheCacheIsRefusedWithTheRoundingThatFits() {
        KvProblems.Caches c = KvProblems.caches(41, DType.BF16, new int[] {20}, 1, 8, 8, 8, 5);
        Tensor chunk = DecodeFixtures.query(2, c.paged(), 4, 3).to(DType.F32, Layout.BHSD);
        Options causal = Options.causalMask();
        assertMessage("dtype: q, k and v must share one dtype (q may differ from e4m3 k and v), got f32, bf16, bf16"
                + " (round q first: q.to(DType.BF16, Layout.BHSD))", () -> dev.sparsa.attention.Attention.prefill(chunk,
                c.paged(), 0, dev.sparsa.pattern.Dense.INSTANCE, causal));
        Tensor out = dev.sparsa.attention.Attention.prefill(chunk.to(DType.BF16, Layout.BHSD), c.paged(), 0,
                dev.sparsa.pattern.Dense.INSTANCE, causal);
        assertEquals(3, out.seqLen());
    }

    @Test
    void argumentsAreCheckedBeforeAnyKernelRuns() {
        KvProblems.Caches c = KvProblems.caches(37, DType.F32, new int[] {10, 20}, 2, 8, 8, 8, 5);
        KvCache cache = c.paged();
        Tensor q = DecodeFixtures.query(1, cache, 4, 1);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 1, 8);
        DecodeOptions o = DecodeOptions.defaults();
        assertMessage("q: 65 query rows", () -> VECTOR_OR_SCALAR.decode(DecodeFixtures.query(1, cache, 4, 65), cache,
                null, Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 65, 8), null, o));
        assertMessage("q: 3 heads", () -> VECTOR_OR_SCALAR.decode(DecodeFixtures.query(1, cache, 3, 1), cache, null,
                Tensor.allocate(DType.F32, Layout.BHSD, 2, 3, 1, 8), null, o));
        assertMessage("q: dtype bf16 differs from the cache's f32 (round q first: q.to(DType.F32, Layout.BHSD))",
                () -> VECTOR_OR_SCALAR.decode(q.to(DType.BF16, Layout.BHSD), cache, null, out, null, o));
        // the rounding the message names is a query the call takes
        VECTOR_OR_SCALAR.decode(q.to(DType.BF16, Layout.BHSD).to(DType.F32, Layout.BHSD), cache, null, out, null, o);
        assertMessage("out: expected shape", () -> VECTOR_OR_SCALAR.decode(q, cache, null,
                Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 2, 8), null, o));
        assertMessage("lse: expected f32", () -> VECTOR_OR_SCALAR.decode(q, cache, null, out,
                Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 1, 2), o));
        DecodeSelection later = DecodeSelection.builder(2, 2, new int[] {10, 25}).build();
        assertMessage("sequence 1 was selected at length 25", () -> VECTOR_OR_SCALAR.decode(q, cache, later, out, null, o));
        assertMessage("out: overlaps the memory of cache keys", () -> VECTOR_OR_SCALAR.decode(q, c.contiguous(), null,
                Tensor.wrap(c.contiguous().keyStorage().segment(), DType.F32, new int[] {2, 4, 1, 8},
                        new long[] {32, 8, 8, 1}, 0), null, o));
        assertMessage("pattern: quest(64) ranks pages", () -> VECTOR_OR_SCALAR.select(q, c.contiguous(),
                DecodePattern.quest(64), o));
    }

    private static void assertMessage(String start, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(start) || e.getMessage().contains(start), e.getMessage());
    }
}
