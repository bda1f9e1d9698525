package dev.sparsa.patterns.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * {@link TopKPerQuery}'s ranking (the canonical arithmetic of its Javadoc) against an independent
 * double-precision definition: each row's scores in double, the candidates (visible, not forced)
 * ranked by score, ties to the lower key. Rows whose k-th and (k+1)-th double scores lie closer than
 * the f32 rounding could move them are left out; the others must agree exactly. Exact ties (constant
 * keys), zero and NaN scores follow the stated rules.
 */
class TopKPerQueryCanonicalTest {

    @Test
    void theRankingIsTheDoublePrecisionRankingAwayFromNearTies() {
        SplittableRandom rnd = new SplittableRandom(23);
        int compared = 0;
        for (int c = 0; c < 60; c++) {
            int d = new int[] {8, 32, 64}[c % 3];
            int nq = rnd.nextInt(1, 120);
            int nk = rnd.nextInt(1, 300);
            boolean causal = c % 2 == 0;
            PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, nq, nk, d, d),
                    Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64)));
            ForcedKeys forced = new ForcedKeys(rnd.nextInt(0, 8), rnd.nextInt(0, 40));
            int k = rnd.nextInt(1, 60);
            float[] q = gaussian(rnd, nq * d);
            float[] kr = gaussian(rnd, nk * d);
            int[][] got = new TopKPerQuery(k, forced).select(ctx, q, kr);
            assertEquals(nq, got.length);
            for (int r = 0; r < nq; r++) {
                int[] want = reference(ctx, q, kr, k, forced, r);
                if (want != null) {
                    assertArrayEquals(want, got[r], ctx + " k " + k + " " + forced + " row " + r);
                    compared++;
                }
            }
        }
        assertTrue(compared > 1500, compared + " rows compared");
    }

    /**
     * The selection from key panels (16 rows per pass, each row up to its last visible key) is the
     * selection from one {@code Vectors.dot} per key and row on every row, near ties included: the
     * scores are bitwise the same. Query lengths around the pass size, queries after the keys' start
     * (chunked prefill), causal or not, k above the visible keys, rows short and long (the selection's
     * two paths).
     */
    @Test
    void panelScoresChooseAsOneDotProductPerKey() {
        SplittableRandom rnd = new SplittableRandom(41);
        for (int c = 0; c < 40; c++) {
            int d = new int[] {8, 40, 128}[c % 3];
            int nq = new int[] {1, 15, 16, 17, 33, 70}[c % 6];
            int nk = nq + rnd.nextInt(0, 200) + (c % 5 == 0 ? 1500 : 0); // rows of more than 1024 keys too
            boolean causal = c % 4 != 3;
            PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, nq, nk, d, d),
                    Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64)));
            ForcedKeys forced = new ForcedKeys(rnd.nextInt(0, 4), rnd.nextInt(0, 20));
            int k = rnd.nextInt(1, 2 * nk);
            // scores rounded to few values: many exact and near ties
            float[] q = gaussian(rnd, nq * d);
            float[] kr = gaussian(rnd, nk * d);
            for (int i = 0; i < kr.length; i++) {
                kr[i] = Math.round(kr[i] * 2) / 2f;
            }
            int[][] got = new TopKPerQuery(k, forced).select(ctx, q, kr);
            int[][] want = PerRowSelection.select(ctx, k, forced, (row, last, sc) -> {
                for (int key = 0; key <= last; key++) {
                    sc[key] = dev.sparsa.patterns.support.Vectors.dot(q, row, kr, key, d);
                }
            });
            for (int r = 0; r < nq; r++) {
                assertArrayEquals(want[r], got[r], ctx + " k " + k + " " + forced + " row " + r);
            }
        }
    }

    @Test
    void equalScoresGoToTheLowerKeyAndNaNIsNeverChosen() {
        int d = 8;
        int nk = 100;
        PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, 1, nk, d, d), Options.defaults());
        ForcedKeys forced = new ForcedKeys(2, 0);
        float[] q = new float[d];
        Arrays.fill(q, 1f);
        float[] kr = new float[nk * d];
        Arrays.fill(kr, 0.5f); // every score 4: the lowest candidates win
        // key 5's score is 0 (below 4), key 7's NaN, key 9's +∞
        Arrays.fill(kr, 5 * d, 6 * d, 0f);
        kr[5 * d] = -0f;
        kr[7 * d] = Float.NaN;
        kr[9 * d] = Float.POSITIVE_INFINITY;
        assertArrayEquals(new int[] {2, 3, 4, 6, 8, 9}, new TopKPerQuery(6, forced).select(ctx, q, kr)[0]);
        Arrays.fill(kr, Float.NaN);
        assertArrayEquals(new int[0], new TopKPerQuery(6, forced).select(ctx, q, kr)[0]);
        // zero scores (keys of −0 and +0 channels) tie: the lower key
        Arrays.fill(kr, 0f);
        for (int key = 0; key < nk; key += 2) {
            kr[key * d] = -0f;
        }
        assertArrayEquals(new int[] {2, 3, 4}, new TopKPerQuery(3, forced).select(ctx, q, kr)[0]);
    }

    /** Row r's selection by the double-precision definition, or null at a near-tie. */
    private static int[] reference(PlanContext ctx, float[] q, float[] kr, int k, ForcedKeys forced, int r) {
        int d = ctx.shape().headDim();
        long p = (long) r + ctx.queryOffset();
        long n = ctx.causal() ? Math.max(0, Math.min(ctx.keyLength(), p + 1)) : ctx.keyLength();
        double norm = 0;
        for (int x = 0; x < d; x++) {
            norm += Math.abs(q[r * d + x]);
        }
        List<double[]> cands = new ArrayList<>();
        for (int key = 0; key < n; key++) {
            boolean isForced = key < forced.sinks() || (p - key >= 0 && p - key < forced.window());
            if (!isForced) {
                double s = 0;
                for (int x = 0; x < d; x++) {
                    s += (double) q[r * d + x] * kr[key * d + x];
                }
                cands.add(new double[] {s, key});
            }
        }
        cands.sort((a, b) -> a[0] != b[0] ? Double.compare(b[0], a[0]) : Double.compare(a[1], b[1]));
        int take = Math.min(k, cands.size());
        if (take < cands.size() && take > 0 && cands.get(take - 1)[0] - cands.get(take)[0] < 1e-4 * (1 + norm)) {
            return null;
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
