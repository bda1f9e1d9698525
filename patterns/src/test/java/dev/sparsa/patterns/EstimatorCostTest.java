package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import org.junit.jupiter.api.Test;

/** The cost model says which estimators cost as much as dense attention and which are cheap. */
class EstimatorCostTest {

    private static double ratio(Pattern p, PlanContext ctx) {
        return ((EstimatorCost) p).relativeToDense(ctx);
    }

    @Test
    void exactSelectionsCostDenseAndBlockLevelOnesDoNot() {
        PlanContext ctx = Definitions.ctx(1, 8, 8, 32768, 32768, 128, true, 64, 64);
        assertEquals(1.0, ratio(Patterns.topK(2048), ctx), 1e-12, "exact per-query top-k");
        assertEquals(1.0, ratio(Patterns.tokenSelect(2048, 0, 0), ctx), 1e-12, "TokenSelect");
        assertEquals(1.0, ratio(Patterns.topKPerQueryBlockExact(2048, 0, 0), ctx), 1e-12, "exact per-block mass");
        assertEquals(1.0 / 64, ratio(Patterns.topKPerQueryBlock(2048, 0, 0), ctx), 1e-12, "pooled per-block");
        assertEquals(16.0 / 128, ratio(Patterns.doubleSparsity(java.util.stream.IntStream.range(0, 16).toArray(), 64, 0, 0), ctx),
                1e-12, "double sparsity with 16 of 128 channels");
        double vs = ratio(Patterns.verticalSlashEstimate(1000, 600, VsSemantics.BLOCK_EXPANDED), ctx);
        assertTrue(vs > 0.003 && vs < 0.005, "vertical-slash: 64 rows of 32768, about 2 * 64 / 32768, got " + vs);
        double mp = ratio(Patterns.minferenceBlockSparse(32), ctx);
        // pooled scores about 1/4096 of causal dense Q·Kᵀ, the pooling pass over Q and K 4/N
        assertTrue(mp > 3e-4 && mp < 4.5e-4, "mean-pooled 64-blocks: about 1/4096 + 4/32768, got " + mp);
        assertTrue(ratio(Patterns.sortLsh(8, 64, 0, 1), ctx) < 1e-3, "LSH hashing is linear in N");
    }
}
