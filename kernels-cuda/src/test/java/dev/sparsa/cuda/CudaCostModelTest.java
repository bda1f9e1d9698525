package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import org.junit.jupiter.api.Test;

/** The model gives back the H200 figures it was derived from (docs/PERFORMANCE.md, "GPU (H200)"). */
class CudaCostModelTest {
    private static final CudaCostModel H200 = new CudaCostModel(132, KernelChoice.HOPPER);
    private static final TileGeometry BIG = new TileGeometry(128, 128);

    private static PlanContext ctx(int n, boolean causal, TileGeometry g) {
        return PlanContext.of(AttentionShape.of(1, 32, n, n, 128), Options.defaults().withCausal(causal).withGeometry(g));
    }

    @Test
    void denseAndWindowTimesOfTheHopperKernel() {
        // measured: dense 32k 44.20 ms, causal 32k 24.78 ms, dense 8k 2.999 ms
        assertEquals(44.20, H200.denseMillis(ctx(32768, false, BIG), DType.BF16), 44.20 * 0.05);
        assertEquals(24.78, H200.denseMillis(ctx(32768, true, BIG), DType.BF16), 24.78 * 0.15);
        assertEquals(2.999, H200.denseMillis(ctx(8192, false, BIG), DType.BF16), 2.999 * 0.15);
        // window of 1024 keys, causal, at 32k: measured 2.005 ms
        PlanContext c = ctx(32768, true, BIG);
        HeadLayoutBuilder b = HeadLayout.builder(c, c.basePredicate().withBand(0, 1023));
        b.tilesByPredicate(t -> (t * 128 - 1023) / 128, t -> t);
        double window = H200.millis(SparsePlan.uniform(c, b.build(), "window 1024"), DType.BF16);
        assertEquals(2.005, window, 2.005 * 0.15);
    }

    @Test
    void oneRowTilesCostWholeTilesAndOtherShapesRunAtTheMmaRate() {
        PlanContext c = ctx(4096, false, TileGeometry.DEFAULT);
        HeadLayoutBuilder rows = HeadLayout.builder(c, c.basePredicate());
        for (int r = 0; r < 4096; r++) {
            rows.listedTile(new int[] {r}).gatherAll(new int[] {r / 2, r}, 0, r == 0 ? 1 : 2).end();
        }
        double perRow = H200.millis(SparsePlan.uniform(c, rows.build(), "one-row"), DType.BF16);
        assertTrue(perRow > H200.denseMillis(c, DType.BF16), "4096 one-row tiles cost more than dense at 4k: " + perRow);
        // 64×64 tiles do not run the Hopper kernel: the same dense call is slower per pair than on 128×128
        double small = H200.denseMillis(ctx(32768, false, TileGeometry.DEFAULT), DType.BF16);
        assertTrue(small > 44.20 * 1.3, "mma.sync rate on 64x64: " + small);
        assertTrue(H200.denseMillis(ctx(8192, false, BIG), DType.F32) > 5 * H200.denseMillis(ctx(8192, false, BIG), DType.BF16));
        assertTrue(H200.description().contains("H200"));
    }
}
