package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PageAllocator;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Decode of e4m3 (FP8) caches on the GPU ({@code sparsa_decode_e4m3_<f16|bf16|e4m3>_d<64|128>_mma}): codes
 * with a scale per KV head, widened to the query's type in shared memory, against the fp64 decode
 * oracle, which reads the same values ({@code code × scale}). Contiguous and paged caches holding the
 * same sequences (ragged lengths 0, 1, 63, 64, 65, 4097; unused slots and pages NaN codes), bf16,
 * f16 and e4m3 queries, grouped heads, one and three rows, split-KV with its merge, a selection's spans, a
 * prepared step and its graph replay, Quest and top-k chosen on the device from e4m3 codes, and the refusals.
 * Skipped where the backend is unavailable.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(E4m3SwitchOn.class)
class CudaE4m3DecodeGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final int[] LENGTHS = {0, 1, 63, 64, 65, 4097};
    private static final int KV_HEADS = 2;
    private static final int PAGE = 16;
    /** Scales per KV head: values up to about 3.5 (keys) and 2 (values) fill the codes' range. */
    private static final float[] K_SCALES = {3.5f / 448, 1.75f / 448};
    private static final float[] V_SCALES = {2f / 448, 1f / 448};
    private static final List<Tensor> OPEN = new ArrayList<>();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @AfterAll
    static void free() {
        OPEN.forEach(Tensor::close);
    }

    /** An e4m3 device tensor of NaN codes with the given scales (the base tensor is freed after the class). */
    private static Tensor nanCodes(int b, int h, int s, int d, float[] scales) {
        Tensor x = CudaTensors.allocate(BACKEND.device(), DType.E4M3, Layout.BHSD, b, h, s, d, (byte) 0x7F);
        OPEN.add(x);
        return x.withScales(scales);
    }

    record Caches(ContiguousKvCache contiguous, PagedKvCache paged) {
    }

    /** The same random f32 sequences appended (quantised under the scales) to a contiguous and a paged cache. */
    static Caches caches(long seed, int dim) {
        int batch = LENGTHS.length;
        int cap = 4097 + 64;
        ContiguousKvCache contiguous = ContiguousKvCache.wrap(nanCodes(batch, KV_HEADS, cap, dim, K_SCALES),
                nanCodes(batch, KV_HEADS, cap, dim, V_SCALES), new int[batch]);
        int pages = 8;
        for (int len : LENGTHS) {
            pages += (len + PAGE - 1) / PAGE;
        }
        PagedKvCache paged = PagedKvCache.wrap(nanCodes(pages, KV_HEADS, PAGE, dim, K_SCALES),
                nanCodes(pages, KV_HEADS, PAGE, dim, V_SCALES), null, PAGE, batch, new PageAllocator(pages));
        for (int b = 0; b < batch; b++) {
            if (LENGTHS[b] == 0) {
                continue;
            }
            int n = LENGTHS[b];
            Problems.Qkv p = Problems.qkv(seed * 100 + b, AttentionShape.of(1, KV_HEADS, n, n, dim), DType.F32,
                    Layout.BHSD);
            Tensor k = p.k().narrowSeq(0, LENGTHS[b]);
            Tensor v = p.v().narrowSeq(0, LENGTHS[b]);
            contiguous.append(b, k, v);
            // the paged cache in rounds of 100 tokens would interleave pages; appending per sequence in two parts
            // is enough to make its pages differ from a contiguous run
            int half = LENGTHS[b] / 2;
            paged.append(b, k.narrowSeq(0, half), v.narrowSeq(0, half));
            paged.append(b, k.narrowSeq(half, LENGTHS[b] - half), v.narrowSeq(half, LENGTHS[b] - half));
        }
        return new Caches(contiguous, paged);
    }

    private static Tensor query(long seed, DType dtype, int heads, int rows, int dim) {
        Problems.Qkv p = Problems.qkv(seed, AttentionShape.of(LENGTHS.length, heads, rows, rows, dim), dtype, Layout.BHSD);
        Tensor t = CudaTensors.upload(BACKEND.device(), p.q());
        OPEN.add(t);
        return t;
    }

    /** Frees the device outputs and LSEs of {@code results}. */
    private static void close(AttentionResult... results) {
        for (AttentionResult r : results) {
            r.output().close();
            r.lse().close();
        }
    }

    /** The arithmetic is the 16-bit decode's (an e4m3 query: bf16, after rounding code × scale to bf16 once). */
    private static void assertMatches(String what, ReferenceResult ref, AttentionResult r, DType q) {
        CudaDecodeGpuTest.assertMatches(what, ref, r, q == DType.E4M3 ? DType.BF16 : q, q == DType.E4M3 ? 1e-2 : 1e-3);
    }

    @Test
    void denseDecodeMatchesTheOracleOnContiguousAndPagedCachesBitForBitAlike() {
        DType[] queries = {DType.BF16, DType.F16, DType.E4M3};
        int[] dims = {128, 64, 128};
        for (int x = 0; x < queries.length; x++) {
            DType qt = queries[x];
            int dim = dims[x];
            Caches c = caches(61 + x, dim);
            for (int rows : new int[] {1, 3}) {
                Tensor q = query(71 + rows, qt, 4 * KV_HEADS, rows, dim);
                DecodeOptions o = DecodeOptions.defaults();
                String what = qt + " q, d" + dim + ", rows " + rows;
                AttentionResult a = Attention.decodeWithLse(q, c.contiguous(), o);
                assertTrue(CudaBackend.lastKernel().contains(CudaDecode.kernelName(DType.E4M3, qt, dim)),
                        CudaBackend.lastKernel());
                AttentionResult p = Attention.decodeWithLse(q, c.paged(), o);
                ReferenceResult ref = ReferenceDecode.decode(q, c.contiguous(), null, o.run());
                assertMatches(what + " contiguous", ref, a, qt);
                assertMatches(what + " paged", ref, p, qt);
                assertArrayEquals(a.output().toHost().toFloatArray(), p.output().toHost().toFloatArray(),
                        what + ": paged = contiguous");
                close(a, p);
            }
        }
    }

    @Test
    void splitKvAndSpansMatchTheOracle() {
        Caches c = caches(81, 128);
        Tensor q = query(82, DType.BF16, 4 * KV_HEADS, 2, 128);
        DecodeOptions split = DecodeOptions.defaults().withSplit(SplitKv.fixed(256)).withOutputDType(DType.F32);
        AttentionResult a = Attention.decodeWithLse(q, c.paged(), split);
        assertTrue(CudaBackend.lastKernel().endsWith("sparsa_decode_merge"), CudaBackend.lastKernel());
        AttentionResult none = Attention.decodeWithLse(q, c.paged(), split.withSplit(SplitKv.none()));
        ReferenceResult ref = ReferenceDecode.decode(q, c.paged(), null, split.run());
        assertMatches("split", ref, a, DType.BF16);
        assertMatches("no split", ref, none, DType.BF16);
        // sinks + window: a selection's spans (made on the host from the cache's lengths, read on the device)
        DecodePattern sw = DecodePattern.sinkWindow(4, 100);
        AttentionResult s = Attention.decodeWithLse(q, c.contiguous(), sw, DecodeOptions.defaults());
        ReferenceResult refSw = ReferenceDecode.decode(q, c.contiguous(),
                dev.sparsa.kv.DecodeSelector.select(q, c.contiguous(), sw), DecodeOptions.defaults().run());
        assertMatches("sinks + window", refSw, s, DType.BF16);
    }

    @Test
    void aPreparedStepMatchesTheOracleAndItsGraphReplayItsOwnRun() {
        // (not the direct call's bits: a step chunks its keys at its maxLength, so its LSE may differ in the last bit)
        Caches c = caches(91, 128);
        Tensor q = query(92, DType.BF16, 4 * KV_HEADS, 1, 128);
        DecodeOptions o = DecodeOptions.defaults();
        try (CudaStream stream = new CudaStream(BACKEND.device());
             CudaDecodeStep step = BACKEND.prepareDecodeStep(c.paged(), 4 * KV_HEADS, 1, 2 * c.paged().maxLength(), o,
                     stream)) {
            Tensor[] outs = new Tensor[2];
            Tensor[] lses = new Tensor[2];
            for (int i = 0; i < 2; i++) {
                outs[i] = CudaTensors.allocate(BACKEND.device(), DType.BF16, Layout.BHSD, LENGTHS.length, 4 * KV_HEADS, 1,
                        128);
                lses[i] = CudaTensors.allocate(BACKEND.device(), DType.F32, Layout.BHSD, LENGTHS.length, 4 * KV_HEADS, 1,
                        1);
                OPEN.add(outs[i]);
                OPEN.add(lses[i]);
            }
            String kernels = step.run(q, outs[0], lses[0]);
            assertTrue(kernels.contains(CudaDecode.kernelName(DType.E4M3, DType.BF16, 128)), kernels);
            stream.synchronize("e4m3 decode step");
            try (CudaGraph graph = CudaGraph.capture(stream, () -> step.run(q, outs[1], lses[1]))) {
                graph.launch();
                stream.synchronize("e4m3 decode step replay");
            }
            ReferenceResult ref = ReferenceDecode.decode(q, c.paged(), null, o.run());
            assertMatches("prepared step", ref, new AttentionResult(outs[0], lses[0]), DType.BF16);
            assertArrayEquals(outs[0].toHost().toFloatArray(), outs[1].toHost().toFloatArray(), "replay = run");
            assertArrayEquals(lses[0].toHost().toFloatArray(), lses[1].toHost().toFloatArray(), "replay LSE = run");
        }
    }

    /**
     * A paged e4m3 cache with Quest's page bounds (codes under K's scales, NaN codes before the appends)
     * holding {@code lengths[b]} tokens per sequence, {@code key(b, t)} the value of every channel of token
     * t's key (null: random keys and values).
     */
    private static PagedKvCache boundsCache(long seed, int dim, int[] lengths, java.util.function.IntBinaryOperator key) {
        int pages = 4;
        for (int len : lengths) {
            pages += (len + PAGE - 1) / PAGE;
        }
        PagedKvCache paged = PagedKvCache.wrap(nanCodes(pages, KV_HEADS, PAGE, dim, K_SCALES),
                nanCodes(pages, KV_HEADS, PAGE, dim, V_SCALES), nanCodes(pages, KV_HEADS, 2, dim, K_SCALES), PAGE,
                lengths.length, new PageAllocator(pages));
        for (int b = 0; b < lengths.length; b++) {
            int n = lengths[b];
            if (n == 0) {
                continue;
            }
            Problems.Qkv p = Problems.qkv(seed * 100 + b, AttentionShape.of(1, KV_HEADS, n, n, dim), DType.F32,
                    Layout.BHSD);
            Tensor k = p.k();
            if (key != null) {
                for (int g = 0; g < KV_HEADS; g++) {
                    for (int t = 0; t < n; t++) {
                        k.fillRow(0, g, t, key.applyAsInt(b, t) * 0.5f);
                    }
                }
            }
            int half = n / 2;
            paged.append(b, k.narrowSeq(0, half), p.v().narrowSeq(0, half));
            paged.append(b, k.narrowSeq(half, n - half), p.v().narrowSeq(half, n - half));
        }
        return paged;
    }

    /** The device's selection has the host's spans, and the last call launched kernels named {@code kernels...}. */
    private static void assertSameSpans(DecodeSelection host, DecodeSelection device, int batch, String kernels,
                                        String what) {
        assertTrue(CudaBackend.lastKernel().startsWith(kernels), what + ": " + CudaBackend.lastKernel());
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                assertArrayEquals(host.chosenSpans(b, g), device.chosenSpans(b, g), what + ": sequence " + b + " head " + g);
            }
        }
    }

    @Test
    void questOnTheDeviceChoosesTheHostsPagesFromE4m3BoundsAndDecodesThem() {
        DType[] queries = {DType.BF16, DType.F16, DType.E4M3};
        int[] dims = {128, 64, 128};
        DecodeOptions o = DecodeOptions.defaults();
        for (int x = 0; x < queries.length; x++) {
            DType qt = queries[x];
            int dim = dims[x];
            PagedKvCache paged = boundsCache(101 + x, dim, LENGTHS, null);
            for (int rows : new int[] {1, 2}) {
                Tensor q = query(111 + rows, qt, 4 * KV_HEADS, rows, dim);
                String what = qt + " q, d" + dim + ", rows " + rows;
                for (int budgetPages : new int[] {1, 2, 3, 40, 300}) {
                    DecodePattern.Quest quest = DecodePattern.quest(budgetPages * PAGE);
                    assertSameSpans(DecodeSelector.select(q, paged, quest), BACKEND.select(q, paged, quest, o), LENGTHS.length,
                            "sparsa_quest_bounds_e4m3_", what + ", " + budgetPages + " pages");
                }
                DecodePattern.Quest quest = DecodePattern.quest(40 * PAGE);
                AttentionResult fused = Attention.decodeWithLse(q, paged, quest, o);
                assertTrue(CudaBackend.lastKernel().startsWith(CudaDecode.questBoundsName(DType.E4M3, qt, dim) + "+"),
                        CudaBackend.lastKernel());
                assertMatches(what + " quest", ReferenceDecode.decode(q, paged, DecodeSelector.select(q, paged, quest),
                        o.run()), fused, qt);
                close(fused);
            }
        }
    }

    @Test
    void questOnTheDeviceBreaksTiesOfEqualE4m3BoundsToTheLowerPage() {
        // every third page of a sequence holds one value, ((p % 3) - 1) / 2 (codes alike, so bounds alike): the
        // budget's edge falls inside a group of equal bounds; the third sequence is all one value
        int[] lengths = {PAGE * 300 + 5, PAGE * 257, PAGE * 64};
        PagedKvCache paged = boundsCache(121, 128, lengths, (b, t) -> b == 2 ? 1 : (t / PAGE) % 3 - 1);
        for (DType qt : new DType[] {DType.BF16, DType.E4M3}) {
            Problems.Qkv p = Problems.qkv(122, AttentionShape.of(lengths.length, 4 * KV_HEADS, 1, 1, 128), qt,
                    Layout.BHSD);
            Tensor q = CudaTensors.upload(BACKEND.device(), p.q());
            OPEN.add(q);
            for (int budgetPages : new int[] {1, 2, 40, 101, 257, 400}) {
                DecodePattern.Quest quest = DecodePattern.quest(budgetPages * PAGE);
                assertSameSpans(DecodeSelector.select(q, paged, quest), BACKEND.select(q, paged, quest,
                        DecodeOptions.defaults()), lengths.length, "sparsa_quest_bounds_e4m3_", qt + " q, " + budgetPages
                        + " pages");
            }
        }
    }

    @Test
    void topKOnTheDeviceChoosesTheHostsKeysFromE4m3Codes() {
        DType[] queries = {DType.BF16, DType.F16, DType.E4M3};
        int[] dims = {128, 64, 128};
        DecodeOptions o = DecodeOptions.defaults();
        for (int x = 0; x < queries.length; x++) {
            DType qt = queries[x];
            int dim = dims[x];
            Caches c = caches(151 + x, dim);
            Tensor q = query(161 + x, qt, 4 * KV_HEADS, 2, dim);
            for (DecodePattern.TopK top : List.of(DecodePattern.topK(1), DecodePattern.topK(50),
                    DecodePattern.topK(700).withSinks(4).withWindow(64))) {
                for (KvCache cache : List.<KvCache>of(c.contiguous(), c.paged())) {
                    String what = qt + " q, d" + dim + ", " + top.name() + " " + cache.getClass().getSimpleName();
                    DecodeSelection device = BACKEND.select(q, cache, top, o);
                    assertSameSpans(DecodeSelector.select(q, cache, top), device, LENGTHS.length,
                            "sparsa_decode_key_scores_e4m3_", what);
                }
            }
            DecodePattern.TopK top = DecodePattern.topK(200);
            AttentionResult r = Attention.decodeWithLse(q, c.paged(), top, o);
            assertTrue(CudaBackend.lastKernel().matches(CudaDecodeGpuTest.FUSED_TOPK), CudaBackend.lastKernel());
            assertMatches(qt + " top-k decode", ReferenceDecode.decode(q, c.paged(), DecodeSelector.select(q, c.paged(), top),
                    o.run()), r, qt);
            close(r);
        }
    }

    @Test
    void anF32QueryAndTooManyKvHeadsAreRefusedWithTheReason() {
        Caches c = caches(95, 64);
        Tensor q = query(96, DType.F32, 4 * KV_HEADS, 1, 64);
        Tensor out = CudaTensors.allocate(BACKEND.device(), DType.F32, Layout.BHSD, LENGTHS.length, 4 * KV_HEADS, 1, 64);
        OPEN.add(out);
        String m = assertThrows(IllegalArgumentException.class,
                () -> BACKEND.decode(q, c.contiguous(), null, out, null, DecodeOptions.defaults())).getMessage();
        assertEquals("cuda decodes e4m3 caches with an f16, bf16 or e4m3 query, got f32 (the cpu backend takes any query"
                + " dtype)", m);
        int heads = CudaDecode.MAX_E4M3_KV_HEADS + 1;
        float[] ones = new float[heads];
        java.util.Arrays.fill(ones, 1f);
        KvCache wide = ContiguousKvCache.wrap(nanCodes(1, heads, 16, 64, ones), nanCodes(1, heads, 16, 64, ones),
                new int[] {0});
        assertEquals("cuda decodes e4m3 caches of at most 128 KV heads, got 129", CudaDecode.refusal(wide));
    }
}
