package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The vector and scalar kernels against each other (and the oracle) on odd and prime sizes, where
 * every tail of the micro-kernels runs: prime lengths, dims of 8 × a prime, tiles that are not a
 * multiple of the vector length.
 */
class VectorScalarAgreementTest {

    @ParameterizedTest
    @CsvSource({
        // batch, qHeads, kvHeads, nq, nk, headDim, valueDim, tileRows, blockCols, causal
        "1, 1, 1, 1, 97, 8, 8, 8, 8, false",
        "1, 3, 1, 31, 97, 136, 56, 24, 40, true",
        "2, 2, 2, 67, 89, 104, 152, 40, 56, false",
        "1, 7, 7, 13, 101, 248, 8, 8, 24, true",
        "1, 4, 2, 59, 59, 88, 184, 56, 8, true",
    })
    void vectorAndScalarAgree(int batch, int qHeads, int kvHeads, int nq, int nk, int headDim, int valueDim,
                              int tileRows, int blockCols, boolean causal) {
        if (TileMathProvider.best().flavour() != KernelFlavour.VECTOR) {
            throw new org.opentest4j.TestAbortedException("the Vector API is not readable in this JVM");
        }
        AttentionShape s = new AttentionShape(batch, qHeads, kvHeads, nq, nk, headDim, valueDim);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(tileRows, blockCols));
        SparsePlan plan = RandomPlans.randomPlan(nq * 31L + nk, PlanContext.of(s, o), true);
        Problems.Qkv p = Problems.qkv(nk, s, DType.F32, Layout.BSHD);
        Fixtures.Run vector = Fixtures.run(new CpuBackend(KernelFlavour.VECTOR, 2), plan, p, o);
        Fixtures.Run scalar = Fixtures.run(new CpuBackend(KernelFlavour.SCALAR, 2), plan, p, o);
        double diff = Fixtures.maxRelativeDifference(vector.out(), scalar.out());
        assertTrue(diff <= 1e-5, "vector vs scalar relative difference " + diff);
        ReferenceResult ref = Fixtures.oracle(plan, p, o);
        assertTrue(ref.maxRelativeError(vector.out()) <= 1e-5);
        assertTrue(ref.maxRelativeError(scalar.out()) <= 1e-5);
        assertTrue(ref.maxLseError(vector.lse()) <= 1e-4);
        assertTrue(ref.maxLseError(scalar.lse()) <= 1e-4);
    }
}
