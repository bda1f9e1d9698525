package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PageAllocator;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUresult;
import jcuda.driver.CUstreamCaptureMode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The CUDA decode kernel against the fp64 decode oracle: contiguous and paged caches in CUDA memory
 * holding the same sequences (ragged lengths 0, 1, 63, 64, 65, 4097; unused slots and unused pages
 * NaN), every dtype, one to 64 query rows, grouped heads, split-KV, sparse selections (sink +
 * window, Quest chosen on the device, top-k), a CUDA graph capture of a step, and chunked prefill
 * against a paged cache. Skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaDecodeGpuTest {
    /** The kernels of a top-k decode whose choice was queued with the decode (no copy back), either choice kernel. */
    static final String FUSED_TOPK = ".*sparsa_decode_topk_choose(_c8)?\\+.*";
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final int[] LENGTHS = {0, 1, 63, 64, 65, 4097};
    private static final int KV_HEADS = 2;
    private static final int PAGE = 16;
    private static final List<Tensor> OPEN = new ArrayList<>();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @AfterAll
    static void free() {
        OPEN.forEach(Tensor::close);
    }

    /** The same random sequences in a contiguous and a paged cache on the device. */
    record Caches(ContiguousKvCache contiguous, PagedKvCache paged, Tensor[] k, Tensor[] v) {
    }

    private static Tensor device(Tensor host) {
        Tensor t = CudaTensors.upload(BACKEND.device(), host);
        OPEN.add(t);
        return t;
    }

    private static Tensor nanDevice(DType t, int b, int h, int s, int d) {
        return nanDevice(t, Layout.BHSD, b, h, s, d);
    }

    private static Tensor nanDevice(DType t, Layout layout, int b, int h, int s, int d) {
        Tensor x = CudaTensors.allocate(BACKEND.device(), t, layout, b, h, s, d);
        ((DeviceBuffer) x.deviceMemory()).fill((byte) 0xFF);
        OPEN.add(x);
        return x;
    }

    static Caches caches(long seed, DType dtype, int dim) {
        return caches(seed, dtype, dim, Layout.BHSD);
    }

    /** As {@link #caches(long, DType, int)}, the paged pool's K and V pages in {@code pageLayout} (BSHD: NHD). */
    static Caches caches(long seed, DType dtype, int dim, Layout pageLayout) {
        int batch = LENGTHS.length;
        int cap = 4097 + 64;
        Tensor[] k = new Tensor[batch];
        Tensor[] v = new Tensor[batch];
        Tensor kHost = Tensor.allocate(dtype, Layout.BHSD, batch, KV_HEADS, cap, dim);
        Tensor vHost = Tensor.allocate(dtype, Layout.BHSD, batch, KV_HEADS, cap, dim);
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                for (int t = 0; t < cap; t++) {
                    kHost.fillRow(b, g, t, Float.NaN);
                    vHost.fillRow(b, g, t, Float.NaN);
                }
            }
            Problems.Qkv p = Problems.qkv(seed * 100 + b, AttentionShape.of(1, KV_HEADS, Math.max(LENGTHS[b], 1),
                    Math.max(LENGTHS[b], 1), dim), dtype, Layout.BHSD);
            k[b] = p.k().narrowSeq(0, LENGTHS[b]);
            v[b] = p.v().narrowSeq(0, LENGTHS[b]);
            for (int g = 0; g < KV_HEADS; g++) {
                float[] row = new float[dim];
                for (int t = 0; t < LENGTHS[b]; t++) {
                    k[b].readRow(0, g, t, row, 0);
                    kHost.writeRow(b, g, t, row, 0);
                    v[b].readRow(0, g, t, row, 0);
                    vHost.writeRow(b, g, t, row, 0);
                }
            }
        }
        ContiguousKvCache contiguous = ContiguousKvCache.wrap(device(kHost), device(vHost), LENGTHS);
        int pages = 0;
        for (int len : LENGTHS) {
            pages += (len + PAGE - 1) / PAGE;
        }
        pages += 8;
        PagedKvCache paged = PagedKvCache.wrap(nanDevice(dtype, pageLayout, pages, KV_HEADS, PAGE, dim),
                nanDevice(dtype, pageLayout, pages, KV_HEADS, PAGE, dim), nanDevice(dtype, pages, KV_HEADS, 2, dim), PAGE,
                batch, new PageAllocator(pages));
        // appends in rounds of 100 tokens, so that the sequences' pages interleave in the pool
        int[] done = new int[batch];
        boolean more = true;
        while (more) {
            more = false;
            for (int b = 0; b < batch; b++) {
                int n = Math.min(100, LENGTHS[b] - done[b]);
                if (n > 0) {
                    paged.append(b, k[b].narrowSeq(done[b], n), v[b].narrowSeq(done[b], n));
                    done[b] += n;
                    more = true;
                }
            }
        }
        return new Caches(contiguous, paged, k, v);
    }

    private static Tensor query(long seed, DType dtype, int heads, int rows, int dim) {
        Problems.Qkv p = Problems.qkv(seed, AttentionShape.of(LENGTHS.length, heads, rows, rows, dim), dtype, Layout.BHSD);
        return device(p.q());
    }

    private static void assertMatches(String what, ReferenceResult ref, AttentionResult r, DType dtype) {
        assertMatches(what, ref, r, dtype, dtype == DType.F32 ? 1e-4 : 1e-3);
    }

    /**
     * {@code r} within {@code dtype}'s output tolerance and {@code lseTol} of the oracle, and sequence 0
     * (length 0) empty.
     */
    static void assertMatches(String what, ReferenceResult ref, AttentionResult r, DType dtype, double lseTol) {
        Tensor out = r.output().toHost();
        Tensor lse = r.lse().toHost();
        double tol = Problems.tolerance(dtype);
        double err = ref.maxRelativeError(out);
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
        double lseErr = ref.maxLseError(lse);
        assertTrue(lseErr <= lseTol, what + ": LSE error " + lseErr);
        // length 0: every row 0 and -inf
        assertEquals(Float.NEGATIVE_INFINITY, lse.get(0, 0, 0, 0), what + ": empty sequence's LSE");
        assertEquals(0f, out.get(0, 0, 0, 0), what + ": empty sequence's output");
    }

    @Test
    void denseDecodeMatchesTheOracleOnContiguousAndPagedCachesBitForBitAlike() {
        // f32 and f16 d256 on the CUDA-core kernel, f16 d64 and bf16 d128 on the tensor-core one
        DType[] dtypes = {DType.F32, DType.F16, DType.F16, DType.BF16};
        int[] dims = {64, 256, 64, 128};
        for (int x = 0; x < dtypes.length; x++) {
            DType dtype = dtypes[x];
            int dim = dims[x];
            Caches c = caches(31 + x, dtype, dim);
            for (int rows : new int[] {1, 3}) {
                Tensor q = query(41 + rows, dtype, 4 * KV_HEADS, rows, dim);
                DecodeOptions o = DecodeOptions.defaults();
                AttentionResult a = Attention.decodeWithLse(q, c.contiguous(), o);
                assertTrue(CudaBackend.lastKernel().contains(CudaDecode.kernelName(dtype, dim)), CudaBackend.lastKernel());
                AttentionResult p = Attention.decodeWithLse(q, c.paged(), o);
                ReferenceResult ref = ReferenceDecode.decode(q, c.contiguous(), null, o.run());
                assertMatches(dtype + " rows " + rows + " contiguous", ref, a, dtype);
                assertMatches(dtype + " rows " + rows + " paged", ref, p, dtype);
                assertArrayEquals(a.output().toHost().toFloatArray(), p.output().toHost().toFloatArray(), "paged = contiguous");
                a.output().close();
                a.lse().close();
                p.output().close();
                p.lse().close();
            }
        }
    }

    /**
     * A pool in NHD order (a token's rows of every KV head side by side, vLLM's layout) holds the same sequences
     * as the HND pool: dense decode on both kernels and Quest (its pages chosen on the device) give the HND
     * pool's bits, within the oracle's tolerance.
     */
    @Test
    void nhdPagesGiveTheHndPagesBits() {
        DType[] dtypes = {DType.F32, DType.BF16};
        int[] dims = {64, 128};
        for (int x = 0; x < dtypes.length; x++) {
            DType dtype = dtypes[x];
            Caches hnd = caches(37 + x, dtype, dims[x]);
            Caches nhd = caches(37 + x, dtype, dims[x], Layout.BSHD);
            assertEquals(java.util.Optional.of(Layout.BSHD), nhd.paged().pageLayout());
            Tensor q = query(47, dtype, 4 * KV_HEADS, 1, dims[x]);
            DecodeOptions o = DecodeOptions.defaults();
            for (DecodePattern pattern : List.of(DecodePattern.dense(), DecodePattern.quest(512))) {
                String what = dtype + " " + pattern;
                AttentionResult a = Attention.decodeWithLse(q, hnd.paged(), pattern, o);
                AttentionResult b = Attention.decodeWithLse(q, nhd.paged(), pattern, o);
                DecodeSelection chosen = pattern instanceof DecodePattern.Dense ? null
                        : DecodeSelector.select(q, nhd.paged(), pattern);
                assertMatches(what + " NHD", ReferenceDecode.decode(q, nhd.paged(), chosen, o.run()), b, dtype);
                assertArrayEquals(a.output().toHost().toFloatArray(), b.output().toHost().toFloatArray(),
                        what + ": NHD = HND");
                assertArrayEquals(a.lse().toHost().toFloatArray(), b.lse().toHost().toFloatArray(), what + ": LSE");
                for (AttentionResult r : List.of(a, b)) {
                    r.output().close();
                    r.lse().close();
                }
            }
        }
    }

    @Test
    void splitKvMergesExactlyAndRepeatsBitForBit() {
        Caches c = caches(51, DType.F32, 128);
        Tensor q = query(52, DType.F32, 4 * KV_HEADS, 2, 128);
        DecodeOptions split = DecodeOptions.defaults().withSplit(SplitKv.fixed(256)).withOutputDType(DType.F32);
        AttentionResult a = Attention.decodeWithLse(q, c.paged(), split);
        assertTrue(CudaBackend.lastKernel().endsWith("sparsa_decode_merge"), CudaBackend.lastKernel());
        AttentionResult b = Attention.decodeWithLse(q, c.paged(), split);
        AttentionResult none = Attention.decodeWithLse(q, c.paged(), split.withSplit(SplitKv.none()));
        assertArrayEquals(a.output().toHost().toFloatArray(), b.output().toHost().toFloatArray(), "deterministic");
        ReferenceResult ref = ReferenceDecode.decode(q, c.paged(), null, split.run());
        assertMatches("split", ref, a, DType.F32);
        assertMatches("no split", ref, none, DType.F32);
    }

    @Test
    void theMergeInTheDecodeKernelGivesTheMergeKernelsBits() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Caches c = caches(55, dtype, 128);
            Tensor q = query(56, dtype, 4 * KV_HEADS, 3, 128);
            for (SplitKv split : new SplitKv[] {SplitKv.fixed(64), SplitKv.fixed(200), SplitKv.rule()}) {
                DecodeOptions o = DecodeOptions.defaults().withSplit(split).withOutputDType(DType.F32);
                for (KvCache cache : new KvCache[] {c.contiguous(), c.paged()}) {
                    String what = dtype + " " + split + (cache == c.paged() ? " paged" : " contiguous");
                    boolean was = CudaDecode.mergeInDecode;
                    AttentionResult separate;
                    String kernel;
                    String foldedKernel;
                    List<AttentionResult> folded = new ArrayList<>();
                    try {
                        CudaDecode.mergeInDecode = false;
                        separate = Attention.decodeWithLse(q, cache, o);
                        kernel = CudaBackend.lastKernel();
                        CudaDecode.mergeInDecode = true;
                        // three calls in a row: each must find its counters back at zero
                        for (int call = 0; call < 3; call++) {
                            folded.add(Attention.decodeWithLse(q, cache, o));
                        }
                        foldedKernel = CudaBackend.lastKernel();
                    } finally {
                        CudaDecode.mergeInDecode = was;
                    }
                    for (int call = 0; call < 3; call++) {
                        AttentionResult f = folded.get(call);
                        assertArrayEquals(separate.output().toHost().toFloatArray(), f.output().toHost().toFloatArray(),
                                what + " (" + kernel + ") call " + call + ": outputs");
                        assertArrayEquals(separate.lse().toHost().toFloatArray(), f.lse().toHost().toFloatArray(),
                                what + " (" + kernel + ") call " + call + ": LSEs");
                        f.output().close();
                        f.lse().close();
                    }
                    if (split.fixedChunkKeys() > 0) {
                        assertTrue(kernel.endsWith("+sparsa_decode_merge"), what + ": split, merged by " + kernel);
                        assertTrue(foldedKernel.endsWith("+merge-in-decode"), what + ": merged by " + foldedKernel);
                    }
                    assertMatches(what, ReferenceDecode.decode(q, cache, null, o.run()), separate, dtype);
                    separate.output().close();
                    separate.lse().close();
                }
            }
        }
    }

    @Test
    void tensorCoreDecodeSplitsAndMergesAcrossChunksAndWarps() {
        Caches c = caches(53, DType.BF16, 128);
        Tensor q = query(54, DType.BF16, 4 * KV_HEADS, 2, 128);
        // chunks of 96 keys: six 16-key tiles for twelve warps, so that some warps of an item get no keys at all
        for (SplitKv split : new SplitKv[] {SplitKv.fixed(96), SplitKv.fixed(1000), SplitKv.none()}) {
            DecodeOptions o = DecodeOptions.defaults().withSplit(split).withOutputDType(DType.F32);
            AttentionResult a = Attention.decodeWithLse(q, c.paged(), o);
            assertTrue(CudaBackend.lastKernel().contains("sparsa_decode_bf16_d128_mma"), CudaBackend.lastKernel());
            AttentionResult b = Attention.decodeWithLse(q, c.paged(), o);
            assertArrayEquals(a.output().toHost().toFloatArray(), b.output().toHost().toFloatArray(), split + ": deterministic");
            assertMatches(split.toString(), ReferenceDecode.decode(q, c.paged(), null, o.run()), a, DType.BF16);
        }
    }

    @Test
    void sixtyFourQueryRowsPerSequenceWithRowsBeforeTheStart() {
        Caches c = caches(61, DType.BF16, 128);
        Tensor q = query(62, DType.BF16, 4 * KV_HEADS, 64, 128);
        DecodeOptions o = DecodeOptions.defaults();
        AttentionResult r = Attention.decodeWithLse(q, c.paged(), o);
        assertMatches("64 rows", ReferenceDecode.decode(q, c.paged(), null, o.run()), r, DType.BF16);
        // sequence 1 holds one token: its rows 0..62 sit before the start and admit nothing
        assertEquals(Float.NEGATIVE_INFINITY, r.lse().toHost().get(1, 5, 10, 0));
    }

    @Test
    void sparseSelectionsDecodeOverTheirKeysOnly() {
        Caches c = caches(71, DType.F16, 128);
        Tensor q = query(72, DType.F16, 4 * KV_HEADS, 2, 128);
        DecodeOptions o = DecodeOptions.defaults().withSplit(SplitKv.fixed(512));
        for (DecodePattern pattern : List.of(DecodePattern.sinkWindow(4, 100), DecodePattern.topK(300),
                DecodePattern.quest(256).withSinks(2).withWindow(40), DecodePattern.perKvHead(List.of(DecodePattern.dense(),
                        DecodePattern.sinkWindow(8, 64))))) {
            DecodeSelection sel = Attention.select(q, c.paged(), pattern, o);
            AttentionResult r = Attention.decodeWithLse(q, c.paged(), sel, o);
            assertMatches(pattern.name(), ReferenceDecode.decode(q, c.paged(), sel, o.run()), r, DType.F16);
        }
    }

    @Test
    void topKOnTheDeviceChoosesTheHostsKeysOnContiguousAndPagedCaches() {
        // the host's choice (DecodeSelector, plain Java on host copies) is the definition; the device's scores have
        // its bits, so the spans must be equal, not merely close
        for (DType t : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            int dim = t == DType.F16 ? 64 : 128;
            Caches c = caches(131, t, dim);
            for (int rows : new int[] {1, 3}) {
                Tensor q = query(132 + rows, t, 4 * KV_HEADS, rows, dim);
                DecodeOptions o = DecodeOptions.defaults();
                for (DecodePattern.TopK top : List.of(DecodePattern.topK(1), DecodePattern.topK(37),
                        DecodePattern.topK(1000).withSinks(4).withWindow(64), DecodePattern.topK(60).withSinks(3),
                        DecodePattern.topK(5000), new DecodePattern.TopK(0, 0, 16))) {
                    for (KvCache cache : List.<KvCache>of(c.contiguous(), c.paged())) {
                        String what = t + " d" + dim + " rows " + rows + " " + top.name() + " "
                                + cache.getClass().getSimpleName();
                        DecodeSelection device = BACKEND.select(q, cache, top, o);
                        assertTrue(CudaBackend.lastKernel().startsWith("sparsa_decode_key_scores_"), what + ": "
                                + CudaBackend.lastKernel());
                        DecodeSelection host = DecodeSelector.select(q, cache, top);
                        for (int b = 0; b < LENGTHS.length; b++) {
                            for (int g = 0; g < KV_HEADS; g++) {
                                assertArrayEquals(host.chosenSpans(b, g), device.chosenSpans(b, g),
                                        what + ": sequence " + b + " head " + g);
                            }
                        }
                    }
                }
                // scores, choice and decode queued together (one row, or no window), else chosen, copied back, decoded
                for (DecodePattern.TopK top : List.of(DecodePattern.topK(300).withSinks(2),
                        DecodePattern.topK(300).withSinks(2).withWindow(50), DecodePattern.topK(100000))) {
                    for (KvCache cache : List.<KvCache>of(c.contiguous(), c.paged())) {
                        String what = t + " rows " + rows + " " + top.name() + " " + cache.getClass().getSimpleName();
                        AttentionResult r = Attention.decodeWithLse(q, cache, top, o);
                        boolean fused = rows == 1 || top.window() == 0;
                        assertEquals(fused, CudaBackend.lastKernel().matches(FUSED_TOPK),
                                what + ": " + CudaBackend.lastKernel());
                        assertMatches(what, ReferenceDecode.decode(q, cache, DecodeSelector.select(q, cache, top), o.run()),
                                r, t);
                    }
                }
            }
        }
    }

    @Test
    void topKOnTheDeviceBreaksTiesToTheLowerKeyAndRanksNanKeysLast() {
        // sequences of 3000, 9000 and 17000 keys whose rows take one of three values by position (ties at every
        // budget's edge), a few NaN keys among them, and a sequence of one value throughout; one CTA holds up to 8192
        // candidates in registers (decChooseBestRegs<8>), up to 16384 in more registers (decChooseBestRegs<16>) and
        // takes more in passes over shared memory (decChooseBest), so each long sequence takes one of the forms
        int[] lengths = {3000, 777, 9000, 17000};
        int dim = 64;
        Tensor kHost = Tensor.allocate(DType.BF16, Layout.BHSD, lengths.length, KV_HEADS, 17000, dim);
        for (int b = 0; b < lengths.length; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                for (int t = 0; t < 17000; t++) {
                    float x = b == 1 ? 0.25f : t % 97 == 5 ? Float.NaN : ((t * 7 + g) % 3 - 1) * 0.5f;
                    kHost.fillRow(b, g, t, x);
                }
            }
        }
        ContiguousKvCache cache = ContiguousKvCache.wrap(device(kHost), device(kHost), lengths);
        Problems.Qkv p = Problems.qkv(141, AttentionShape.of(lengths.length, 4 * KV_HEADS, 2, 2, dim), DType.BF16,
                Layout.BHSD);
        Tensor q = device(p.q());
        // every candidate's order key in shared memory, none, the first 1234 and the first 40 (the ties and NaN keys on
        // both sides; with clusters each CTA's slice, of 384 or 128 candidates, is partly cached at 40), chosen by
        // clusters where the device has them and by one CTA per (sequence, head)
        for (int smemKeys : new int[] {CudaChoice.smemKeys, 0, 1234, 40}) {
            for (boolean clusters : new boolean[] {true, false}) {
                withChoice(smemKeys, clusters, () -> {
                    for (int tokens : new int[] {1, 2, 500, 999, 1000, 1001, 2900, 2999, 4500, 8999, 12000, 16999}) {
                        DecodePattern.TopK top = DecodePattern.topK(tokens);
                        DecodeSelection device = BACKEND.select(q, cache, top, DecodeOptions.defaults());
                        assertChoiceKernel(clusters);
                        assertSameSpans(DecodeSelector.select(q, cache, top), device, lengths.length,
                                tokens + " tokens, " + smemKeys + " keys in shared memory");
                    }
                });
            }
        }
    }

    /**
     * Runs {@code check} with the device's choice keeping {@code smemKeys} order keys per CTA in shared
     * memory and choosing by clusters (at every width) or by one CTA per (sequence, head), then restores both.
     */
    private static void withChoice(int smemKeys, boolean clusters, Runnable check) {
        int saved = CudaChoice.smemKeys;
        boolean savedClusters = CudaChoice.clusters;
        CudaChoice.smemKeys = smemKeys;
        CudaChoice.clusters = clusters;
        CudaChoice.clusterMinWidth = 0;
        try {
            check.run();
        } finally {
            CudaChoice.smemKeys = saved;
            CudaChoice.clusters = savedClusters;
            CudaChoice.clusterMinWidth = CudaChoice.CLUSTER_MIN_WIDTH;
        }
    }

    /** The last call's choice ran as clusters exactly when asked to and the device has them. */
    private static void assertChoiceKernel(boolean clusters) {
        assertEquals(clusters && BACKEND.device().computeCapability() >= 90, CudaBackend.lastKernel().endsWith("_c8"),
                CudaBackend.lastKernel());
    }

    /** The device's selection chose the host's spans for every (sequence, KV head). */
    private static void assertSameSpans(DecodeSelection host, DecodeSelection device, int batch, String what) {
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                assertArrayEquals(host.chosenSpans(b, g), device.chosenSpans(b, g),
                        what + ", " + CudaBackend.lastKernel() + ": sequence " + b + " head " + g);
            }
        }
    }

    @Test
    void questOnTheDeviceChoosesTheHostsPagesAndDecodesThemInOnePass() {
        Caches c = caches(81, DType.F32, 128);
        Tensor q = query(82, DType.F32, 4 * KV_HEADS, 1, 128);
        DecodeOptions o = DecodeOptions.defaults();
        DecodePattern.Quest quest = DecodePattern.quest(512);
        DecodeSelection device = BACKEND.select(q, c.paged(), quest, o);
        DecodeSelection host = DecodeSelector.select(q, c.paged(), quest);
        for (int b = 0; b < LENGTHS.length; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                assertArrayEquals(host.chosenSpans(b, g), device.chosenSpans(b, g), "pages of sequence " + b + " head " + g);
            }
        }
        AttentionResult fused = Attention.decodeWithLse(q, c.paged(), quest, o);
        assertTrue(CudaBackend.lastKernel().startsWith("sparsa_quest_bounds"), CudaBackend.lastKernel());
        assertMatches("quest", ReferenceDecode.decode(q, c.paged(), host, o.run()), fused, DType.F32);
        AttentionResult viaSelection = Attention.decodeWithLse(q, c.paged(), device, o);
        assertArrayEquals(viaSelection.output().toHost().toFloatArray(), fused.output().toHost().toFloatArray());
    }

    @Test
    void perKvHeadMixesChooseTheirQuestAndTopKHeadsOnTheDevice() {
        // the host's choice (DecodeSelector on host copies) is the definition: every head's static part and chosen
        // spans must be equal; the device path leaves its kernels' names, which the host path never touches
        for (DType t : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            int dim = t == DType.F16 ? 64 : 128;
            Caches c = caches(181, t, dim);
            for (int rows : new int[] {1, 2}) {
                Tensor q = query(182 + rows, t, 4 * KV_HEADS, rows, dim);
                DecodeOptions o = DecodeOptions.defaults();
                for (List<DecodePattern> heads : List.<List<DecodePattern>>of(
                        List.<DecodePattern>of(DecodePattern.topK(300).withSinks(2), DecodePattern.quest(256)),
                        List.<DecodePattern>of(DecodePattern.dense(), DecodePattern.topK(100).withWindow(30)),
                        List.<DecodePattern>of(DecodePattern.quest(128).withSinks(4).withWindow(20), DecodePattern.sinkWindow(8, 64)),
                        List.<DecodePattern>of(DecodePattern.topK(50), DecodePattern.topK(50)))) {
                    DecodePattern mix = DecodePattern.perKvHead(heads);
                    String what = t + " d" + dim + " rows " + rows + " " + mix.name();
                    try (Tensor dense = Attention.decode(q, c.paged(), o)) {
                        assertNotNull(dense); // leaves a dense kernel's name
                    }
                    DecodeSelection device = BACKEND.select(q, c.paged(), mix, o);
                    assertTrue(CudaBackend.lastKernel().matches("sparsa_(decode_key_scores|quest_bounds)_.*"),
                            what + ": chosen on the host? last kernels " + CudaBackend.lastKernel());
                    DecodeSelection host = DecodeSelector.select(q, c.paged(), mix);
                    for (int b = 0; b < LENGTHS.length; b++) {
                        for (int g = 0; g < KV_HEADS; g++) {
                            String at = what + ": sequence " + b + " head " + g;
                            assertEquals(host.isDense(b, g), device.isDense(b, g), at);
                            assertEquals(host.sinks(b, g), device.sinks(b, g), at);
                            assertEquals(host.window(b, g), device.window(b, g), at);
                            assertArrayEquals(host.chosenSpans(b, g), device.chosenSpans(b, g), at);
                        }
                    }
                    AttentionResult r = Attention.decodeWithLse(q, c.paged(), mix, o);
                    assertMatches(what, ReferenceDecode.decode(q, c.paged(), host, o.run()), r, t);
                }
            }
        }
        // a mix whose scored head the device does not choose (Quest on a cache without page bounds) is the
        // default's: refused with its reason
        Caches c = caches(191, DType.BF16, 128);
        Tensor q = query(192, DType.BF16, 4 * KV_HEADS, 1, 128);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BACKEND.select(q, c.contiguous(),
                DecodePattern.perKvHead(List.of(DecodePattern.topK(10), DecodePattern.quest(64))), DecodeOptions.defaults()));
        assertTrue(e.getMessage().contains("page bounds"), e.getMessage());
    }

    @Test
    void questOnTheDeviceScoresNaNAndInfinitiesInQueriesAndKeysAsTheHostDoes() {
        // the host's rule per channel is Math.max(q * min, q * max), NaN when either product is (0 * inf, inf * 0),
        // and the max over the group's query vectors keeps NaN: a NaN page ranks last, +inf first. Keys and queries
        // of KvProblems.questEdgeKeys / questEdgeQueries: q = 0 against a -inf minimum and q = +inf against a 0
        // minimum are NaN on the host where a select by q's sign is finite or +inf. Then a NaN in query head 2: KV
        // head 0's every page scores NaN (the lowest pages and the last are kept), KV head 1's choice is unchanged.
        int dim = 128;
        for (DType t : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            int pages = 0;
            for (int len : LENGTHS) {
                pages += (len + PAGE - 1) / PAGE;
            }
            PagedKvCache paged = PagedKvCache.wrap(nanDevice(t, pages, KV_HEADS, PAGE, dim),
                    nanDevice(t, pages, KV_HEADS, PAGE, dim), nanDevice(t, pages, KV_HEADS, 2, dim), PAGE,
                    LENGTHS.length, new PageAllocator(pages));
            for (int b = 0; b < LENGTHS.length; b++) {
                if (LENGTHS[b] == 0) {
                    continue;
                }
                Problems.Qkv p = Problems.qkv(281 + b, AttentionShape.of(1, KV_HEADS, LENGTHS[b], LENGTHS[b], dim), t,
                        Layout.BHSD);
                KvProblems.questEdgeKeys(p.k(), PAGE);
                paged.append(b, p.k(), p.v());
            }
            Tensor qh = Problems.qkv(282, AttentionShape.of(LENGTHS.length, 4 * KV_HEADS, 1, 1, dim), t, Layout.BHSD).q();
            DecodeOptions o = DecodeOptions.defaults();
            for (boolean nanQuery : new boolean[] {false, true}) {
                KvProblems.questEdgeQueries(qh, nanQuery);
                Tensor q = device(qh);
                for (int budgetPages : new int[] {1, 9, 32, 120}) {
                    DecodePattern.Quest quest = DecodePattern.quest(budgetPages * PAGE);
                    DecodeSelection device = BACKEND.select(q, paged, quest, o);
                    assertTrue(CudaBackend.lastKernel().contains("sparsa_quest_bounds"), CudaBackend.lastKernel());
                    DecodeSelection host = DecodeSelector.select(q, paged, quest);
                    assertSameSpans(host, device, LENGTHS.length, t + ", " + budgetPages + " pages"
                            + (nanQuery ? ", NaN in query head 2" : ""));
                    if (nanQuery && budgetPages == 9) {
                        // every page of KV head 0 scores NaN: the first eight pages of the table and the last
                        int[] spans = host.chosenSpans(5, 0);
                        assertArrayEquals(new int[] {0, 8 * PAGE, 4096, 4097}, spans, Arrays.toString(spans));
                    }
                }
            }
        }
    }

    @Test
    void questOnTheDeviceBreaksTiesOfEqualBoundsToTheLowerPage() {
        // page p of sequence b holds rows of one value, ((p % 3) - 1) / 2: every third page bounds alike, so the
        // budget's edge falls inside a group of equal scores; a third sequence is all one value
        int[] lengths = {PAGE * 300 + 5, PAGE * 257, PAGE * 64};
        int dim = 128;
        int pages = 0;
        for (int len : lengths) {
            pages += (len + PAGE - 1) / PAGE;
        }
        PagedKvCache paged = PagedKvCache.wrap(nanDevice(DType.F32, pages, KV_HEADS, PAGE, dim),
                nanDevice(DType.F32, pages, KV_HEADS, PAGE, dim), nanDevice(DType.F32, pages, KV_HEADS, 2, dim), PAGE,
                lengths.length, new PageAllocator(pages));
        for (int b = 0; b < lengths.length; b++) {
            Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, KV_HEADS, lengths[b], dim);
            for (int g = 0; g < KV_HEADS; g++) {
                for (int t = 0; t < lengths[b]; t++) {
                    k.fillRow(0, g, t, b == 2 ? 0.25f : ((t / PAGE) % 3 - 1) * 0.5f);
                }
            }
            paged.append(b, k, k);
        }
        Problems.Qkv p = Problems.qkv(83, AttentionShape.of(lengths.length, 4 * KV_HEADS, 1, 1, dim), DType.F32,
                Layout.BHSD);
        Tensor q = device(p.q());
        DecodeOptions o = DecodeOptions.defaults();
        // the candidates' keys in shared memory, then reread from memory, then the first 37 of each CTA's share in
        // shared memory and the others reread; each chosen by clusters (where the device has them) and by one CTA per
        // (sequence, head); the bounds from as many CTAs as pages ask for, then from one per (sequence, head), whose
        // lane groups take turns over the pages
        for (int smemKeys : new int[] {CudaChoice.smemKeys, 0, 37}) {
            for (boolean clusters : new boolean[] {true, false}) {
                int savedCtas = CudaDecode.questBoundsMaxCtas;
                CudaDecode.questBoundsMaxCtas = smemKeys == 0 ? 1 : savedCtas;
                try {
                    withChoice(smemKeys, clusters, () -> {
                        for (int budgetPages : new int[] {1, 2, 40, 101, 257, 400}) {
                            DecodePattern.Quest quest = DecodePattern.quest(budgetPages * PAGE);
                            DecodeSelection device = BACKEND.select(q, paged, quest, o);
                            assertChoiceKernel(clusters);
                            assertSameSpans(DecodeSelector.select(q, paged, quest), device, lengths.length,
                                    budgetPages + " pages, " + smemKeys + " keys in shared memory");
                        }
                    });
                } finally {
                    CudaDecode.questBoundsMaxCtas = savedCtas;
                }
            }
        }
    }

    @Test
    void aDecodeStepOnACallersStreamIsCapturedInAGraphAndReplayed() {
        Caches c = caches(91, DType.BF16, 128);
        Tensor q = query(92, DType.BF16, 4 * KV_HEADS, 1, 128);
        DecodeOptions o = DecodeOptions.defaults();
        CudaDevice dev = BACKEND.device();
        Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, LENGTHS.length, 4 * KV_HEADS, 1, 128);
        OPEN.add(out);
        try (CudaStream stream = new CudaStream(dev); CudaStream.Scope scope = stream.use()) {
            BACKEND.decode(q, c.paged(), (DecodeSelection) null, out, null, o);
            stream.synchronize();
            float[] expected = out.toHost().toFloatArray();
            ((DeviceBuffer) out.deviceMemory()).fill((byte) 0xFF);
            dev.makeCurrent();
            assertEquals(CudaResult.OK, cuStreamBeginCapture(stream.handle(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED));
            BACKEND.decode(q, c.paged(), (DecodeSelection) null, out, null, o);
            CUgraph graph = new CUgraph();
            assertEquals(CudaResult.OK, cuStreamEndCapture(stream.handle(), graph));
            assertTrue(Float.isNaN(out.toHost().get(2, 0, 0, 0)), "captured, not run");
            CUgraphExec exec = new CUgraphExec();
            assertEquals(CudaResult.OK, cuGraphInstantiate(exec, graph, 0));
            for (int i = 0; i < 3; i++) {
                assertEquals(CudaResult.OK, cuGraphLaunch(exec, stream.handle()));
            }
            stream.synchronize();
            assertArrayEquals(expected, out.toHost().toFloatArray(), "the replayed step");
            cuGraphExecDestroy(exec);
            cuGraphDestroy(graph);
        }
    }

    @Test
    void topKOnACallersStreamIsCapturedInAGraphAndReplayed() {
        // scores, choice and decode with nothing copied back: the whole step replays from a graph
        Caches c = caches(93, DType.BF16, 128);
        Tensor q = query(94, DType.BF16, 4 * KV_HEADS, 1, 128);
        DecodeOptions o = DecodeOptions.defaults();
        DecodePattern.TopK top = DecodePattern.topK(200).withSinks(4).withWindow(32);
        CudaDevice dev = BACKEND.device();
        Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, LENGTHS.length, 4 * KV_HEADS, 1, 128);
        OPEN.add(out);
        try (CudaStream stream = new CudaStream(dev); CudaStream.Scope scope = stream.use()) {
            BACKEND.selectAndDecode(q, c.paged(), top, out, null, o);
            stream.synchronize();
            assertTrue(CudaBackend.lastKernel().matches(FUSED_TOPK), CudaBackend.lastKernel());
            float[] expected = out.toHost().toFloatArray();
            ((DeviceBuffer) out.deviceMemory()).fill((byte) 0xFF);
            try (CudaGraph graph = CudaGraph.capture(stream, () -> BACKEND.selectAndDecode(q, c.paged(), top, out, null, o))) {
                assertTrue(Float.isNaN(out.toHost().get(2, 0, 0, 0)), "captured, not run");
                for (int i = 0; i < 3; i++) {
                    graph.launch();
                }
                stream.synchronize();
            }
            assertArrayEquals(expected, out.toHost().toFloatArray(), "the replayed top-k step");
        }
    }

    /** CUDA_SUCCESS under a short name. */
    private static final class CudaResult {
        static final int OK = CUresult.CUDA_SUCCESS;
    }

    @Test
    void chunkedPrefillAgainstAPagedCacheMatchesTheOracle() {
        Caches c = caches(101, DType.BF16, 128);
        int seq = 5;
        int length = LENGTHS[seq];
        int chunk = 300;
        Problems.Qkv p = Problems.qkv(102, AttentionShape.of(1, 4 * KV_HEADS, chunk, chunk, 128), DType.BF16, Layout.BHSD);
        Tensor q = device(p.q());
        Options options = Options.causalMask();
        AttentionResult r = Attention.prefillWithLse(q, c.paged(), seq, Dense.INSTANCE, options);
        AttentionShape s = new AttentionShape(1, 4 * KV_HEADS, KV_HEADS, chunk, length, 128, 128);
        ReferenceResult ref = ReferenceAttention.plan(Dense.INSTANCE.plan(PlanContext.of(s, options)), p.q(),
                c.paged().keys(seq), c.paged().values(seq), options);
        double err = ref.maxRelativeError(r.output().toHost());
        assertTrue(err <= Problems.tolerance(DType.BF16), "chunked prefill error " + err);
    }

    @Test
    void aNanInQMakesItsRowsNanNotEmptyThroughTheMerge() {
        // the CUDA-core kernel (f32 d64) and the tensor-core one (bf16 d128), one chunk and many
        DType[] dtypes = {DType.F32, DType.BF16};
        int[] dims = {64, 128};
        for (int x = 0; x < dtypes.length; x++) {
            Caches c = caches(111 + x, dtypes[x], dims[x]);
            Tensor qHost = Problems.qkv(112 + x, AttentionShape.of(LENGTHS.length, 4 * KV_HEADS, 2, 2, dims[x]), dtypes[x],
                    Layout.BHSD).q();
            qHost.set(5, 3, 1, 7, Float.NaN); // sequence 5 (4097 keys), head 3, row 1
            Tensor q = device(qHost);
            for (SplitKv split : new SplitKv[] {SplitKv.none(), SplitKv.fixed(256)}) {
                DecodeOptions o = DecodeOptions.defaults().withSplit(split).withOutputDType(DType.F32);
                AttentionResult r = Attention.decodeWithLse(q, c.paged(), o);
                Tensor out = r.output().toHost();
                Tensor lse = r.lse().toHost();
                ReferenceResult ref = ReferenceDecode.decode(q, c.paged(), null, o.run());
                String what = dtypes[x] + " " + split;
                for (int d = 0; d < dims[x]; d++) {
                    assertTrue(Float.isNaN(out.get(5, 3, 1, d)), what + ": element " + d + " " + out.get(5, 3, 1, d));
                }
                assertTrue(Float.isNaN(lse.get(5, 3, 1, 0)), what + ": LSE " + lse.get(5, 3, 1, 0));
                for (int b = 0; b < LENGTHS.length; b++) {
                    for (int h = 0; h < 4 * KV_HEADS; h++) {
                        for (int row = 0; row < 2; row++) {
                            if (b == 5 && h == 3 && row == 1) {
                                continue;
                            }
                            double want = ref.lse(b, h, row);
                            double got = lse.get(b, h, row, 0);
                            assertTrue(want == got || Math.abs(want - got) <= 1e-2, what + " (" + b + ", " + h + ", "
                                    + row + ") LSE " + got + " against " + want);
                        }
                    }
                }
                r.output().close();
                r.lse().close();
            }
        }
    }

    @Test
    void refusalsNameWhatIsMissing() {
        KvCache host = ContiguousKvCache.allocate(DType.BF16, 1, 2, 16, 128, 128);
        assertTrue(BACKEND.decodeRefusal(host, 1).contains("CUDA memory"), BACKEND.decodeRefusal(host, 1));
        Caches c = caches(111, DType.BF16, 128);
        assertNull(BACKEND.decodeRefusal(c.paged(), 1));
        KvCache odd = ContiguousKvCache.wrap(nanDevice(DType.BF16, 1, 2, 16, 96), nanDevice(DType.BF16, 1, 2, 16, 96),
                new int[] {3});
        assertNotNull(BACKEND.decodeRefusal(odd, 1));
        Tensor q = device(Problems.qkv(1, AttentionShape.of(1, 2, 1, 1, 96), DType.BF16, Layout.BHSD).q());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BACKEND.decode(q, odd,
                (DecodeSelection) null, nanDevice(DType.BF16, 1, 2, 1, 96), null, DecodeOptions.defaults()));
        assertTrue(e.getMessage().contains("96"), e.getMessage());
        assertEquals(BACKEND.decodeRefusal(DecodeShape.of(odd, 1)), e.getMessage(), "the call refuses with the shape's reason");
    }
}
