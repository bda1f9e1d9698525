package dev.sparsa.cli.fuzz;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/** The fuzzers' host tensors: random entries rounded to a dtype, and NaN fills that show a row nobody wrote. */
final class FuzzTensors {
    private FuzzTensors() {
    }

    /** A host tensor with entries uniform in [−amplitude, amplitude], rounded to {@code dtype}. */
    static Tensor random(SplittableRandom r, DType dtype, Layout layout, int batch, int heads, int n, int d,
                         double amplitude) {
        Tensor t = Tensor.allocate(dtype, layout, batch, heads, n, d);
        float[] row = new float[d];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int s = 0; s < n; s++) {
                    for (int x = 0; x < d; x++) {
                        row[x] = (float) ((r.nextDouble() * 2 - 1) * amplitude);
                    }
                    t.writeRow(b, h, s, row, 0);
                }
            }
        }
        return t;
    }

    /** Fills every row of a host tensor with NaN and returns it. */
    static Tensor nan(Tensor t) {
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int s = 0; s < t.seqLen(); s++) {
                    t.fillRow(b, h, s, Float.NaN);
                }
            }
        }
        return t;
    }
}
