package dev.sparsa.patterns.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The fast selection (grouped vector scoring) equals, tile for tile, the plain definition: pooled,
 * the scalar dot products of the tile's mean query; exact mass, the sum of the rows' float softmax;
 * then top-k with ties to the lower key. Inputs include coarse integer data full of exact ties and near-ties.
 */
class TopKPerQueryBlockSelectionTest {

    @Test
    void fastSelectionEqualsPlainDefinition() {
        SplittableRandom rnd = new SplittableRandom(9);
        for (boolean causal : new boolean[] {true, false}) {
            for (int[] shape : new int[][] {{100, 100, 16, 16}, {70, 150, 8, 24}, {64, 64, 32, 16}, {1, 90, 8, 8},
                    {24, 1500, 8, 64}}) { // the last: over 1024 candidates per tile (the bracketed selection)
                PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, shape[0], shape[1], 12, 12),
                        Options.defaults().withCausal(causal).withGeometry(new TileGeometry(shape[2], shape[3])));
                for (int kind = 0; kind < 3; kind++) {
                    float[] q = data(rnd, shape[0] * 12, kind);
                    float[] k = data(rnd, shape[1] * 12, kind);
                    for (int kk : new int[] {1, 5, 40, 700}) {
                        for (TopKPerQueryBlock.Scoring sc : TopKPerQueryBlock.Scoring.values()) {
                            TopKPerQueryBlock p = new TopKPerQueryBlock(kk, new ForcedKeys(2, 3), sc);
                            int[][] got = p.select(ctx, q, k);
                            int[][] want = plain(ctx, q, k, kk, new ForcedKeys(2, 3), sc);
                            for (int t = 0; t < want.length; t++) {
                                assertArrayEquals(want[t], got[t], ctx + " " + sc + " k=" + kk + " kind=" + kind + " tile " + t);
                            }
                        }
                    }
                }
            }
        }
    }

    /** kind 0: Gaussian; 1: small integers (exact ties); 2: Gaussian rounded to 1/64 (near-ties). */
    private static float[] data(SplittableRandom rnd, int n, int kind) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            double g = rnd.nextGaussian();
            a[i] = switch (kind) {
                case 0 -> (float) g;
                case 1 -> (float) rnd.nextInt(-1, 2);
                default -> (float) (Math.rint(g * 64) / 64);
            };
        }
        return a;
    }

    /** The selection as the definition states it, written plainly. */
    private static int[][] plain(PlanContext ctx, float[] q, float[] kr, int k, ForcedKeys forced, TopKPerQueryBlock.Scoring sc) {
        int rows = ctx.geometry().tileRows();
        int d = ctx.shape().headDim();
        int nq = ctx.queryLength();
        int[][] out = new int[ctx.queryTiles()][];
        double scale = 1.0 / Math.sqrt(d);
        for (int t = 0; t < out.length; t++) {
            int r0 = t * rows;
            int r1 = Math.min(nq, r0 + rows);
            long last = Plans.lastVisibleKey(ctx, r1 - 1);
            if (last < 0) {
                out[t] = new int[0];
                continue;
            }
            int n = (int) last + 1;
            float[] score = new float[n];
            if (sc == TopKPerQueryBlock.Scoring.POOLED_QUERY) {
                float[] mean = new float[d];
                for (int r = r0; r < r1; r++) {
                    for (int x = 0; x < d; x++) {
                        mean[x] += q[r * d + x];
                    }
                }
                for (int x = 0; x < d; x++) {
                    mean[x] /= (r1 - r0);
                }
                for (int key = 0; key < n; key++) {
                    score[key] = Vectors.dot(mean, 0, kr, key, d); // the raw score ranks
                }
            } else {
                for (int r = r0; r < r1; r++) {
                    long lr = Plans.lastVisibleKey(ctx, r);
                    if (lr >= 0) {
                        softmax(q, r, kr, d, (int) lr + 1, scale, score);
                    }
                }
            }
            long pLo = (long) r0 + ctx.queryOffset();
            long pHi = (long) r1 - 1 + ctx.queryOffset();
            out[t] = TopSelect.top(score, n, k, key -> !(key < forced.sinks() || (pLo - key >= 0 && pHi - key < forced.window())));
        }
        return out;
    }

    private static void softmax(float[] q, int row, float[] kr, int d, int n, double scale, float[] acc) {
        double[] buf = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int key = 0; key < n; key++) {
            buf[key] = scale * Vectors.dot(q, row, kr, key, d);
            max = Math.max(max, buf[key]);
        }
        double sum = 0;
        for (int key = 0; key < n; key++) {
            buf[key] = Math.exp(buf[key] - max);
            sum += buf[key];
        }
        for (int key = 0; key < n; key++) {
            acc[key] += (float) (buf[key] / sum);
        }
    }
}
