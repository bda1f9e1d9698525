package dev.sparsa.patterns.render;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * Q, K and V whose attention looks like a long-context model's: a few sink keys every query likes,
 * a local band and periodic slashes (from rotary-like positional features: {@code q_i·k_j} gets
 * {@code Σ_f a_f·cos(ω_f·(i − j))}), a few vertical key columns every query likes, and one planted
 * needle (one query row strongly matching one key far in its past), over Gaussian noise. Seeded and
 * reproducible; f32, BHSD. Head dims below 16 get only noise and the positional features.
 *
 * <p>Channel layout of Q and K: 0 sinks, 1 vertical columns, 2 needle, 3..10 four positional
 * frequency pairs (periods 8, 64, 257 and 1024 positions; the 64-period pair makes slashes every 64
 * tokens), the rest noise.
 */
public final class StructuredProblem {
    private StructuredProblem() {
    }

    /** Q, K, V for {@code shape} (keys numbered from 0, queries at positions {@code keyLength − queryLength + i}). */
    public static Tensor[] generate(AttentionShape shape, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int d = shape.headDim();
        int nq = shape.queryLength();
        int nk = shape.keyLength();
        int offset = nk - nq;
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, shape.batch(), shape.qHeads(), nq, d);
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, shape.batch(), shape.kvHeads(), nk, d);
        Tensor v = Tensor.allocate(DType.F32, Layout.BHSD, shape.batch(), shape.kvHeads(), nk, shape.valueDim());
        double amp = Math.sqrt(d); // keeps scaled scores O(1..10) under 1/sqrt(d)
        double[] periods = {8, 64, 257, 1024};
        double[] weights = {2.5, 1.5, 1.0, 1.0};
        int[] verticals = {nk / 7, nk / 3, (2 * nk) / 3};
        int needleKey = nk / 5;
        int needleRow = nq - 1 - nq / 9;
        float[] row = new float[Math.max(d, shape.valueDim())];
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.kvHeads(); h++) {
                for (int j = 0; j < nk; j++) {
                    for (int x = 0; x < d; x++) {
                        row[x] = (float) (rnd.nextGaussian() * 0.3);
                    }
                    if (d >= 16) {
                        row[0] = j < 4 ? 1f : 0f;
                        row[1] = contains(verticals, j) ? 1f : 0f;
                        row[2] = j == needleKey ? 1f : 0f;
                    }
                    positional(row, j, d, periods, 1.0);
                    k.writeRow(b, h, j, row, 0);
                    for (int x = 0; x < shape.valueDim(); x++) {
                        row[x] = (float) rnd.nextGaussian();
                    }
                    v.writeRow(b, h, j, row, 0);
                }
            }
            for (int h = 0; h < shape.qHeads(); h++) {
                for (int i = 0; i < nq; i++) {
                    for (int x = 0; x < d; x++) {
                        row[x] = (float) (rnd.nextGaussian() * 0.3);
                    }
                    if (d >= 16) {
                        row[0] = (float) (amp * 3.0);
                        row[1] = (float) (amp * 2.0);
                        row[2] = i == needleRow ? (float) (amp * 8.0) : 0f;
                    }
                    positional(row, i + offset, d, periods, 1.0);
                    for (int f = 0; f < periods.length && 4 + 2 * f < d; f++) {
                        row[3 + 2 * f] *= (float) (amp * weights[f]);
                        row[4 + 2 * f] *= (float) (amp * weights[f]);
                    }
                    q.writeRow(b, h, i, row, 0);
                }
            }
        }
        return new Tensor[] {q, k, v};
    }

    private static void positional(float[] row, long pos, int d, double[] periods, double scale) {
        for (int f = 0; f < periods.length && 4 + 2 * f < d; f++) {
            double a = 2 * Math.PI * pos / periods[f];
            row[3 + 2 * f] = (float) (scale * Math.cos(a));
            row[4 + 2 * f] = (float) (scale * Math.sin(a));
        }
    }

    private static boolean contains(int[] a, int x) {
        for (int v : a) {
            if (v == x) {
                return true;
            }
        }
        return false;
    }
}
