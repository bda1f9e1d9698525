package dev.sparsa.bench;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The generated problem of the JMH benchmarks: Q, K, V uniform in [-1, 1] (rounded to the dtype),
 * BHSD, heap-backed (e4m3 with scale 1/448), plus an output tensor of the input's default output type. Allocated once in {@code @Setup}.
 */
final class BenchProblem {
    final AttentionShape shape;
    final Tensor q;
    final Tensor k;
    final Tensor v;
    final Tensor out;

    BenchProblem(AttentionShape shape, DType dtype, long seed) {
        this.shape = shape;
        SplittableRandom rnd = new SplittableRandom(seed);
        this.q = random(rnd, dtype, shape.batch(), shape.qHeads(), shape.queryLength(), shape.headDim());
        this.k = random(rnd, dtype, shape.batch(), shape.kvHeads(), shape.keyLength(), shape.headDim());
        this.v = random(rnd, dtype, shape.batch(), shape.kvHeads(), shape.keyLength(), shape.valueDim());
        this.out = Tensor.allocate(dtype.defaultOutput(), Layout.BHSD, shape.batch(), shape.qHeads(), shape.queryLength(),
                shape.valueDim());
    }

    private static Tensor random(SplittableRandom rnd, DType dtype, int b, int h, int n, int d) {
        Tensor t = Tensor.allocate(dtype, Layout.BHSD, b, h, n, d);
        if (dtype.isScaled()) {
            t = t.withScales(1f / DType.E4M3_MAX); // [-1, 1] spread over the whole e4m3 range
        }
        float[] row = new float[d];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < h; j++) {
                for (int s = 0; s < n; s++) {
                    for (int x = 0; x < d; x++) {
                        row[x] = (float) (rnd.nextDouble() * 2 - 1);
                    }
                    t.writeRow(i, j, s, row, 0);
                }
            }
        }
        return t;
    }
}
