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
        if (dtype.isScaled()) {
            t = t.withScales(scales(r, dtype, heads, amplitude));
        }
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

    /**
     * For e4m3, one random scale per head under which {@code amplitude} stays in range (from
     * amplitude/448 to four times that); null for the other types, which draw nothing.
     */
    static float[] scales(SplittableRandom r, DType dtype, int heads, double amplitude) {
        if (!dtype.isScaled()) {
            return null;
        }
        float[] s = new float[heads];
        for (int h = 0; h < heads; h++) {
            s[h] = (float) (amplitude / DType.E4M3_MAX * (1 + 3 * r.nextDouble()));
        }
        return s;
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
