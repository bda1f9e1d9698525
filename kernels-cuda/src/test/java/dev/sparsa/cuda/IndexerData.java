package dev.sparsa.cuda;

import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;

/** Host inputs of the lightning indexer for the device-estimate tests: random, or built so that index scores tie. */
final class IndexerData {
    private IndexerData() {
    }

    /** Data kinds: random vectors; keys repeating with period 5 (five distinct scores per query); every dot negative half the time (ReLU zeros: ties at 0). */
    enum Kind { RANDOM, REPEATED_KEYS, RELU_ZEROS }

    /**
     * Queries {@code [batch, heads, nq, dim]} and keys {@code [batch, 1, nk, dim]} of dtype {@code
     * type}, weights {@code [batch, 1, nq, heads]} of dtype {@code weightType} (some negative), edited
     * to the kind.
     */
    static IndexerInputs inputs(long seed, int batch, int heads, int nq, int nk, int dim, DType type, DType weightType,
                                Kind kind) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor q = Problems.random(rnd, DType.F32, Layout.BHSD, batch, heads, nq, dim, 1.0);
        Tensor k = Problems.random(rnd, DType.F32, Layout.BHSD, batch, 1, nk, dim, 1.0);
        Tensor w = Problems.random(rnd, DType.F32, Layout.BHSD, batch, 1, nq, heads, 1.0);
        float[] row = new float[dim];
        switch (kind) {
            case RANDOM -> { }
            case REPEATED_KEYS -> {
                for (int b = 0; b < batch; b++) {
                    for (int r = 5; r < nk; r++) {
                        k.readRow(b, 0, r % 5, row, 0);
                        k.writeRow(b, 0, r, row, 0);
                    }
                }
            }
            case RELU_ZEROS -> {
                // every key's first channel 1, the rest 0; queries' first channel negative in every other row
                // and head: those dots are negative, so their ReLU terms are +0 (and some rows score 0 everywhere)
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < nk; r++) {
                        java.util.Arrays.fill(row, 0f);
                        row[0] = 1f;
                        k.writeRow(b, 0, r, row, 0);
                    }
                    for (int j = 0; j < heads; j++) {
                        for (int r = 0; r < nq; r++) {
                            q.readRow(b, j, r, row, 0);
                            row[0] = (r + j) % 2 == 0 ? -Math.abs(row[0]) - 0.25f : row[0];
                            q.writeRow(b, j, r, row, 0);
                        }
                    }
                }
            }
        }
        return new IndexerInputs(convert(q, type), convert(k, type), convert(w, weightType));
    }

    private static Tensor convert(Tensor t, DType type) {
        return type == DType.F32 ? t : t.to(type, Layout.BHSD);
    }
}
