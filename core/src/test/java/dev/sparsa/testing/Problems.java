package dev.sparsa.testing;

import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * Random attention inputs for tests in every module (shipped in sparsa-core's test-jar). Values are
 * drawn from a seeded generator and rounded to the requested dtype, so the oracle and the kernel see
 * the same numbers.
 */
public final class Problems {
    private Problems() {
    }

    /** Q, K and V of one shape. */
    public record Qkv(Tensor q, Tensor k, Tensor v) {
        public AttentionShape shape() {
            return AttentionShape.of(q, k, v);
        }
    }

    /**
     * A random tensor with entries uniform in [-amplitude, amplitude], rounded to {@code dtype}. An e4m3
     * tensor gets a different scale per head, each leaving the amplitude inside the type's range, so
     * that a kernel that ignores or mixes up scales fails.
     */
    public static Tensor random(SplittableRandom rnd, DType dtype, Layout layout, int batch, int heads, int seq, int dim,
                                double amplitude) {
        Tensor t = Tensor.allocate(dtype, layout, batch, heads, seq, dim);
        if (dtype.isScaled()) {
            t = t.withScales(e4m3Scales(rnd, heads, amplitude));
        }
        float[] row = new float[dim];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int s = 0; s < seq; s++) {
                    for (int d = 0; d < dim; d++) {
                        row[d] = (float) ((rnd.nextDouble() * 2 - 1) * amplitude);
                    }
                    t.writeRow(b, h, s, row, 0);
                }
            }
        }
        return t;
    }

    /** One e4m3 scale per head, from amplitude/448 to four times that: {@code amplitude} stays in range. */
    public static float[] e4m3Scales(SplittableRandom rnd, int heads, double amplitude) {
        float[] scales = new float[heads];
        for (int h = 0; h < heads; h++) {
            scales[h] = (float) (amplitude / DType.E4M3_MAX * (1 + rnd.nextDouble() * 3));
        }
        return scales;
    }

    /**
     * Q, K, V for a shape. Q and K have amplitude 2 so that softmax rows are far from uniform (a
     * wrong mask shows up as a large error); V has amplitude 1.
     */
    public static Qkv qkv(long seed, AttentionShape s, DType dtype, Layout layout) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor q = random(rnd, dtype, layout, s.batch(), s.qHeads(), s.queryLength(), s.headDim(), 2.0);
        Tensor k = random(rnd, dtype, layout, s.batch(), s.kvHeads(), s.keyLength(), s.headDim(), 2.0);
        Tensor v = random(rnd, dtype, layout, s.batch(), s.kvHeads(), s.keyLength(), s.valueDim(), 1.0);
        return new Qkv(q, k, v);
    }

    /** Relative error tolerance of the numerics contract for an input dtype ({@link Tolerance#output}). */
    public static double tolerance(DType dtype) {
        return Tolerance.output(dtype);
    }
}
