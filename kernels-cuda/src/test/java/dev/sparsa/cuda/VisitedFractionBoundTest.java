package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import org.junit.jupiter.api.Test;

/**
 * {@link CudaDeviceEstimatedPlan#keptFraction}, the bound behind the facade's AUTO rule for device
 * estimates, against sums worked by hand: keys kept per group of rows over the keys each group may see.
 */
class VisitedFractionBoundTest {
    private static PlanContext ctx(int nq, int nk, boolean causal) {
        return PlanContext.of(new AttentionShape(1, 2, 1, nq, nk, 64, 64),
                Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64)));
    }

    @Test
    void nonCausalKeepsTheSameShareOfEveryRow() {
        assertEquals(0.1, CudaDeviceEstimatedPlan.keptFraction(ctx(300, 1000, false), 64, 100), 1e-12);
        assertEquals(1.0, CudaDeviceEstimatedPlan.keptFraction(ctx(300, 1000, false), 64, 5000), 1e-12);
        assertEquals(0.0, CudaDeviceEstimatedPlan.keptFraction(ctx(300, 1000, false), 64, 0), 1e-12);
    }

    @Test
    void causalGroupsSeeTheKeysUpToTheirLastRow() {
        // groups of 64 rows see 64, 128, 192 and 256 keys; 64 kept each: 4·64·64 / (64·(64+128+192+256))
        assertEquals(0.4, CudaDeviceEstimatedPlan.keptFraction(ctx(256, 256, true), 64, 64), 1e-12);
        // a short last group counts its own rows: rows 0..63 see 64, rows 64..99 see 100; keep 80
        double expected = (64.0 * 64 + 36.0 * 80) / (64.0 * 64 + 36.0 * 100);
        assertEquals(expected, CudaDeviceEstimatedPlan.keptFraction(ctx(100, 100, true), 64, 80), 1e-12);
        // a query offset: 100 queries at the end of 1000 keys
        double off = (64.0 * 200 + 36.0 * 200) / (64.0 * 964 + 36.0 * 1000);
        assertEquals(off, CudaDeviceEstimatedPlan.keptFraction(ctx(100, 1000, true), 64, 200), 1e-12);
    }

    @Test
    void anEmptyContextHasNothingToBound() {
        assertEquals(1.0, CudaDeviceEstimatedPlan.keptFraction(ctx(0, 100, false), 64, 10), 1e-12);
    }

    @Test
    void theStaticBoundsNeedNoPlan() {
        // the facade's AUTO rule reads these before any device memory is allocated
        // top 2 blocks + the diagonal of 128 keys, 1024 keys, not causal: 384 of 1024 keys per row
        PlanContext wide = PlanContext.of(new AttentionShape(1, 2, 1, 1024, 1024, 64, 64),
                Options.defaults().withCausal(false).withGeometry(new TileGeometry(64, 64)));
        assertEquals(0.375, CudaEstimatedPlan.visitedFractionBound(new MeanPoolBlockTopK(2, 128, true, "t"), wide), 1e-12);
        // more blocks than there are: every key
        assertEquals(1.0, CudaEstimatedPlan.visitedFractionBound(new MeanPoolBlockTopK(9, 128, false, "t"), wide), 1e-12);
        // k 100 + 4 sinks + a window of 28 per row: 132 of 1024
        assertEquals(132.0 / 1024, CudaTopKQueryEstimatedPlan.visitedFractionBound(
                new TopKPerQuery(100, new ForcedKeys(4, 28)), wide), 1e-12);
        // the indexer's top 100 per row, shared by the heads: 100 of 1024
        assertEquals(100.0 / 1024, CudaLightningIndexerEstimatedPlan.visitedFractionBound(
                dev.sparsa.patterns.dsa.LightningIndexer.projected(100, 4, 32, 1), wide), 1e-12);
    }
}
