package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which contexts the device estimate takes ({@link CudaEstimatedPlan#refusal}), and
 * the block-list construction of {@code sparsa_est_emit} (transcribed below line for line) against
 * the host plan's lists on every context it takes.
 */
class CudaEstimatedPlanTest {

    @Test
    void refusesWhatItCannotWriteExactly() {
        AttentionShape s = AttentionShape.of(1, 2, 1000, 1000, 64);
        Options causal = Options.causalMask();
        assertNull(CudaEstimatedPlan.refusal(MeanPoolBlockTopK.minference(4), PlanContext.of(s, causal)));
        assertNull(CudaEstimatedPlan.refusal(new MeanPoolBlockTopK(4, 256, true, null),
                PlanContext.of(s, causal.withGeometry(new TileGeometry(128, 128)))));
        assertNotNull(CudaEstimatedPlan.refusal(MeanPoolBlockTopK.minference(4),
                PlanContext.of(s, causal.withGeometry(new TileGeometry(128, 128)))), "64-token blocks in 128-key tiles");
        assertNotNull(CudaEstimatedPlan.refusal(new MeanPoolBlockTopK(4, 96, false, null), PlanContext.of(s, causal)));
        assertNotNull(CudaEstimatedPlan.refusal(MeanPoolBlockTopK.minference(4),
                PlanContext.of(AttentionShape.of(1, 2, 1000, 1030, 64), causal)), "query offset 30");
        assertNull(CudaEstimatedPlan.refusal(MeanPoolBlockTopK.minference(4),
                PlanContext.of(AttentionShape.of(1, 2, 1000, 1030, 64), Options.defaults())), "no offset without causality");
        assertNotNull(CudaEstimatedPlan.refusal(MeanPoolBlockTopK.minference(4),
                PlanContext.of(AttentionShape.of(1, 1, 64 * 4097, 64 * 4097, 64), causal)), "4097 key blocks");
    }

    @Test
    void theEmitKernelsListsAreTheHostPlans() {
        for (int i = 0; i < 60; i++) {
            SplittableRandom r = new SplittableRandom(i);
            int g = i % 2 == 0 ? 64 : 128;
            int bs = g * (1 + r.nextInt(2));
            boolean causal = r.nextBoolean();
            int nk = r.nextInt(1, 1200);
            int nq = causal ? nk - 128 * r.nextInt(0, 1 + (nk - 1) / 128) : r.nextInt(1, 1200);
            AttentionShape s = AttentionShape.of(1, 2, nq, nk, 16);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            int kBlocks = (nk + bs - 1) / bs;
            MeanPoolBlockTopK p = new MeanPoolBlockTopK(r.nextInt(1, kBlocks + 3), bs, r.nextBoolean(), null);
            assertNull(CudaEstimatedPlan.refusal(p, ctx), "case " + i);
            Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
            SparsePlan plan = p.plan(ctx, x.q(), x.k());
            for (int h = 0; h < 2; h++) {
                float[] q = new float[nq * 16];
                float[] k = new float[nk * 16];
                for (int row = 0; row < nq; row++) {
                    x.q().readRow(0, h, row, q, row * 16);
                }
                for (int row = 0; row < nk; row++) {
                    x.k().readRow(0, h, row, k, row * 16);
                }
                int[][] sel = p.select(ctx, q, k);
                HeadLayout hl = plan.layouts().get(plan.layoutIndex(0, h));
                int[][] lists = emit(sel, nq, nk, g, bs, causal, ctx.queryOffset());
                String what = "case " + i + " head " + h;
                assertArrayEquals(hl.fullOffsets(), lists[0], what + " full offsets");
                assertArrayEquals(hl.fullBlocks(), lists[1], what + " full blocks");
                assertArrayEquals(hl.partialOffsets(), lists[2], what + " partial offsets");
                assertArrayEquals(hl.partialBlocks(), lists[3], what + " partial blocks");
            }
        }
    }

    /** {@code sparsa_est_emit} and {@code estTileBlocks} for one slice: {full offsets, full, partial offsets, partial}. */
    private static int[][] emit(int[][] sel, int nq, int nk, int g, int bs, boolean causal, int off) {
        int tiles = (nq + g - 1) / g;
        int m = bs / g;
        int[] fo = new int[tiles + 1];
        int[] po = new int[tiles + 1];
        int[] fb = new int[tiles * 64 * m];
        int[] pb = new int[tiles];
        for (int t = 0; t < tiles; t++) {
            int[] list = sel[t / (bs / g)];
            long start = (long) t * g;
            long rows = Math.min(g, nq - start);
            long qLo = start + off;
            long qHi = start + rows - 1 + off;
            long lastKey = causal ? Math.min(nk - 1L, qHi) : nk - 1L;
            int nf = fo[t];
            int np = po[t];
            for (int j : list) {
                for (int kb = j * m; kb < j * m + m; kb++) {
                    long k0 = (long) kb * g;
                    if (k0 >= nk || k0 > lastKey) {
                        break;
                    }
                    long kHi = Math.min(nk, k0 + g) - 1;
                    if (!causal || qLo - kHi >= 0) {
                        fb[nf++] = kb;
                    } else if (qHi - k0 >= 0) {
                        pb[np++] = kb;
                    }
                }
            }
            fo[t + 1] = nf;
            po[t + 1] = np;
        }
        return new int[][] {fo, Arrays.copyOf(fb, fo[tiles]), po, Arrays.copyOf(pb, po[tiles])};
    }
}
