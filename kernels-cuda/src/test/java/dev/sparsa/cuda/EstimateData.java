package dev.sparsa.cuda;

import dev.sparsa.tensor.Tensor;

/**
 * Host-tensor edits that the device-estimate tests build their tie and edge cases from, and the flat
 * rows their CPU twins read.
 */
final class EstimateData {
    private EstimateData() {
    }

    /** The rows of (batch, head) of a host tensor, flat {@code [seq · dim]}. */
    static float[] rows(Tensor t, int b, int h) {
        float[] r = new float[t.seqLen() * t.dim()];
        for (int i = 0; i < t.seqLen(); i++) {
            t.readRow(b, h, i, r, i * t.dim());
        }
        return r;
    }

    /** Sets every element of {@code t} to {@code value}. */
    static void fill(Tensor t, float value) {
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int r = 0; r < t.seqLen(); r++) {
                    t.fillRow(b, h, r, value);
                }
            }
        }
    }

    /** Sets even rows of {@code t} to +0 and odd rows to −0: every score is a signed zero. */
    static void signedZeros(Tensor t) {
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int r = 0; r < t.seqLen(); r++) {
                    t.fillRow(b, h, r, (r & 1) == 0 ? 0f : -0f);
                }
            }
        }
    }
}
