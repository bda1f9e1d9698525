package dev.sparsa.patterns.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The pooled scoring's ranking (the canonical arithmetic of {@link TopKPerQueryBlock}'s Javadoc)
 * against an independent double-precision definition: the tile's mean query and its scores in
 * double, the candidates (visible, not forced) ranked by score, ties to the lower key. Tiles whose
 * k-th and (k+1)-th double scores lie closer than the f32 rounding could move them are left out;
 * the others must agree exactly. Exact ties (constant keys), zero and NaN scores follow the stated
 * rules.
 */
class TopKPerQueryBlockCanonicalTest {
    private static final TopKPerQueryBlock.Scoring POOLED = TopKPerQueryBlock.Scoring.POOLED_QUERY;

    @Test
    void theRankingIsTheDoublePrecisionRankingAwayFromNearTies() {
        SplittableRandom rnd = new SplittableRandom(17);
        int compared = 0;
        for (int c = 0; c < 100; c++) {
            int d = new int[] {8, 32, 64}[c % 3];
            int nq = rnd.nextInt(1, 300);
            int nk = rnd.nextInt(1, 400);
            boolean causal = c % 2 == 0;
            int g = c % 4 < 2 ? 16 : 32;
            PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, nq, nk, d, d),
                    Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            ForcedKeys forced = new ForcedKeys(rnd.nextInt(0, 8), rnd.nextInt(1, 80));
            int k = rnd.nextInt(1, 60);
            float[] q = gaussian(rnd, nq * d);
            float[] kr = gaussian(rnd, nk * d);
            int[][] got = new TopKPerQueryBlock(k, forced, POOLED).select(ctx, q, kr);
            for (int t = 0; t < got.length; t++) {
                int[] want = reference(ctx, q, kr, k, forced, t);
                if (want != null) {
                    assertArrayEquals(want, got[t], ctx + " k " + k + " " + forced + " tile " + t);
                    compared++;
                }
            }
        }
        assertTrue(compared > 400, compared + " tiles compared");
    }

    @Test
    void equalScoresGoToTheLowerKeyAndNaNIsNeverChosen() {
        int d = 8;
        int nk = 100;
        PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, 16, nk, d, d),
                Options.defaults().withGeometry(new TileGeometry(16, 16)));
        ForcedKeys forced = new ForcedKeys(2, 1);
        float[] q = new float[16 * d];
        Arrays.fill(q, 1f);
        float[] kr = new float[nk * d];
        Arrays.fill(kr, 0.5f); // every score 4: the lowest candidates win
        // key 5's score is 0 (below 4), key 7's NaN, key 9's +∞
        Arrays.fill(kr, 5 * d, 6 * d, 0f);
        kr[5 * d] = -0f;
        kr[7 * d] = Float.NaN;
        kr[9 * d] = Float.POSITIVE_INFINITY;
        int[] top = new TopKPerQueryBlock(6, forced, POOLED).select(ctx, q, kr)[0];
        assertArrayEquals(new int[] {2, 3, 4, 6, 8, 9}, top);
        // every score NaN: nothing chosen
        Arrays.fill(kr, Float.NaN);
        assertArrayEquals(new int[0], new TopKPerQueryBlock(6, forced, POOLED).select(ctx, q, kr)[0]);
        // zero scores (keys of −0 and +0 channels) tie: the lower key
        Arrays.fill(kr, 0f);
        for (int key = 0; key < nk; key += 2) {
            kr[key * d] = -0f;
        }
        assertArrayEquals(new int[] {2, 3, 4}, new TopKPerQueryBlock(3, forced, POOLED).select(ctx, q, kr)[0]);
    }

    /** Tile t's selection by the double-precision definition, or null at a near-tie. */
    private static int[] reference(PlanContext ctx, float[] q, float[] kr, int k, ForcedKeys forced, int t) {
        int d = ctx.shape().headDim();
        int rows = ctx.geometry().tileRows();
        int r0 = t * rows;
        int r1 = Math.min(ctx.queryLength(), r0 + rows);
        long pLo = (long) r0 + ctx.queryOffset();
        long pHi = (long) r1 - 1 + ctx.queryOffset();
        int n = ctx.causal() ? (int) Math.max(0, Math.min(ctx.keyLength(), pHi + 1)) : ctx.keyLength();
        double[] mean = new double[d];
        double norm = 0;
        for (int x = 0; x < d; x++) {
            for (int r = r0; r < r1; r++) {
                mean[x] += q[r * d + x];
            }
            mean[x] /= (r1 - r0);
            norm += Math.abs(mean[x]);
        }
        List<double[]> cands = new ArrayList<>();
        for (int key = 0; key < n; key++) {
            boolean isForced = key < forced.sinks() || (key <= pLo && pHi - key < forced.window());
            if (!isForced) {
                double s = 0;
                for (int x = 0; x < d; x++) {
                    s += mean[x] * kr[key * d + x];
                }
                cands.add(new double[] {s, key});
            }
        }
        cands.sort((a, b) -> a[0] != b[0] ? Double.compare(b[0], a[0]) : Double.compare(a[1], b[1]));
        int take = Math.min(k, cands.size());
        if (take < cands.size()) {
            // f32 sums and products move a score by far less than this; closer pairs may swap
            double tol = 1e-4 * (1 + norm);
            if (cands.get(take - 1)[0] - cands.get(take)[0] < tol) {
                return null;
            }
        }
        int[] out = new int[take];
        for (int i = 0; i < take; i++) {
            out[i] = (int) cands.get(i)[1];
        }
        Arrays.sort(out);
        return out;
    }

    private static float[] gaussian(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }
}
