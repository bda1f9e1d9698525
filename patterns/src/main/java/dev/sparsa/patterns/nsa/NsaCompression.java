package dev.sparsa.patterns.nsa;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * NSA's compression of keys or values, as the reference implementation sets it (mean pooling,
 * {@code compression} in github.com/fla-org/native-sparse-attention, {@code
 * native_sparse_attention/ops/naive.py}): the sequence is cut into blocks of {@code blockSize}
 * tokens, zero-padded to a whole block, and each block is replaced by its mean, so a last, shorter
 * block is divided by {@code blockSize} too (that block is never attended under causality: it is
 * not complete before the last token).
 */
public final class NsaCompression {
    private NsaCompression() {
    }

    /**
     * {@code [batch, heads, ceil(seq / blockSize), dim]} f32 block means of {@code t} (a host tensor).
     *
     * @throws IllegalArgumentException if {@code blockSize < 1} or {@code t} is not on the host
     */
    public static Tensor meanPool(Tensor t, int blockSize) {
        if (blockSize < 1) {
            throw new IllegalArgumentException("blockSize: must be >= 1, got " + blockSize);
        }
        if (!t.isHost()) {
            throw new IllegalArgumentException("t: compression reads host tensors, got one on " + t.device());
        }
        int n = t.seqLen();
        int d = t.dim();
        int blocks = (int) ((n + (long) blockSize - 1) / blockSize);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, t.batch(), t.heads(), blocks, d);
        float[] row = new float[d];
        float[] sum = new float[d];
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int c = 0; c < blocks; c++) {
                    java.util.Arrays.fill(sum, 0f);
                    int end = (int) Math.min(n, ((long) c + 1) * blockSize);
                    for (int s = (int) ((long) c * blockSize); s < end; s++) {
                        t.readRow(b, h, s, row, 0);
                        for (int x = 0; x < d; x++) {
                            sum[x] += row[x];
                        }
                    }
                    for (int x = 0; x < d; x++) {
                        sum[x] /= blockSize;
                    }
                    out.writeRow(b, h, c, sum, 0);
                }
            }
        }
        return out;
    }
}
