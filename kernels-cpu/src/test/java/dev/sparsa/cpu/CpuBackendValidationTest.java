package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.concurrent.Executor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Every refusal throws IllegalArgumentException naming the argument, before any kernel runs. */
class CpuBackendValidationTest {
    private final CpuBackend backend = new CpuBackend(1);
    private final AttentionShape shape = new AttentionShape(1, 2, 1, 9, 11, 16, 8);
    private final Options options = Options.defaults().withGeometry(new TileGeometry(8, 8));
    private final SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(shape, options));
    private final Problems.Qkv p = Problems.qkv(1, shape, DType.F32, Layout.BHSD);
    private final Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 9, 8);
    private final Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 9, 1);

    private static void assertRefused(String argument, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(argument) || e.getMessage().contains(argument + ":"),
                "message should name '" + argument + "': " + e.getMessage());
    }

    @Test
    void refusesGeometriesThatAreNotMultiplesOfEight() {
        for (TileGeometry g : new TileGeometry[] {new TileGeometry(12, 64), new TileGeometry(64, 20)}) {
            SparsePlan odd = Dense.INSTANCE.plan(PlanContext.of(shape, options.withGeometry(g)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backend.forward(odd, p.q(), p.k(), p.v(), out, lse, options.run()));
            assertTrue(e.getMessage().startsWith("geometry:") && e.getMessage().contains("multiple of 8")
                    && e.getMessage().contains(g.toString()), e.getMessage());
        }
        assertTrue(backend.supports(new TileGeometry(128, 64)));
    }

    @Test
    void refusesOptionsThatContradictThePlanNamingBothValues() {
        AttentionShape s = AttentionShape.of(1, 2, 96, 96, 16);
        Problems.Qkv x = Problems.qkv(5, s, DType.F32, Layout.BHSD);
        Tensor o = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 96, 16);
        SparsePlan causal64 = Dense.INSTANCE.plan(PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(64, 64))));
        Options nonCausal32 = Options.defaults().withGeometry(new TileGeometry(32, 32));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.forward(causal64, x.q(), x.k(), x.v(), o, null, nonCausal32));
        assertTrue(e.getMessage().contains("causal=false") && e.getMessage().contains("causal=true"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> backend.forward(causal64, x.q(), x.k(), x.v(), o, null,
                Options.causalMask().withGeometry(new TileGeometry(32, 32))));
        assertTrue(e.getMessage().contains("32x32") && e.getMessage().contains("64x64"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> backend.forward(causal64, x.q(), x.k(), x.v(), o, null,
                Options.causalMask().withQueryOffset(5)));
        assertTrue(e.getMessage().contains("queryOffset=5") && e.getMessage().contains("queryOffset=0"), e.getMessage());
        // options that leave offset and geometry unset agree with any plan of the same causality
        backend.forward(causal64, x.q(), x.k(), x.v(), o, null, Options.causalMask());
    }

    @Test
    void refusesAPlanPreparedElsewhereOrClosed() {
        PreparedPlan prepared = backend.prepare(plan);
        prepared.close();
        IllegalStateException closed = assertThrows(IllegalStateException.class,
                () -> backend.forward(prepared, p.q(), p.k(), p.v(), out, lse, options.run()));
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        AttentionBackend elsewhere = java.lang.reflect.Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {AttentionBackend.class}, (proxy, m, args) -> m.getName().equals("name") ? "elsewhere" : null)
                instanceof AttentionBackend b ? b : null;
        PreparedPlan foreign = new PreparedPlan(plan, elsewhere, Device.CPU) {
            @Override
            public long preparedBytes() {
                return 0;
            }

            @Override
            protected void release() {
            }
        };
        assertRefused("plan", () -> backend.forward(foreign, p.q(), p.k(), p.v(), out, lse, options.run()));
        assertRefused("device", () -> backend.prepare(plan, Device.cuda(0)));
    }

    @Test
    void refusesOutputsThatOverlapInputs() {
        float[] shared = new float[2 * 9 * 16];
        Tensor q = Tensor.of(shared, 1, 2, 9, 16);
        Tensor aliasOut = Tensor.wrap(java.lang.foreign.MemorySegment.ofArray(shared), DType.F32, new int[] {1, 2, 9, 8},
                new long[] {2 * 9 * 8, 9 * 8, 8, 1}, 0);
        assertRefused("out", () -> backend.forward(plan, q, p.k(), p.v(), aliasOut, lse, options.run()));
    }

    @Test
    void refusesReadOnlyOutputs() {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            Tensor native_ = Tensor.allocate(arena, DType.F32, Layout.BHSD, out.batch(), out.heads(), out.seqLen(), out.dim());
            Tensor readOnly = Tensor.wrap(native_.segment().asReadOnly(), DType.F32, native_.shape(), native_.strides(), 0);
            assertRefused("out", () -> backend.forward(plan, p.q(), p.k(), p.v(), readOnly, lse, options.run()));
            Tensor lseNative = Tensor.allocate(arena, DType.F32, Layout.BHSD, lse.batch(), lse.heads(), lse.seqLen(), 1);
            Tensor readOnlyLse = Tensor.wrap(lseNative.segment().asReadOnly(), DType.F32, lseNative.shape(),
                    lseNative.strides(), 0);
            assertRefused("lse", () -> backend.forward(plan, p.q(), p.k(), p.v(), out, readOnlyLse, options.run()));
        }
    }

    @Test
    void refusesHeadDimsOutsideTheSupportedSet() {
        for (int[] dims : new int[][] {{12, 16}, {264, 16}, {16, 20}, {16, 264}}) {
            AttentionShape s = new AttentionShape(1, 1, 1, 4, 4, dims[0], dims[1]);
            SparsePlan pl = Dense.INSTANCE.plan(PlanContext.of(s, options));
            Problems.Qkv x = Problems.qkv(2, s, DType.F32, Layout.BHSD);
            Tensor o = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 4, dims[1]);
            String name = dims[0] % 8 != 0 || dims[0] > 256 ? "headDim" : "valueDim";
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backend.forward(pl, x.q(), x.k(), x.v(), o, null, options));
            assertTrue(e.getMessage().startsWith(name + ":") && e.getMessage().contains("multiples of 8 from 8 to 256"),
                    e.getMessage());
        }
    }

    @Test
    void refusesBadCallArguments() {
        assertRefused("plan", () -> backend.forward(null, p.q(), p.k(), p.v(), out, lse, options));
        assertRefused("options", () -> backend.forward(plan, p.q(), p.k(), p.v(), out, lse, (Options) null));
        assertRefused("q, k, v", () -> backend.forward(plan, null, p.k(), p.v(), out, lse, options));
        assertRefused("out", () -> backend.forward(plan, p.q(), p.k(), p.v(), null, lse, options));
        assertRefused("out", () -> backend.forward(plan, p.q(), p.k(), p.v(),
                Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 9, 16), lse, options));
        assertRefused("out", () -> backend.forward(plan, p.q(), p.k(), p.v(),
                Tensor.allocate(DType.BF16, Layout.BHSD, 1, 2, 9, 8), lse, options));
        assertRefused("lse", () -> backend.forward(plan, p.q(), p.k(), p.v(), out,
                Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 8, 1), options));
        assertRefused("lse", () -> backend.forward(plan, p.q(), p.k(), p.v(), out,
                Tensor.allocate(DType.F16, Layout.BHSD, 1, 2, 9, 1), options));
        Problems.Qkv other = Problems.qkv(3, new AttentionShape(1, 2, 1, 10, 11, 16, 8), DType.F32, Layout.BHSD);
        assertRefused("plan", () -> backend.forward(plan, other.q(), other.k(), other.v(), out, lse, options));
        Tensor kBf16 = p.k().to(DType.BF16, Layout.BHSD);
        assertRefused("dtype", () -> backend.forward(plan, p.q(), kBf16, p.v(), out, lse, options));
        float[] bad = p.q().toFloatArray();
        bad[5] = Float.NaN;
        Tensor qNaN = Tensor.of(bad, 1, 2, 9, 16);
        assertRefused("q", () -> backend.forward(plan, qNaN, p.k(), p.v(), out, lse, options.withValidateFinite(true)));
    }

    @Test
    void refusesBadConstructorArguments() {
        assertRefused("threads", () -> new CpuBackend(0));
        assertRefused("threads", () -> new CpuBackend(KernelFlavour.SCALAR, -1));
        assertRefused("flavour", () -> new CpuBackend(null, 2));
        assertRefused("executor", () -> new CpuBackend(KernelFlavour.SCALAR, null, 2));
        Executor direct = Runnable::run;
        assertRefused("parallelism", () -> new CpuBackend(KernelFlavour.SCALAR, direct, 0));
    }
}
