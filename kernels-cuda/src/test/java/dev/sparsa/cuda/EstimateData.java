package dev.sparsa.cuda;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;

/**
 * Host-tensor edits that the device-estimate tests build their tie and edge cases from, and the flat
 * rows their CPU twins read.
 */
final class EstimateData {
    private EstimateData() {
    }

    /** Data kinds of the top-k estimate tests: random rows, or rows built so that scores tie. */
    enum Data { RANDOM, CONSTANT_KEYS, REPEATED_KEYS, ZERO_QUERIES }

    /**
     * Random Q, K, V ({@link Problems#qkv}, BHSD) edited to the kind: constant keys (every score of a
     * query equal), keys repeating with period 7 (seven distinct scores per query), or signed zero
     * queries (every score a signed zero).
     */
    static Problems.Qkv qkv(long seed, AttentionShape s, DType dtype, Data kind) {
        Problems.Qkv p = Problems.qkv(seed, s, dtype, Layout.BHSD);
        switch (kind) {
            case RANDOM -> { }
            case CONSTANT_KEYS -> fill(p.k(), 0.75f);
            case REPEATED_KEYS -> {
                // key r repeats key r mod 7
                float[] row = new float[s.headDim()];
                for (int b = 0; b < s.batch(); b++) {
                    for (int h = 0; h < s.kvHeads(); h++) {
                        for (int r = 7; r < s.keyLength(); r++) {
                            p.k().readRow(b, h, r % 7, row, 0);
                            p.k().writeRow(b, h, r, row, 0);
                        }
                    }
                }
            }
            case ZERO_QUERIES -> signedZeros(p.q());
        }
        return p;
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
