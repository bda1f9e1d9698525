package dev.sparsa.patterns.blocksparse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link MeanPoolBlockTopK#select} against a scalar transcription of its canonical arithmetic, the
 * one the CUDA estimator ({@code sparsa_estimate.cuh}) also follows: pooled channel = 0 plus the
 * block's rows in ascending order, one f32 add each, divided by the block size; score = one chain of
 * {@link Math#fma} over the channels in order from 0; rank by score ({@code -0} as {@code +0}, NaN
 * never), ties to the lower block. Random rows and rows built to tie, causal and not, with and
 * without the diagonal, shorter last blocks.
 */
class MeanPoolBlockTopKCanonicalTest {

    @Test
    void selectFollowsTheCanonicalArithmeticOnRandomAndTiedData() {
        for (int i = 0; i < 200; i++) {
            SplittableRandom r = new SplittableRandom(i);
            int d = new int[] {1, 3, 16, 64}[r.nextInt(4)];
            int bs = 1 + r.nextInt(9);
            int nk = 1 + r.nextInt(90);
            boolean causal = r.nextBoolean();
            int nq = causal ? 1 + r.nextInt(nk) : 1 + r.nextInt(90);
            int top = 1 + r.nextInt(6);
            boolean diag = r.nextBoolean();
            int kind = i % 5;
            float[] q = rows(r, nq, d, kind, true);
            float[] k = rows(r, nk, d, kind, false);
            if (kind == 4) {
                // the first query block pools to NaN: its scores are NaN, never chosen
                java.util.Arrays.fill(q, 0, Math.min(nq, bs) * d, Float.NaN);
            }
            if (kind == 1) {
                // key block j repeats block j mod 2: their pooled scores tie
                for (int row = 2 * bs; row < nk; row++) {
                    System.arraycopy(k, (row % (2 * bs)) * d, k, row * d, d);
                }
            }
            PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, nq, nk, d),
                    Options.defaults().withCausal(causal));
            MeanPoolBlockTopK p = new MeanPoolBlockTopK(top, bs, diag, null);
            int[][] got = p.select(ctx, q, k);
            int[][] want = canonical(q, k, nq, nk, d, bs, top, diag, causal, ctx.queryOffset());
            assertEquals(want.length, got.length);
            for (int b = 0; b < want.length; b++) {
                int qb = b;
                int seed = i;
                assertArrayEquals(want[b], got[b], () -> "seed " + seed + " query block " + qb);
            }
        }
    }

    /** Rows: random (0, 1), repeated blocks (1, fixed up by the caller), constant (2), zero queries of either sign (3), random with NaN queries set by the caller (4). */
    private static float[] rows(SplittableRandom r, int n, int d, int kind, boolean queries) {
        float[] x = new float[n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = switch (kind) {
                case 2 -> 0.75f;
                case 3 -> queries ? ((i & 1) == 0 ? 0f : -0f) : (float) r.nextGaussian();
                default -> (float) r.nextGaussian();
            };
        }
        return x;
    }

    private static float[] pool(float[] x, int n, int d, int bs) {
        int g = (n + bs - 1) / bs;
        float[] out = new float[g * d];
        for (int b = 0; b < g; b++) {
            for (int c = 0; c < d; c++) {
                float s = 0f;
                for (int row = b * bs; row < Math.min(n, (b + 1) * bs); row++) {
                    s += x[row * d + c];
                }
                out[b * d + c] = s / (float) bs;
            }
        }
        return out;
    }

    private static int[][] canonical(float[] q, float[] k, int nq, int nk, int d, int bs, int top, boolean diag,
                                     boolean causal, int offset) {
        float[] qp = pool(q, nq, d, bs);
        float[] kp = pool(k, nk, d, bs);
        int qBlocks = (nq + bs - 1) / bs;
        int kBlocks = (nk + bs - 1) / bs;
        int[][] out = new int[qBlocks][];
        for (int i = 0; i < qBlocks; i++) {
            long lastRow = Math.min(nq, (long) (i + 1) * bs) - 1;
            long lastKey = causal ? Math.min(nk - 1L, lastRow + offset) : nk - 1L;
            int last = lastKey < 0 ? -1 : (int) Math.min(kBlocks - 1, lastKey / bs);
            List<float[]> ranked = new ArrayList<>(); // {score, block}
            for (int j = 0; j <= last; j++) {
                float s = 0f;
                for (int c = 0; c < d; c++) {
                    s = Math.fma(qp[i * d + c], kp[j * d + c], s);
                }
                if (!Float.isNaN(s)) {
                    ranked.add(new float[] {s == 0f ? 0f : s, j});
                }
            }
            ranked.sort((a, b) -> a[0] != b[0] ? Float.compare(b[0], a[0]) : Float.compare(a[1], b[1]));
            boolean[] chosen = new boolean[kBlocks];
            for (int r = 0; r < Math.min(top, ranked.size()); r++) {
                chosen[(int) ranked.get(r)[1]] = true;
            }
            if (diag && last >= 0) {
                chosen[last] = true;
            }
            out[i] = java.util.stream.IntStream.range(0, kBlocks).filter(j -> chosen[j]).toArray();
        }
        return out;
    }
}
