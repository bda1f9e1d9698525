package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
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
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The CPU kernel at the edges of the numerics contract: non-finite inputs (NaN in, NaN out for the
 * rows they reach, as IEEE arithmetic and the oracle give), and rows merged over several tiles
 * without a buffer the size of the output.
 */
class CpuEdgeCasesTest {

    /** Row-level NaN-ness of the kernel equals the oracle's; the finite rows meet the tolerance. */
    private static void assertSameNaNRowsAndCloseElsewhere(Fixtures.Run run, ReferenceResult ref, AttentionShape s) {
        int nanRows = 0;
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    double refLse = ref.lse(b, h, r);
                    float lse = run.lse().get(b, h, r, 0);
                    boolean refNaN = Double.isNaN(refLse);
                    assertEquals(refNaN, Float.isNaN(lse), "LSE NaN-ness of row (" + b + ", " + h + ", " + r + ")");
                    for (int d = 0; d < s.valueDim(); d++) {
                        float o = run.out().get(b, h, r, d);
                        if (refNaN) {
                            assertTrue(Float.isNaN(o), "output of a NaN row must be NaN, got " + o);
                        } else {
                            assertTrue(Math.abs(o - ref.out(b, h, r, d)) <= 1e-4, "finite row (" + b + ", " + h + ", "
                                    + r + ") element " + d + ": " + o + " vs " + ref.out(b, h, r, d));
                        }
                    }
                    nanRows += refNaN ? 1 : 0;
                }
            }
        }
        assertTrue(nanRows > 0 && nanRows < s.slices() * s.queryLength(), "some rows NaN, not all: " + nanRows);
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void nonFiniteInputsGiveNaNRowsNotEmptyOnes(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 2, 1, 40, 40, 16, 8);
        Options o = Options.causalMask().withGeometry(new TileGeometry(8, 8));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        // NaN in one query row; +Inf in one key (rows after it that weigh it positively overflow)
        Problems.Qkv p = Problems.qkv(3, s, DType.F32, Layout.BHSD);
        p.q().set(0, 1, 7, 3, Float.NaN);
        p.k().set(0, 0, 25, 5, Float.POSITIVE_INFINITY);
        ReferenceResult ref = Fixtures.oracle(plan, p, o);
        Fixtures.Run run = Fixtures.run(new CpuBackend(flavour, 2), plan, p, o);
        assertSameNaNRowsAndCloseElsewhere(run, ref, s);
        assertTrue(Float.isNaN(run.lse().get(0, 1, 7, 0)), "the row whose query holds a NaN");
        assertTrue(!Float.isNaN(run.lse().get(0, 1, 20, 0)), "a row before the infinite key");
    }

    @ParameterizedTest
    @EnumSource(KernelFlavour.class)
    void nonFiniteValuesReachRowsMergedOverSeveralTiles(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(1, 1, 1, 30, 30, 8, 8);
        Options o = Options.defaults().withGeometry(new TileGeometry(8, 8));
        PlanContext ctx = PlanContext.of(s, o);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        b.listedTile(new int[] {1, 4, 9, 20}).full(0).end();
        b.listedTile(new int[] {4, 9, 29}).full(2).end();
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "repeated rows");
        Problems.Qkv p = Problems.qkv(4, s, DType.F32, Layout.BHSD);
        p.k().set(0, 0, 17, 2, Float.NaN); // in block 2: rows 4, 9 and 29 meet it in their second tile
        ReferenceResult ref = Fixtures.oracle(plan, p, o);
        Fixtures.Run run = Fixtures.run(new CpuBackend(flavour, 1), plan, p, o);
        assertSameNaNRowsAndCloseElsewhere(run, ref, s);
        assertTrue(Float.isNaN(run.lse().get(0, 0, 9, 0)) && run.lse().get(0, 0, 0, 0) == Float.NEGATIVE_INFINITY);
    }

    @Test
    void pagesReadBackWhatWasWrittenAcrossPageEnds() {
        FloatPages pages = new FloatPages(1000, 3, -1f);
        float[] row = new float[13];
        for (int i = 0; i < row.length; i++) {
            row[i] = i + 0.5f;
        }
        pages.write(5, row, 0, row.length);
        float[] back = new float[20];
        pages.read(0, back, 0, 20);
        for (int i = 0; i < 20; i++) {
            assertEquals(i >= 5 && i < 18 ? i - 5 + 0.5f : -1f, back[i], "element " + i);
        }
        pages.set(999, 7f);
        assertEquals(7f, pages.get(999));
        assertEquals(-1f, pages.get(600));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void rowsInSeveralTilesMergeWithoutAnOutputSizedBuffer(DType outType) {
        int nq = 8192;
        int dv = 64;
        AttentionShape s = new AttentionShape(1, 4, 1, nq, 64, 8, dv);
        Options o = Options.defaults().withGeometry(new TileGeometry(64, 64)).withOutputDType(outType);
        PlanContext ctx = PlanContext.of(s, o);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int r0 = 0; r0 < nq; r0 += 64) { // every row in a first round, the even rows again
            int[] rows = new int[64];
            int[] evens = new int[32];
            for (int i = 0; i < 64; i++) {
                rows[i] = r0 + i;
            }
            for (int i = 0; i < 32; i++) {
                evens[i] = r0 + 2 * i;
            }
            b.listedTile(rows).gather(3).gather(9).end();
            b.listedTile(evens).gather(40).end();
        }
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "two rounds");
        Problems.Qkv p = new Problems.Qkv(Problems.random(new SplittableRandom(1), outType, Layout.BHSD, 1, 4, nq, 8, 1),
                Problems.random(new SplittableRandom(2), outType, Layout.BHSD, 1, 1, 64, 8, 1),
                Problems.random(new SplittableRandom(3), outType, Layout.BHSD, 1, 1, 64, dv, 1));
        CpuBackend one = new CpuBackend(KernelFlavour.SCALAR, 1); // every item on this thread
        Tensor out = Tensor.allocate(outType, Layout.BHSD, 1, 4, nq, dv);
        one.forward(plan, p.q(), p.k(), p.v(), out, null, o); // warm: scratch and classes
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        one.forward(plan, p.q(), p.k(), p.v(), out, null, o);
        long allocated = mx.getCurrentThreadAllocatedBytes() - before;
        long outputSized = 4L * nq * dv * 4; // one f32 copy of the four stacked heads' rows
        if (outType == DType.F32) {
            assertTrue(allocated < outputSized / 4, "an f32 output merges in place: allocated " + allocated
                    + " bytes, an output-sized buffer is " + outputSized);
        }
        ReferenceResult ref = dev.sparsa.reference.ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o,
                new int[] {0, 1, 2, 4095, 8190, 8191});
        assertTrue(ref.maxRelativeError(out) <= Problems.tolerance(outType));
    }
}
