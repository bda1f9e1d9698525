package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Hand-built situations the random plans reach only by chance. */
class CpuKernelCasesTest {

    private static void assertMatchesOracle(CpuBackend backend, SparsePlan plan, Problems.Qkv p, Options o, double tol) {
        Fixtures.Run r = Fixtures.run(backend, plan, p, o);
        assertFalse(Fixtures.anyNaN(r), "NaN in output or LSE");
        ReferenceResult ref = Fixtures.oracle(plan, p, o);
        double err = ref.maxRelativeError(r.out());
        assertTrue(err <= tol, "relative error " + err);
        double lseErr = ref.maxLseError(r.lse());
        assertTrue(lseErr <= 1e-4, "LSE error " + lseErr);
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void emptyRowsGiveZeroAndMinusInfinityNeverNaN(KernelFlavour flavour) {
        // causal with a negative offset: the first rows see no key at all; tile 2 has no keys; rows 40.. in no tile
        AttentionShape s = new AttentionShape(1, 2, 1, 48, 20, 16, 24);
        Options o = Options.causalMask().withQueryOffset(-10).withGeometry(new TileGeometry(8, 8));
        PlanContext ctx = PlanContext.of(s, o);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        b.tile(0, 8).blocksByPredicate(0, 2).end();
        b.tile(8, 8).blocksByPredicate(0, 2).end();
        b.tile(16, 8).end();
        b.tile(24, 8).partial(0).partial(1).partial(2).end();
        b.tile(32, 8).full(0).gather(17, 0.5f).end();
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "holes");
        Problems.Qkv p = Problems.qkv(3, s, DType.F32, Layout.BHSD);
        CpuBackend backend = new CpuBackend(flavour, 2);
        Fixtures.Run r = Fixtures.run(backend, plan, p, o);
        float[] row = new float[s.valueDim()];
        for (int h = 0; h < 2; h++) {
            for (int q = 0; q < 48; q++) {
                boolean empty = q < 10 || (q >= 16 && q < 24) || q >= 40;
                r.out().readRow(0, h, q, row, 0);
                float l = r.lse().get(0, h, q, 0);
                assertFalse(Float.isNaN(l), "LSE NaN at row " + q);
                if (empty) {
                    assertEquals(Float.NEGATIVE_INFINITY, l, "LSE of empty row " + q);
                    for (float x : row) {
                        assertEquals(0f, x, "output of empty row " + q);
                    }
                } else {
                    assertTrue(Float.isFinite(l), "LSE of row " + q);
                }
            }
        }
        assertMatchesOracle(backend, plan, p, o, 1e-5);
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void rowsInSeveralTilesMergeThroughTheLse(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(2, 4, 2, 30, 50, 32, 32);
        Options o = Options.defaults().withGeometry(new TileGeometry(16, 16));
        PlanContext ctx = PlanContext.of(s, o);
        ElementPredicate pred = ElementPredicate.all().withStride(3, 1, true);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, pred);
        int[] rows = {29, 3, 7, 11, 0, 14};
        b.listedTile(rows).full(0).gather(40, -0.25f).end();
        b.listedTile(rows).partial(1).partial(2).unconditional(49, 1.5f).end();
        b.listedTile(new int[] {3, 5, 20}).full(3).end();
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "lsh-like");
        Problems.Qkv p = Problems.qkv(4, s, DType.F32, Layout.BSHD);
        assertMatchesOracle(new CpuBackend(flavour, 3), plan, p, o, 1e-5);
        Fixtures.Run one = Fixtures.run(new CpuBackend(flavour, 1), plan, p, o);
        Fixtures.Run three = Fixtures.run(new CpuBackend(flavour, 3), plan, p, o);
        assertTrue(Fixtures.bitwiseEqual(one.out(), three.out()));
        assertTrue(Fixtures.bitwiseEqual(one.lse(), three.lse()));
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void softCapAppliesBeforeLogWeightsAndMask(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 2, 2, 37, 53, 64, 40);
        // scale 1 makes the raw scores large, so the cap changes the result a lot
        Options o = Options.causalMask().withScale(1.0).withSoftCap(4f).withGeometry(new TileGeometry(16, 24));
        PlanContext ctx = PlanContext.of(s, o);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withSinks(3));
        for (int start = 0; start < 37; start += 16) {
            HeadLayoutBuilder.Tile t = b.tile(start, Math.min(16, 37 - start));
            t.blockByPredicate(1);
            t.gather(2, 0.75f).gather(5, -1f).gather(52, 0.3f);
            t.end();
        }
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "capped");
        Problems.Qkv p = Problems.qkv(5, s, DType.F32, Layout.BHSD);
        assertMatchesOracle(new CpuBackend(flavour, 2), plan, p, o, 1e-5);
        // and the cap matters: without it the output is far from the capped oracle
        Fixtures.Run uncapped = Fixtures.run(new CpuBackend(flavour, 2), plan, p, o.withSoftCap(0f));
        assertTrue(Fixtures.oracle(plan, p, o).maxRelativeError(uncapped.out()) > 1e-2);
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void zeroKeysGiveEmptyRows(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 1, 1, 5, 0, 8, 8);
        Options o = Options.defaults().withGeometry(new TileGeometry(8, 8));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(6, s, DType.BF16, Layout.BHSD);
        Fixtures.Run r = Fixtures.run(new CpuBackend(flavour, 1), plan, p, o);
        for (int q = 0; q < 5; q++) {
            assertEquals(Float.NEGATIVE_INFINITY, r.lse().get(0, 0, q, 0));
            assertEquals(0f, r.out().get(0, 0, q, 3));
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void gqaGroupsWithSharedAndDistinctLayouts(DType dtype) {
        AttentionShape s = new AttentionShape(2, 8, 2, 33, 41, 24, 48);
        Options o = Options.causalMask().withGeometry(new TileGeometry(8, 16)).withOutputDType(DType.F32);
        PlanContext ctx = PlanContext.of(s, o);
        SparsePlan dense = Dense.INSTANCE.plan(ctx);
        HeadLayout window = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, 9))
                .tilesByPredicate(t -> 0, t -> 1000).build();
        // kv group 0 of batch 0 shares one layout; group 1 mixes two; batch 1 all window
        SparsePlan.Builder pb = SparsePlan.builder(ctx).allSlices(window);
        for (int h = 0; h < 4; h++) {
            pb.slice(0, h, dense.layout(0, 0));
        }
        pb.slice(0, 5, dense.layout(0, 0));
        SparsePlan plan = pb.build();
        Problems.Qkv p = Problems.qkv(7, s, dtype, Layout.BSHD);
        for (KernelFlavour f : KernelFlavour.values()) {
            assertMatchesOracle(new CpuBackend(f, 2), plan, p, o, 1e-5);
        }
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void callerSuppliedExecutorGivesTheSameBits(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 4, 4, 77, 77, 40, 40);
        Options o = Options.causalMask().withGeometry(new TileGeometry(16, 16));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(8, s, DType.F16, Layout.BHSD);
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            Fixtures.Run pooled = Fixtures.run(new CpuBackend(flavour, pool, 3), plan, p, o);
            Fixtures.Run single = Fixtures.run(new CpuBackend(flavour, 1), plan, p, o);
            assertTrue(Fixtures.bitwiseEqual(pooled.out(), single.out()));
            assertTrue(Fixtures.bitwiseEqual(pooled.lse(), single.lse()));
            assertTrue(Fixtures.oracle(plan, p, o).maxRelativeError(pooled.out()) <= Problems.tolerance(DType.F16));
        } finally {
            pool.shutdownNow();
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void offHeapAndByteArrayInputsTakeTheCopyPath(DType dtype) {
        AttentionShape s = new AttentionShape(1, 2, 2, 21, 35, 24, 16);
        Options o = Options.causalMask().withGeometry(new TileGeometry(8, 16)).withOutputDType(DType.F32);
        SparsePlan plan = dev.sparsa.testing.RandomPlans.randomPlan(3, PlanContext.of(s, o), true);
        Problems.Qkv heap = Problems.qkv(13, s, dtype, Layout.BSHD);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            Problems.Qkv offHeap = new Problems.Qkv(offHeap(arena, heap.q()), offHeap(arena, heap.k()),
                    offHeap(arena, heap.v()));
            Problems.Qkv bytes = new Problems.Qkv(inBytes(heap.q()), inBytes(heap.k()), inBytes(heap.v()));
            for (KernelFlavour f : KernelFlavour.values()) {
                CpuBackend backend = new CpuBackend(f, 2);
                Fixtures.Run a = Fixtures.run(backend, plan, heap, o);
                Fixtures.Run b = Fixtures.run(backend, plan, offHeap, o);
                Fixtures.Run c = Fixtures.run(backend, plan, bytes, o);
                assertTrue(Fixtures.bitwiseEqual(a.out(), b.out()) && Fixtures.bitwiseEqual(a.out(), c.out()),
                        "in-place and copied rows must give the same bits");
                assertTrue(Fixtures.oracle(plan, offHeap, o).maxRelativeError(b.out()) <= 1e-5);
            }
        }
    }

    private static dev.sparsa.tensor.Tensor offHeap(java.lang.foreign.Arena arena, dev.sparsa.tensor.Tensor t) {
        dev.sparsa.tensor.Tensor x = dev.sparsa.tensor.Tensor.allocate(arena, t.dtype(), Layout.BSHD, t.batch(),
                t.heads(), t.seqLen(), t.dim());
        x = t.dtype().isScaled() ? x.withScales(t.scales()) : x;
        copyInto(t, x);
        return x;
    }

    private static dev.sparsa.tensor.Tensor inBytes(dev.sparsa.tensor.Tensor t) {
        int[] shape = t.shape();
        long[] strides = Layout.BHSD.strides(shape[0], shape[1], shape[2], shape[3]);
        byte[] data = new byte[(int) t.elementCount() * t.dtype().byteSize() + 8];
        // an element offset of 2 keeps the view away from the array's start
        dev.sparsa.tensor.Tensor x = dev.sparsa.tensor.Tensor.wrap(java.lang.foreign.MemorySegment.ofArray(data),
                t.dtype(), shape, strides, 2);
        x = t.dtype().isScaled() ? x.withScales(t.scales()) : x;
        copyInto(t, x);
        return x;
    }

    private static void copyInto(dev.sparsa.tensor.Tensor from, dev.sparsa.tensor.Tensor to) {
        float[] row = new float[from.dim()];
        for (int b = 0; b < from.batch(); b++) {
            for (int h = 0; h < from.heads(); h++) {
                for (int i = 0; i < from.seqLen(); i++) {
                    from.readRow(b, h, i, row, 0);
                    to.writeRow(b, h, i, row, 0);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void rejectingExecutorLeavesTheWorkToTheCaller(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 2, 2, 40, 40, 16, 16);
        Options o = Options.causalMask().withGeometry(new TileGeometry(8, 8));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(14, s, DType.F32, Layout.BHSD);
        java.util.concurrent.Executor rejecting = r -> {
            throw new java.util.concurrent.RejectedExecutionException("full");
        };
        Fixtures.Run rejected = Fixtures.run(new CpuBackend(flavour, rejecting, 4), plan, p, o);
        Fixtures.Run single = Fixtures.run(new CpuBackend(flavour, 1), plan, p, o);
        assertTrue(Fixtures.bitwiseEqual(rejected.out(), single.out()));
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void outputInBshdAndInF32(DType dtype) {
        AttentionShape s = new AttentionShape(2, 2, 1, 19, 23, 16, 8);
        Options o = Options.defaults().withGeometry(new TileGeometry(8, 8));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(9, s, dtype, Layout.BHSD);
        ReferenceResult ref = Fixtures.oracle(plan, p, o);
        CpuBackend backend = new CpuBackend(2);
        Fixtures.Run inType = Fixtures.run(backend, plan, p, o, dtype.defaultOutput(), Layout.BSHD);
        Fixtures.Run f32 = Fixtures.run(backend, plan, p, o, DType.F32, Layout.BSHD);
        assertTrue(ref.maxRelativeError(inType.out()) <= Problems.tolerance(dtype));
        assertTrue(ref.maxRelativeError(f32.out()) <= 1e-5);
    }

    /**
     * A writable f32 heap output whose rows are exactly the value dim is written by the last chunk's
     * P·V (each row divided by its sum there); any other output is normalised from the scratch
     * accumulators afterwards. The two must agree bit for bit, also on rows that admit nothing next
     * to rows that do (tile rows 16..19 here: queries before every key) and on listed and merged rows.
     */
    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void rowsWrittenByTheLastChunkMatchRowsNormalisedAfterwards(KernelFlavour flavour) {
        AttentionShape causalShape = new AttentionShape(1, 4, 2, 44, 24, 32, 32);
        Options causal = Options.causalMask().withGeometry(new TileGeometry(16, 8));
        AttentionShape randomShape = new AttentionShape(2, 4, 2, 37, 53, 32, 32);
        Options random = Options.defaults().withGeometry(new TileGeometry(8, 16));
        for (int threads : new int[] {1, 2}) {
            CpuBackend backend = new CpuBackend(flavour, threads);
            assertSameBitsOnAndOffHeap(backend, Dense.INSTANCE.plan(PlanContext.of(causalShape, causal)),
                    Problems.qkv(21, causalShape, DType.F32, Layout.BHSD), causal);
            for (long seed = 1; seed <= 3; seed++) {
                assertSameBitsOnAndOffHeap(backend,
                        dev.sparsa.testing.RandomPlans.randomPlan(seed, PlanContext.of(randomShape, random), seed == 2),
                        Problems.qkv(30 + seed, randomShape, DType.F32, Layout.BHSD), random);
            }
        }
    }

    private static void assertSameBitsOnAndOffHeap(CpuBackend backend, SparsePlan plan, Problems.Qkv p, Options o) {
        AttentionShape s = p.shape();
        Fixtures.Run heap = Fixtures.run(backend, plan, p, o);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
            dev.sparsa.tensor.Tensor out = dev.sparsa.tensor.Tensor.allocate(arena, DType.F32, Layout.BHSD, s.batch(),
                    s.qHeads(), s.queryLength(), s.valueDim());
            dev.sparsa.tensor.Tensor lse = dev.sparsa.tensor.Tensor.allocate(DType.F32, Layout.BHSD, s.batch(),
                    s.qHeads(), s.queryLength(), 1);
            Fixtures.Run offHeap = Fixtures.run(backend, plan, p, o, out, lse);
            assertTrue(Fixtures.bitwiseEqual(heap.out(), offHeap.out()), "heap and off-heap outputs must have the same bits");
            assertTrue(Fixtures.bitwiseEqual(heap.lse(), offHeap.lse()), "heap and off-heap LSEs must have the same bits");
        }
        assertFalse(Fixtures.anyNaN(heap), "NaN in output or LSE");
        assertTrue(Fixtures.oracle(plan, p, o).maxRelativeError(heap.out()) <= 1e-5);
    }
}
