package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
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
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA kernels against the fp64 oracle on random shapes and random plans (every IR feature:
 * listed rows, rows in two tiles or none, full and partial blocks, gathered and unconditional keys
 * with log-weights, every predicate family), at the numerics contract's tolerances. Needs a GPU: skipped where
 * the backend is unavailable. Outputs are poisoned with NaN first, so an unwritten row fails.
 */
@Tag("gpu")
class CudaAttentionGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    /** One random configuration. */
    record Case(long seed, DType dtype, int dim, int valueDim, TileGeometry geometry, int batch, int kvHeads, int group, int nq, int nk,
                boolean causal, Integer offset, float softCap, int planKind, Layout layout, boolean outF32) {
        @Override
        public String toString() {
            return "seed " + seed + " " + dtype + " d" + dim + (valueDim != dim ? "v" + valueDim : "") + " " + geometry + " b" + batch + " kv" + kvHeads + "x" + group + " nq"
                    + nq + " nk" + nk + (causal ? " causal" : "") + (offset == null ? "" : " off" + offset)
                    + (softCap > 0 ? " cap" + softCap : "") + " plan" + planKind + " " + layout + (outF32 ? " outF32" : "");
        }
    }

    static Stream<Arguments> randomCases() {
        List<Arguments> cases = new ArrayList<>();
        DType[] types = DType.values();
        for (int i = 0; i < 90; i++) {
            SplittableRandom r = new SplittableRandom(1000 + i);
            DType t = types[i % 3];
            // 72 cases over the head dims, then 18 over the mixed (headDim, valueDim) pairs
            int dim = i < 72 ? KernelChoice.HEAD_DIMS.get((i / 3) % 5) : KernelChoice.MIXED_DIMS.get((i / 3) % 3).get(0);
            int valueDim = i < 72 ? dim : KernelChoice.MIXED_DIMS.get((i / 3) % 3).get(1);
            TileGeometry g = KernelChoice.GEOMETRIES.get((i / 15) % 2);
            int nq = r.nextInt(5) == 0 ? 1 : r.nextInt(1, 300);
            int nk = r.nextInt(1, 300);
            Integer off = r.nextInt(3) == 0 ? r.nextInt(-10, 40) : null;
            cases.add(Arguments.of(new Case(1000 + i, t, dim, valueDim, g, r.nextInt(1, 3), r.nextInt(1, 3), new int[] {1, 2, 4}[r.nextInt(3)],
                    nq, nk, r.nextBoolean(), off, r.nextInt(4) == 0 ? 5f : 0f, r.nextInt(4), r.nextBoolean() ? Layout.BHSD : Layout.BSHD,
                    r.nextBoolean())));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("randomCases")
    void matchesTheOracle(Case c) {
        AttentionShape s = new AttentionShape(c.batch(), c.kvHeads() * c.group(), c.kvHeads(), c.nq(), c.nk(), c.dim(), c.valueDim());
        Options o = Options.defaults().withCausal(c.causal()).withQueryOffset(c.offset()).withSoftCap(c.softCap())
                .withGeometry(c.geometry()).withOutputDType(c.outF32() ? DType.F32 : null);
        PlanContext ctx = PlanContext.of(s, o);
        SparsePlan plan = switch (c.planKind()) {
            case 0 -> Dense.INSTANCE.plan(ctx);
            case 1 -> RandomPlans.randomBlockSparse(c.seed(), ctx, 0.4);
            case 2 -> RandomPlans.randomPlan(c.seed(), ctx, false);
            default -> RandomPlans.randomPlan(c.seed(), ctx, true);
        };
        Problems.Qkv p = Problems.qkv(c.seed(), s, c.dtype(), c.layout());
        DType outType = o.outputTypeFor(c.dtype());
        Tensor out = poisoned(outType, c.layout(), s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
        Tensor lse = poisoned(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), out, lse, o);
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        double tol = Problems.tolerance(c.dtype());
        double err = ref.maxRelativeError(out);
        assertTrue(err <= tol, c + " (" + plan + "): relative error " + err + " > " + tol);
        double lseErr = ref.maxLseError(lse);
        double lseTol = c.dtype() == DType.F32 ? 1e-4 : 1e-3;
        assertTrue(lseErr <= lseTol, c + ": LSE error " + lseErr + " > " + lseTol);
    }

    @Test
    void deviceTensorsGiveTheSameBitsAsHostTensorsAndRunsRepeatExactly() {
        AttentionShape s = new AttentionShape(2, 8, 2, 200, 333, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(128, 128));
        SparsePlan plan = RandomPlans.randomPlan(7, PlanContext.of(s, o), true);
        Problems.Qkv p = Problems.qkv(7, s, DType.BF16, Layout.BHSD);
        Tensor hostOut = Tensor.allocate(DType.BF16, Layout.BHSD, 2, 8, 200, 128);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), hostOut, null, o);
        Tensor again = Tensor.allocate(DType.BF16, Layout.BHSD, 2, 8, 200, 128);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), again, null, o);
        assertArrayEquals(hostOut.toFloatArray(), again.toFloatArray(), "deterministic");
        CudaDevice dev = BACKEND.device();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 2, 8, 200, 128)) {
            BACKEND.forward(plan, q, k, v, out, null, o);
            Tensor back = Tensor.allocate(DType.BF16, Layout.BHSD, 2, 8, 200, 128);
            Tensor.copy(out, back);
            assertArrayEquals(hostOut.toFloatArray(), back.toFloatArray(), "device path = host path");
        }
    }

    @Test
    void aPreparedPlanRunsManyCallsWithTheSameBitsAndRefusesOnceClosed() {
        AttentionShape s = AttentionShape.of(1, 4, 130, 130, 64);
        Options o = Options.defaults();
        SparsePlan plan = RandomPlans.randomPlan(3, PlanContext.of(s, o), false);
        Problems.Qkv p = Problems.qkv(3, s, DType.F16, Layout.BHSD);
        Tensor first = Tensor.allocate(DType.F16, Layout.BHSD, 1, 4, 130, 64);
        PreparedPlan prepared = BACKEND.prepare(plan);
        assertTrue(prepared.preparedBytes() > 0, "the plan lives on the device");
        BACKEND.forward(prepared, p.q(), p.k(), p.v(), first, null, o.run());
        for (int i = 0; i < 3; i++) {
            Tensor out = Tensor.allocate(DType.F16, Layout.BHSD, 1, 4, 130, 64);
            BACKEND.forward(prepared, p.q(), p.k(), p.v(), out, null, o.run());
            assertArrayEquals(first.toFloatArray(), out.toFloatArray(), "run " + i);
        }
        prepared.close();
        assertEquals(0, prepared.preparedBytes());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> BACKEND.forward(prepared, p.q(), p.k(),
                p.v(), first, null, o.run()));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void viewsOfLargerTensorsAreReadAndWrittenInPlace() {
        // q and out are windows of a longer sequence; the elements outside must stay untouched
        AttentionShape s = AttentionShape.of(1, 2, 70, 90, 64);
        Options o = Options.causalMask();
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv big = Problems.qkv(5, AttentionShape.of(1, 2, 100, 90, 64), DType.F32, Layout.BSHD);
        Tensor q = big.q().narrowSeq(16, 70);
        Tensor outBig = poisoned(DType.F32, Layout.BSHD, 1, 2, 100, 64);
        Tensor out = outBig.narrowSeq(8, 70);
        BACKEND.forward(plan, q, big.k(), big.v(), out, null, o);
        ReferenceResult ref = ReferenceAttention.plan(plan, q, big.k(), big.v(), o);
        assertTrue(ref.maxRelativeError(out) <= 1e-5, "error " + ref.maxRelativeError(out));
        assertTrue(Float.isNaN(outBig.get(0, 1, 3, 5)) && Float.isNaN(outBig.get(0, 0, 90, 63)), "outside the view untouched");
    }

    @Test
    void unsupportedHeadDimIsRefusedByName() {
        AttentionShape s = AttentionShape.of(1, 1, 16, 16, 72);
        Problems.Qkv p = Problems.qkv(1, s, DType.BF16, Layout.BHSD);
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, Options.defaults()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BACKEND.forward(plan, p.q(), p.k(), p.v(),
                Tensor.allocate(DType.BF16, Layout.BHSD, 1, 1, 16, 72), null, Options.defaults()));
        assertTrue(e.getMessage().contains("72"), e.getMessage());
    }

    static Tensor poisoned(DType t, Layout layout, int b, int h, int s, int d) {
        Tensor x = Tensor.allocate(t, layout, b, h, s, d);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < h; j++) {
                for (int k = 0; k < s; k++) {
                    x.fillRow(i, j, k, Float.NaN);
                }
            }
        }
        return x;
    }
}
