package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Token gather with head packing on the GPU: per-row key lists (one-row tiles; gathered keys with and
 * without log-weights under the predicate, unconditional keys, rows without keys) shared by the query
 * heads of each GQA group (groups 1, 4, 8, 32 and MQA), so the mma.sync kernel stacks the group's
 * heads into one CTA. Against the fp64 oracle at the numerics contract's tolerances, for f32, f16 and
 * bf16, with and without causality, at odd lengths; rows without keys must give output 0 and LSE −∞;
 * and on 64×64 plans the packed (gather-pipelined kernel where compiled) and the unpacked work lists
 * must agree within rounding (the gather kernel adds each row's exponentials pairwise, and where the
 * packed tile's rows fill one or two of its four warps it splits each chunk's keys among the warps and
 * merges their softmax states: a different order of the same sums). Needs a GPU: skipped where the
 * backend is unavailable. Outputs are poisoned with NaN first, so an unwritten row fails.
 */
@Tag("gpu")
class CudaGatherGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    /**
     * One layout of per-row lists, every row a one-row tile: about one row in ten without keys, the
     * others up to {@code maxKeys} keys, gathered (any keys, the predicate drops the invisible ones;
     * half of those lists with log-weights) or unconditional (visible keys only).
     */
    static HeadLayout rowLists(PlanContext ctx, long seed, int maxKeys) {
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int r = 0; r < ctx.queryLength(); r++) {
            long last = Math.min(ctx.keyLength() - 1L, ctx.causal() ? r + ctx.queryOffset() : Long.MAX_VALUE);
            if (last < 0 || rnd.nextInt(10) == 0) {
                continue; // a row without keys
            }
            HeadLayoutBuilder.Tile t = b.tile(r, 1);
            int n = 1 + rnd.nextInt(maxKeys);
            int kind = rnd.nextInt(3);
            if (kind == 0) {
                int[] keys = rnd.ints(n, 0, (int) last + 1).sorted().distinct().toArray();
                t.unconditionalAll(keys, 0, keys.length);
            } else if (kind == 1) {
                int[] keys = rnd.ints(n, 0, ctx.keyLength()).sorted().distinct().toArray();
                t.gatherAll(keys, 0, keys.length);
            } else {
                for (int key : rnd.ints(n, 0, ctx.keyLength()).distinct().toArray()) {
                    t.gather(key, (float) (rnd.nextDouble() - 0.5)); // log-weights
                }
            }
            t.end();
        }
        return b.build();
    }

    /** One layout per KV head, shared by that head's query heads. */
    static SparsePlan groupShared(PlanContext ctx, long seed, int maxKeys) {
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe("per-row lists per KV head");
        AttentionShape s = ctx.shape();
        for (int g = 0; g < s.kvHeads(); g++) {
            HeadLayout layout = rowLists(ctx, seed * 31 + g, maxKeys);
            for (int h = g * s.groupSize(); h < (g + 1) * s.groupSize(); h++) {
                plan.head(h, layout);
            }
        }
        return plan.build();
    }

    private static void run(SparsePlan plan, Problems.Qkv p, Options o, Tensor out, Tensor lse, boolean packing) {
        String before = System.getProperty("sparsa.cuda.headPacking");
        System.setProperty("sparsa.cuda.headPacking", Boolean.toString(packing));
        try (PreparedPlan prepared = BACKEND.prepare(plan)) {
            BACKEND.forward(prepared, p.q(), p.k(), p.v(), out, lse, o.run());
        } finally {
            if (before == null) {
                System.clearProperty("sparsa.cuda.headPacking");
            } else {
                System.setProperty("sparsa.cuda.headPacking", before);
            }
        }
    }

    @ParameterizedTest(name = "H{0} KV{1} nq{2} nk{3} d{4} causal={5} {6} {7}")
    @CsvSource({
        // qHeads, kvHeads, queryLength, keyLength, headDim, causal, dtype, geometry rows
        "2, 2, 77, 131, 64, true, BF16, 64",
        "8, 2, 77, 131, 128, true, BF16, 64",
        "8, 2, 101, 67, 64, false, F16, 64",
        "16, 2, 45, 300, 128, true, F16, 128",
        "32, 4, 33, 257, 128, false, BF16, 128",
        "32, 1, 90, 90, 128, true, BF16, 128",
        "32, 1, 61, 199, 64, false, F16, 64",
        "64, 2, 19, 150, 64, true, BF16, 64",
        "12, 1, 55, 93, 96, true, F16, 64",
        "128, 1, 23, 71, 64, true, BF16, 64",
        "8, 1, 41, 87, 128, true, F32, 64",
        "32, 8, 29, 129, 64, false, F32, 128",
    })
    void sharedRowListsMatchTheOracle(int qHeads, int kvHeads, int nq, int nk, int headDim, boolean causal, DType dtype,
                                      int tileRows) {
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, nq, nk, headDim, headDim);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(tileRows, tileRows));
        SparsePlan plan = groupShared(PlanContext.of(s, o), qHeads * 1000L + nq, 150);
        Problems.Qkv p = Problems.qkv(nq * 7L + nk, s, dtype, Layout.BHSD);
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        double tol = Problems.tolerance(dtype);
        double lseTol = dtype == DType.F32 ? 1e-4 : 1e-3;
        for (boolean packing : new boolean[] {true, false}) {
            Tensor out = CudaAttentionGpuTest.poisoned(dtype, Layout.BHSD, 1, qHeads, nq, headDim);
            Tensor lse = CudaAttentionGpuTest.poisoned(DType.F32, Layout.BHSD, 1, qHeads, nq, 1);
            run(plan, p, o, out, lse, packing);
            String kernel = CudaBackend.lastKernel();
            // one-row tiles run on the 64-row gather kernel, stacked by heads or (group 1) not
            if (packing && dtype != DType.F32) {
                String tc = KernelChoice.packed(s, dtype, 0).name();
                assertTrue(tc.startsWith(headDim == 96 ? "sparsa_tc_" : "sparsa_tcg_"), tc);
                assertTrue(kernel.equals(tc) || kernel.equals(tc + "+sparsa_merge"),
                        "packed items run on the mma.sync kernel, got " + kernel);
            }
            double err = ref.maxRelativeError(out);
            assertTrue(err <= tol, "packing=" + packing + " " + kernel + ": relative error " + err + " > " + tol);
            double lseErr = ref.maxLseError(lse);
            assertTrue(lseErr <= lseTol, "packing=" + packing + ": LSE error " + lseErr + " > " + lseTol);
            // rows without keys: 0 and -inf, in every head that reads the layout
            for (int h = 0; h < qHeads; h++) {
                HeadLayout layout = plan.layouts().get(plan.layoutIndex(0, h));
                boolean[] listed = new boolean[nq];
                for (int t = 0; t < layout.tileCount(); t++) {
                    for (int i = 0; i < layout.rowCount(t); i++) {
                        listed[layout.row(t, i)] = true;
                    }
                }
                for (int r = 0; r < nq; r++) {
                    if (!listed[r]) {
                        assertEquals(Float.NEGATIVE_INFINITY, lse.get(0, h, r, 0), "LSE of keyless row " + r + " head " + h);
                        assertEquals(0f, out.get(0, h, r, headDim - 1), "keyless row " + r + " head " + h);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "DSA top-{0} H{1} KV{2} causal={3} {4} tiles {5}")
    @CsvSource({
        // top, qHeads, kvHeads, n, causal, dtype, geometry rows
        "48, 32, 1, 301, true, BF16, 128",
        "48, 32, 8, 301, true, F16, 64",
        "20, 16, 2, 129, false, BF16, 64",
        "64, 8, 1, 200, true, F32, 128",
        // lists of several chunks with a partial last one, split among the warps in halves and quarters
        "200, 32, 1, 420, true, BF16, 64",
        "150, 32, 8, 350, true, F16, 64",
    })
    void dsaPlansThatListEveryRowWriteDirectlyAndMatchTheOracle(int top, int qHeads, int kvHeads, int n, boolean causal,
                                                                DType dtype, int tileRows) {
        // every row listed (TokenListLayout; early causal rows in dense tiles): the direct-write path
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, n, n, 128, 128);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(tileRows, tileRows));
        SparsePlan plan = CudaGatherBench.dsaPlan(PlanContext.of(s, o), top, n);
        assertTrue(plan.layouts().stream().allMatch(HeadLayout::coversEachRowOnce), "every row in one tile");
        Problems.Qkv p = Problems.qkv(top + n, s, dtype, Layout.BSHD);
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        for (boolean packing : new boolean[] {true, false}) {
            Tensor out = CudaAttentionGpuTest.poisoned(dtype, Layout.BSHD, 1, qHeads, n, 128);
            Tensor lse = CudaAttentionGpuTest.poisoned(DType.F32, Layout.BHSD, 1, qHeads, n, 1);
            run(plan, p, o, out, lse, packing);
            String kernel = CudaBackend.lastKernel();
            double err = ref.maxRelativeError(out);
            assertTrue(err <= Problems.tolerance(dtype), "packing=" + packing + " " + kernel + ": relative error " + err);
            assertTrue(ref.maxLseError(lse) <= (dtype == DType.F32 ? 1e-4 : 1e-3), "packing=" + packing + " LSE");
        }
    }

    @ParameterizedTest(name = "{0} group {1} d{2} nk{3}")
    @CsvSource({
        // dtype, group, headDim, keyLength, maxKeys (lists of up to 15 chunks: several turns of the gather
        // kernel's stages, 3 at d128, 6 at d64)
        "BF16, 4, 128, 211, 300", "F16, 8, 128, 211, 300", "BF16, 32, 128, 211, 300",
        "BF16, 4, 64, 1000, 900", "F16, 32, 128, 700, 600", "F16, 2, 64, 500, 480",
    })
    void packedAndUnpackedAgreeOnSmallTiles(DType dtype, int group, int headDim, int keyLength, int maxKeys) {
        AttentionShape s = new AttentionShape(2, 2 * group, 2, 83, keyLength, headDim, headDim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        SparsePlan plan = groupShared(PlanContext.of(s, o), group, maxKeys);
        Problems.Qkv p = Problems.qkv(group, s, dtype, Layout.BSHD);
        Tensor a = Tensor.allocate(dtype, Layout.BSHD, 2, 2 * group, 83, headDim);
        Tensor la = Tensor.allocate(DType.F32, Layout.BHSD, 2, 2 * group, 83, 1);
        Tensor b = Tensor.allocate(dtype, Layout.BSHD, 2, 2 * group, 83, headDim);
        Tensor lb = Tensor.allocate(DType.F32, Layout.BHSD, 2, 2 * group, 83, 1);
        run(plan, p, o, a, la, true);
        String packedKernel = CudaBackend.lastKernel();
        assertTrue(packedKernel.startsWith(KernelChoice.packed(s, dtype, 0).name()), packedKernel);
        run(plan, p, o, b, lb, false);
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        assertTrue(ref.maxRelativeError(a) <= Problems.tolerance(dtype), "packed: error " + ref.maxRelativeError(a));
        assertTrue(ref.maxRelativeError(b) <= Problems.tolerance(dtype), "unpacked: error " + ref.maxRelativeError(b));
        float[] fa = a.toFloatArray(), fb = b.toFloatArray(), ga = la.toFloatArray(), gb = lb.toFloatArray();
        double scale = 0, diff = 0;
        for (int i = 0; i < fa.length; i++) {
            scale = Math.max(scale, Math.abs(fb[i]));
            diff = Math.max(diff, Math.abs(fa[i] - fb[i]));
        }
        assertTrue(diff <= Problems.tolerance(dtype) * scale, "packed vs unpacked: max |difference| " + diff);
        for (int i = 0; i < ga.length; i++) {
            assertEquals(gb[i], ga[i], 1e-3 * Math.max(1, Math.abs(gb[i])), "LSE " + i);
        }
    }

    @Test
    void plansOfSharedLayoutsGetAPackedListAndOneRowTilesThePlainOne() {
        AttentionShape s = new AttentionShape(1, 8, 2, 50, 50, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        SparsePlan shared = groupShared(ctx, 1, 20);
        SparsePlan.Builder own = SparsePlan.builder(ctx).describe("a layout per head");
        for (int h = 0; h < 8; h++) {
            own.head(h, rowLists(ctx, 100 + h, 20));
        }
        CudaDevice dev = BACKEND.device();
        dev.makeCurrent();
        try (DevicePlan a = new DevicePlan(dev, shared, 64); DevicePlan b = new DevicePlan(dev, own.build(), 64)) {
            assertNotNull(a.packedWorkList());
            assertTrue(a.packedWorkList().items() < a.workList(64).items(), "fewer CTAs");
            // nothing stacks across heads, but one-row tiles take the plain 64-row list on the gather kernel
            assertNotNull(b.packedWorkList());
            assertEquals(b.workList(64).items(), b.packedWorkList().items(), "the plain 64-row list");
            assertSame(b.workList(64), b.packedWorkList(), "uploaded once, shared with the mma.sync kernel");
            assertEquals(b.ints().bytes() + b.floats().bytes() + b.mergeWork().bytes() + b.workList(64).buffer().bytes(),
                    b.deviceBytes(), "the shared list counted once");
        }
        // a dense plan of 64-row tiles keeps no list for the gather kernel
        try (DevicePlan d = new DevicePlan(dev, Dense.INSTANCE.plan(ctx), 64)) {
            assertNull(d.packedWorkList());
        }
    }
}
