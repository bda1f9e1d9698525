package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A prepared decode step ({@link CudaDecodeStep}) against the fp64 decode oracle while its cache
 * grows: one CUDA graph captured at the first lengths and replayed after each of four appended
 * tokens (ragged lengths from 0 to past 700, contiguous and paged caches, the tensor-core and the
 * CUDA-core kernel, the split rule's even cut and a fixed cut), each replay bitwise equal to a direct
 * {@code run} at the same lengths; Quest and top-k steps, whose replays choose again from each
 * step's keys (the host's selection, {@code DecodeSelector}'s); another layer's cache on the same
 * metadata; and every refusal.
 * Skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaDecodeStepGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final int[] START = {0, 1, 63, 64, 65, 700};
    private static final int MAX = 800;
    private static final int KV_HEADS = 2;
    private static final int PAGE = 16;
    private static final int STEPS = 4;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @AfterEach
    void free() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
    }

    private <T extends AutoCloseable> T held(T t) {
        open.add(t);
        return t;
    }

    /** A device tensor of NaN (every byte 0xFF), so that a read past a length shows. */
    private Tensor nanDevice(DType t, int b, int h, int s, int d) {
        Tensor x = held(CudaTensors.allocate(BACKEND.device(), t, Layout.BHSD, b, h, s, d));
        ((DeviceBuffer) x.deviceMemory()).fill((byte) 0xFF);
        return x;
    }

    /**
     * What a replay test needs: the source rows, a cache holding their first START tokens, a query of
     * 4 heads per KV head, the replay's output and LSE, a direct run's, the options and a stream.
     */
    private record Setup(Tensor[] src, KvCache cache, Tensor q, Tensor out, Tensor lse, Tensor[] direct,
                         DecodeOptions options, CudaStream stream) {
    }

    private Setup setup(int seed, boolean paged, DType dtype, int dim, int rows, SplitKv split) {
        Tensor[] src = source(seed, dtype, dim);
        KvCache c = cache(paged, dtype, dim, src);
        int heads = 4 * KV_HEADS;
        Tensor q = query(seed + 100, dtype, heads, rows, dim);
        Tensor[] replayed = outputs(heads, rows, dim);
        return new Setup(src, c, q, replayed[0], replayed[1], outputs(heads, rows, dim),
                DecodeOptions.defaults().withSplit(split), held(new CudaStream(BACKEND.device())));
    }

    /**
     * Captures {@code step.run} once in a graph (a refresh inside the capture refused), then, at the
     * cache's lengths and after each of {@value #STEPS} appended tokens (a run before the refresh
     * refused), replays it against the fp64 oracle (over the host's selection of {@code chosen}, or
     * dense for null) and bit for bit against a direct run. Returns the kernels the capture queued.
     */
    private String replayWhileTheCacheGrows(String name, Setup u, CudaDecodeStep step, DecodePattern chosen) {
        Tensor q = u.q();
        KvCache c = u.cache();
        Tensor[] direct = u.direct();
        DType dtype = c.dtype();
        step.run(q, direct[0], direct[1]); // loads the kernels before the capture
        u.stream().synchronize();
        String[] kernels = new String[1];
        CudaGraph graph = held(CudaGraph.capture(u.stream(), () -> {
            kernels[0] = step.run(q, u.out(), u.lse());
            assertThrows(IllegalStateException.class, step::refresh, "a refresh inside a capture");
        }));
        // every kernel of a step waits for the one before, so each edge between two becomes programmatic
        int edges = DependentLaunch.mode() == DependentLaunch.Mode.OFF || BACKEND.device().computeCapability() < 90 ? 0
                : kernels[0].split("\\+").length - 1;
        assertEquals(edges, graph.dependentEdges(), name + ": programmatic edges of " + kernels[0] + " ("
                + DependentLaunch.status() + ")");
        for (int s = 0; s <= STEPS; s++) {
            if (s > 0) {
                Tensor[] next = nextTokens(u.src(), c);
                c.appendStep(next[0], next[1]);
                assertThrows(IllegalArgumentException.class, () -> step.run(q, direct[0], direct[1]),
                        "a run at lengths the step has not refreshed");
                step.refresh();
            }
            ((DeviceBuffer) u.out().deviceMemory()).fill((byte) 0xFF);
            graph.launch();
            step.run(q, direct[0], direct[1]);
            u.stream().synchronize();
            DecodeSelection host = chosen == null ? null : DecodeSelector.select(q, c, chosen);
            assertMatches(name + " step " + s, ReferenceDecode.decode(q, c, host, u.options().run()), u.out(), u.lse(),
                    dtype);
            assertArrayEquals(direct[0].toHost().toFloatArray(), u.out().toHost().toFloatArray(), name + " step " + s
                    + ": the replay = a direct run");
            assertArrayEquals(direct[1].toHost().toFloatArray(), u.lse().toHost().toFloatArray(), name + " LSE");
            assertEquals(START[0] + s, c.length(0));
        }
        return kernels[0];
    }

    /** A random device query, [batch, heads, rows, dim]. */
    private Tensor query(long seed, DType dtype, int heads, int rows, int dim) {
        return held(CudaTensors.upload(BACKEND.device(), Problems.qkv(seed, AttentionShape.of(START.length, heads, rows,
                rows, dim), dtype, Layout.BHSD).q()));
    }

    /** An f32 device output and its LSE: {[batch, heads, rows, dim], [batch, heads, rows, 1]}. */
    private Tensor[] outputs(int heads, int rows, int dim) {
        return new Tensor[] {held(CudaTensors.allocate(BACKEND.device(), DType.F32, Layout.BHSD, START.length, heads, rows,
                dim)), held(CudaTensors.allocate(BACKEND.device(), DType.F32, Layout.BHSD, START.length, heads, rows, 1))};
    }

    /** Random host K and V rows, [batch, KV_HEADS, MAX, dim]: token t of sequence b is row t. */
    private static Tensor[] source(long seed, DType dtype, int dim) {
        Problems.Qkv p = Problems.qkv(seed, AttentionShape.of(START.length, KV_HEADS, MAX, MAX, dim), dtype, Layout.BHSD);
        return new Tensor[] {p.k(), p.v()};
    }

    /** An empty device cache of either kind holding each sequence's first START[b] tokens of {@code src}. */
    private KvCache cache(boolean paged, DType dtype, int dim, Tensor[] src) {
        int batch = START.length;
        KvCache c;
        if (paged) {
            int pages = batch * (MAX / PAGE) + 4;
            // with Quest's page bounds, kept up to date by the appends
            c = PagedKvCache.wrap(nanDevice(dtype, pages, KV_HEADS, PAGE, dim), nanDevice(dtype, pages, KV_HEADS, PAGE, dim),
                    nanDevice(dtype, pages, KV_HEADS, 2, dim), PAGE, batch, new PageAllocator(pages));
        } else {
            c = ContiguousKvCache.wrap(nanDevice(dtype, batch, KV_HEADS, MAX, dim), nanDevice(dtype, batch, KV_HEADS, MAX,
                    dim), new int[batch]);
        }
        // in rounds of 50 tokens, so that the sequences' pages interleave in the pool
        for (int done = 0; done < MAX; done += 50) {
            for (int b = 0; b < batch; b++) {
                int n = Math.min(50, START[b] - done);
                if (n > 0) {
                    c.append(b, row(src[0], b, done, n), row(src[1], b, done, n));
                }
            }
        }
        return c;
    }

    /** Tokens {@code [at, at + n)} of sequence {@code b} of a source tensor, as a [1, KV_HEADS, n, dim] view. */
    private static Tensor row(Tensor src, int b, int at, int n) {
        return src.narrowBatch(b, 1).narrowSeq(at, n);
    }

    /** The step's next token for every sequence: [batch, KV_HEADS, 1, dim]. */
    private static Tensor[] nextTokens(Tensor[] src, KvCache c) {
        int batch = c.batch();
        Tensor k = Tensor.allocate(src[0].dtype(), Layout.BHSD, batch, KV_HEADS, 1, src[0].dim());
        Tensor v = Tensor.allocate(src[1].dtype(), Layout.BHSD, batch, KV_HEADS, 1, src[1].dim());
        float[] row = new float[src[0].dim()];
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < KV_HEADS; g++) {
                src[0].readRow(b, g, c.length(b), row, 0);
                k.writeRow(b, g, 0, row, 0);
                src[1].readRow(b, g, c.length(b), row, 0);
                v.writeRow(b, g, 0, row, 0);
            }
        }
        return new Tensor[] {k, v};
    }

    private static void assertMatches(String what, ReferenceResult ref, Tensor out, Tensor lse, DType dtype) {
        Tensor o = out.toHost();
        Tensor l = lse.toHost();
        double tol = Problems.tolerance(dtype);
        double err = ref.maxRelativeError(o);
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
        double lseErr = ref.maxLseError(l);
        assertTrue(lseErr <= (dtype == DType.F32 ? 1e-4 : 1e-3), what + ": LSE error " + lseErr);
    }

    @Test
    void oneGraphReplaysEveryStepWhileTheCacheGrows() {
        record Case(boolean paged, DType dtype, int dim, int rows, SplitKv split) {
        }
        List<Case> cases = List.of(new Case(false, DType.BF16, 128, 1, SplitKv.rule()),
                new Case(true, DType.BF16, 128, 2, SplitKv.fixed(128)), new Case(true, DType.F32, 64, 3, SplitKv.rule()),
                new Case(false, DType.F16, 256, 1, SplitKv.none()));
        int seed = 0;
        for (Case x : cases) {
            seed++;
            String name = (x.paged() ? "paged " : "contiguous ") + x.dtype() + " d" + x.dim() + " rows " + x.rows() + " "
                    + x.split();
            Setup u = setup(100 + seed, x.paged(), x.dtype(), x.dim(), x.rows(), x.split());
            CudaDecodeStep step = held(BACKEND.prepareDecodeStep(u.cache(), u.q().heads(), x.rows(), MAX, u.options(),
                    u.stream()));
            if (x.split().equals(SplitKv.none())) {
                assertEquals(1, step.chunks(), name + ": no split");
            }
            if (x.split().fixedChunkKeys() == 128) {
                assertEquals(MAX / 128 + 1, step.chunks(), name + ": the fixed cut's chunks at maxLength");
            }
            String kernels = replayWhileTheCacheGrows(name, u, step, null);
            assertTrue(kernels.contains(CudaDecode.kernelName(x.dtype(), x.dim())), kernels);
            // the backend's own decode at the final lengths agrees within the tolerance
            Tensor[] viaBackend = outputs(u.q().heads(), x.rows(), x.dim());
            BACKEND.decode(u.q(), u.cache(), (DecodeSelection) null, viaBackend[0], viaBackend[1], u.options());
            assertMatches(name + " direct decode", ReferenceDecode.decode(u.q(), u.cache(), null, u.options().run()),
                    viaBackend[0], viaBackend[1], x.dtype());
        }
    }

    @Test
    void questAndTopKStepsChooseAgainAtEveryReplay() {
        record Case(DecodePattern pattern, boolean paged, DType dtype, int dim, int rows, SplitKv split) {
        }
        List<Case> cases = List.of(new Case(DecodePattern.quest(128), true, DType.BF16, 128, 1, SplitKv.rule()),
                new Case(DecodePattern.quest(64), true, DType.F16, 64, 2, SplitKv.fixed(96)),
                new Case(DecodePattern.topK(100), false, DType.BF16, 128, 1, SplitKv.rule()),
                new Case(DecodePattern.topK(60).withSinks(4).withWindow(32), true, DType.BF16, 128, 1, SplitKv.rule()),
                new Case(DecodePattern.topK(80), true, DType.F32, 64, 3, SplitKv.none()));
        int seed = 0;
        for (Case x : cases) {
            seed++;
            String name = x.pattern().name() + (x.paged() ? " paged " : " contiguous ") + x.dtype() + " d" + x.dim()
                    + " rows " + x.rows() + " " + x.split();
            Setup u = setup(500 + seed, x.paged(), x.dtype(), x.dim(), x.rows(), x.split());
            CudaDecodeStep step = held(BACKEND.prepareDecodeStep(u.cache(), x.pattern(), u.q().heads(), x.rows(), MAX,
                    u.options(), u.stream()));
            assertEquals(x.pattern(), step.pattern());
            String kernels = replayWhileTheCacheGrows(name, u, step, x.pattern());
            String choice = x.pattern() instanceof DecodePattern.Quest ? "sparsa_quest_bounds_" : "sparsa_decode_key_scores_";
            assertTrue(kernels.startsWith(choice) && kernels.contains(CudaDecode.kernelName(x.dtype(), x.dim())),
                    name + ": " + kernels);
            // the backend's direct call (its own cut) at the final lengths agrees within the tolerance
            Tensor[] direct = u.direct();
            BACKEND.selectAndDecode(u.q(), u.cache(), x.pattern(), direct[0], direct[1], u.options());
            assertTrue(CudaBackend.lastKernel().startsWith(choice), name + ": " + CudaBackend.lastKernel());
            assertMatches(name + " selectAndDecode", ReferenceDecode.decode(u.q(), u.cache(),
                    DecodeSelector.select(u.q(), u.cache(), x.pattern()), u.options().run()), direct[0], direct[1],
                    x.dtype());
        }
    }

    @Test
    void anotherLayersCacheRunsOnTheSameMetadata() {
        CudaDevice dev = BACKEND.device();
        Tensor[] src = source(301, DType.BF16, 128);
        Tensor[] other = source(302, DType.BF16, 128);
        KvCache first = cache(true, DType.BF16, 128, src);
        // the second layer's pages: same tables (the allocator hands out the same pages in the same order)
        KvCache second = cache(true, DType.BF16, 128, other);
        int heads = 4 * KV_HEADS;
        Tensor q = held(CudaTensors.upload(dev, Problems.qkv(303, AttentionShape.of(START.length, heads, 1, 1, 128),
                DType.BF16, Layout.BHSD).q()));
        Tensor out = held(CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, START.length, heads, 1, 128));
        Tensor lse = held(CudaTensors.allocate(dev, DType.F32, Layout.BHSD, START.length, heads, 1, 1));
        CudaStream stream = held(new CudaStream(dev));
        DecodeOptions o = DecodeOptions.defaults();
        CudaDecodeStep step = held(BACKEND.prepareDecodeStep(first, heads, 1, MAX, o, stream));
        step.run(q, second, out, lse);
        stream.synchronize();
        assertMatches("second layer", ReferenceDecode.decode(q, second, null, o.run()), out, lse, DType.BF16);
        Tensor[] next = nextTokens(other, second);
        second.appendStep(next[0], next[1]);
        assertThrows(IllegalArgumentException.class, () -> step.run(q, second, out, lse), "lengths ahead of the step");
        KvCache contiguous = cache(false, DType.BF16, 128, src);
        assertThrows(IllegalArgumentException.class, () -> step.run(q, contiguous, out, lse), "another kind of cache");
        // the same pages and lengths, each table in reverse order: a layer whose pages lie elsewhere
        PagedKvCache p = (PagedKvCache) first;
        PagedKvCache reversed = PagedKvCache.wrap(p.keyPages(), p.valuePages(), null, PAGE, START.length, null);
        for (int b = 0; b < START.length; b++) {
            int[] t = p.blockTable(b);
            int[] r = new int[t.length];
            for (int i = 0; i < t.length; i++) {
                r[i] = t[t.length - 1 - i];
            }
            reversed.setBlockTable(b, r, p.length(b));
        }
        String m = assertThrows(IllegalArgumentException.class, () -> step.run(q, reversed, out, lse)).getMessage();
        assertTrue(m.contains("block table differs"), m);
    }

    @Test
    void refusalsNameWhatDoesNotFit() {
        CudaDevice dev = BACKEND.device();
        Tensor[] src = source(401, DType.BF16, 64);
        KvCache c = cache(false, DType.BF16, 64, src);
        CudaStream stream = held(new CudaStream(dev));
        DecodeOptions o = DecodeOptions.defaults();
        String[] messages = {
            assertThrows(IllegalArgumentException.class, () -> BACKEND.prepareDecodeStep(c, 8, 1, 600, o, stream))
                    .getMessage(),
            assertThrows(IllegalArgumentException.class, () -> BACKEND.prepareDecodeStep(c, 8, 1, MAX + 1, o, stream))
                    .getMessage(),
            assertThrows(IllegalArgumentException.class, () -> BACKEND.prepareDecodeStep(c, 7, 1, MAX, o, stream))
                    .getMessage(),
            assertThrows(IllegalArgumentException.class, () -> BACKEND.prepareDecodeStep(c, 8, 65, MAX, o, stream))
                    .getMessage(),
        };
        assertTrue(messages[0].startsWith("maxLength: must be at least 1 and the cache's longest sequence (700)"),
                messages[0]);
        assertTrue(messages[1].contains("capacity of 800"), messages[1]);
        assertTrue(messages[2].startsWith("queryHeads:"), messages[2]);
        assertTrue(messages[3].startsWith("rows:"), messages[3]);
        KvCache paged = cache(true, DType.BF16, 64, src);
        List<DecodePattern> refused = List.of(DecodePattern.quest(64), DecodePattern.quest(64).withSinks(4),
                DecodePattern.sinkWindow(4, 32), DecodePattern.topK(16).withWindow(8));
        List<KvCache> on = List.of(c, paged, paged, paged);
        List<String> why = List.of("pattern: Quest needs a paged cache that keeps page bounds",
                "pattern: a prepared step runs Quest without sinks or window",
                "pattern: a prepared step runs dense, Quest or top-k, got sinks(4)+window(32)",
                "pattern: a prepared step runs top-k with a window for one query row, got 2 rows");
        for (int i = 0; i < refused.size(); i++) {
            DecodePattern pattern = refused.get(i);
            KvCache target = on.get(i);
            String m = assertThrows(IllegalArgumentException.class, () -> BACKEND.prepareDecodeStep(target, pattern, 8, 2,
                    MAX, o, stream)).getMessage();
            assertTrue(m.startsWith(why.get(i)), m);
        }
        CudaDecodeStep step = held(BACKEND.prepareDecodeStep(c, 8, 1, 720, o, stream));
        Tensor q = held(CudaTensors.upload(dev, Problems.qkv(402, AttentionShape.of(START.length, 8, 2, 2, 64), DType.BF16,
                Layout.BHSD).q()));
        Tensor out = held(CudaTensors.allocate(dev, DType.F32, Layout.BHSD, START.length, 8, 2, 64));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> step.run(q, out, null)).getMessage()
                .startsWith("q: 8 heads × 2 rows"));
        for (int s = 0; s < 20; s++) {
            Tensor[] next = nextTokens(src, c);
            c.appendStep(next[0], next[1]);
        }
        step.refresh();
        Tensor[] next = nextTokens(src, c);
        c.appendStep(next[0], next[1]);
        String past = assertThrows(IllegalStateException.class, step::refresh).getMessage();
        assertTrue(past.contains("sequence 5 has length 721, past the step's maxLength 720"), past);
        step.close();
        step.close();
        assertThrows(IllegalStateException.class, step::refresh);
    }
}
