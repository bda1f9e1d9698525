package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.attention.Options;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.plan.TileGeometry;
import dev.sparsa.tensor.DType;
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
                    () -> backend.forward(odd, p.q(), p.k(), p.v(), out, lse, options));
            assertTrue(e.getMessage().startsWith("geometry:") && e.getMessage().contains("multiple of 8")
                    && e.getMessage().contains(g.toString()), e.getMessage());
        }
        assertTrue(backend.supports(new TileGeometry(128, 64)));
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
        assertRefused("options", () -> backend.forward(plan, p.q(), p.k(), p.v(), out, lse, null));
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
