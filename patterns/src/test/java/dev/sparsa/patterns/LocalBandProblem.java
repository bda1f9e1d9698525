package dev.sparsa.patterns;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;

/**
 * Test inputs whose attention is concentrated, so that selections by mass have something to find:
 * two rotary channel pairs (periods 40 and 300 positions) make {@code q·k} largest near the diagonal,
 * one channel makes the first keys sinks, the other channels carry small noise.
 */
final class LocalBandProblem {
    private LocalBandProblem() {
    }

    static Problems.Qkv generate(AttentionShape s, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int d = s.headDim();
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), d);
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.kvHeads(), s.keyLength(), d);
        int offset = s.keyLength() - s.queryLength();
        fill(q, rnd, offset, true);
        fill(k, rnd, 0, false);
        Tensor v = Problems.random(rnd, DType.F32, Layout.BHSD, s.batch(), s.kvHeads(), s.keyLength(), s.valueDim(), 1.0);
        return new Problems.Qkv(q, k, v);
    }

    private static void fill(Tensor t, SplittableRandom rnd, int offset, boolean query) {
        int d = t.dim();
        double amp = Math.sqrt(2.0 * Math.sqrt(d)); // each rotary pair adds about 2 score units at δ = 0
        float[] row = new float[d];
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int s = 0; s < t.seqLen(); s++) {
                    int pos = s + offset;
                    for (int x = 0; x < d; x++) {
                        row[x] = (float) (rnd.nextGaussian() * 0.3);
                    }
                    row[0] = (float) (amp * Math.cos(pos * 2 * Math.PI / 40));
                    row[1] = (float) (amp * Math.sin(pos * 2 * Math.PI / 40));
                    row[2] = (float) (amp * Math.cos(pos * 2 * Math.PI / 300));
                    row[3] = (float) (amp * Math.sin(pos * 2 * Math.PI / 300));
                    row[4] = (float) (query ? amp : (pos < 4 ? amp : 0));
                    t.writeRow(b, h, s, row, 0);
                }
            }
        }
    }
}
