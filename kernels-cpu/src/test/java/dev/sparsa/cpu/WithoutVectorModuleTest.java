package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.Backends;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import org.junit.jupiter.api.Test;

/**
 * In a JVM started without {@code --add-modules jdk.incubator.vector} (the module pom's {@code
 * no-vector-module} execution) the backend falls back to the scalar kernel by itself, says which flag
 * to add, and still computes correct results. Skipped in JVMs that have the module.
 */
class WithoutVectorModuleTest {

    @Test
    void fallsBackToScalarAndNamesTheFlag() {
        assumeTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty(),
                "this JVM has jdk.incubator.vector; the no-vector-module execution covers the fallback");
        assertEquals(KernelFlavour.SCALAR, TileMathProvider.best().flavour());
        assertTrue(TileMathProvider.bestMessage().contains("--add-modules jdk.incubator.vector"),
                TileMathProvider.bestMessage());
        CpuBackend cpu = (CpuBackend) Backends.get("cpu");
        assertEquals(KernelFlavour.SCALAR, cpu.flavour());
        assertTrue(cpu.availability().reason().contains("--add-modules jdk.incubator.vector"),
                cpu.availability().reason());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CpuBackend(KernelFlavour.VECTOR, 1));
        assertTrue(e.getMessage().startsWith("flavour:") && e.getMessage().contains("--add-modules jdk.incubator.vector"),
                e.getMessage());

        AttentionShape s = new AttentionShape(1, 2, 1, 45, 45, 32, 16);
        Options o = Options.causalMask();
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(12, s, DType.BF16, Layout.BHSD);
        Fixtures.Run r = Fixtures.run(new CpuBackend(), plan, p, o, DType.F32, Layout.BHSD);
        assertTrue(Fixtures.oracle(plan, p, o).maxRelativeError(r.out()) <= 1e-5);

        // decode runs too, on the scalar decode arithmetic
        dev.sparsa.testing.KvProblems.Caches c = dev.sparsa.testing.KvProblems.caches(3, DType.BF16, new int[] {0, 70},
                1, 24, 16, 16, 30);
        dev.sparsa.tensor.Tensor q = DecodeFixtures.query(4, c.paged(), 2, 2);
        dev.sparsa.kv.DecodeOptions d = dev.sparsa.kv.DecodeOptions.defaults();
        DecodeFixtures.Run run = DecodeFixtures.decode(cpu, q, c.paged(), null, d, DType.F32);
        assertTrue(DecodeFixtures.oracle(q, c.paged(), null, d).maxRelativeError(run.out()) <= 1e-2);
    }
}
