package dev.sparsa.spec;

import dev.sparsa.tensor.Tensor;

/**
 * The sizes of one attention call: Q is {@code [batch, qHeads, queryLength, headDim]}, K is
 * {@code [batch, kvHeads, keyLength, headDim]}, V is {@code [batch, kvHeads, keyLength, valueDim]},
 * the output is {@code [batch, qHeads, queryLength, valueDim]}. Query head {@code h} reads key/value
 * head {@code h / (qHeads / kvHeads)} (GQA; MQA when kvHeads is 1).
 *
 * <p>Throws {@link IllegalArgumentException} if a size is out of range or qHeads is not a multiple of kvHeads
 */
public record AttentionShape(int batch, int qHeads, int kvHeads, int queryLength, int keyLength, int headDim,
                             int valueDim) {

    public AttentionShape {
        if (batch < 1) {
            throw new IllegalArgumentException("batch: must be >= 1, got " + batch);
        }
        if (qHeads < 1 || kvHeads < 1) {
            throw new IllegalArgumentException("heads: need qHeads >= 1 and kvHeads >= 1, got " + qHeads + " and " + kvHeads);
        }
        if (qHeads % kvHeads != 0) {
            throw new IllegalArgumentException("heads: qHeads (" + qHeads + ") must be a multiple of kvHeads (" + kvHeads + ")");
        }
        if (queryLength < 0 || keyLength < 0) {
            throw new IllegalArgumentException("length: need queryLength >= 0 and keyLength >= 0, got " + queryLength
                    + " and " + keyLength);
        }
        if (headDim < 1 || valueDim < 1) {
            throw new IllegalArgumentException("dim: need headDim >= 1 and valueDim >= 1, got " + headDim + " and " + valueDim);
        }
    }

    /** Same head count and dims for Q, K and V (plain multi-head attention). */
    public static AttentionShape of(int batch, int heads, int queryLength, int keyLength, int headDim) {
        return new AttentionShape(batch, heads, heads, queryLength, keyLength, headDim, headDim);
    }

    /**
     * Reads the shape from Q, K and V and checks they agree.
     *
     * @throws IllegalArgumentException naming the tensor whose axis disagrees
     */
    public static AttentionShape of(Tensor q, Tensor k, Tensor v) {
        if (q == null || k == null || v == null) {
            throw new IllegalArgumentException("q, k, v: must not be null (got q=" + q + ", k=" + k + ", v=" + v + ")");
        }
        if (k.batch() != q.batch() || v.batch() != q.batch()) {
            throw new IllegalArgumentException("batch: q has " + q.batch() + ", k has " + k.batch() + ", v has " + v.batch());
        }
        if (v.heads() != k.heads()) {
            throw new IllegalArgumentException("heads: k has " + k.heads() + " heads but v has " + v.heads());
        }
        if (v.seqLen() != k.seqLen()) {
            throw new IllegalArgumentException("keyLength: k has " + k.seqLen() + " positions but v has " + v.seqLen());
        }
        if (k.dim() != q.dim()) {
            throw new IllegalArgumentException("headDim: q has " + q.dim() + " but k has " + k.dim());
        }
        return new AttentionShape(q.batch(), q.heads(), k.heads(), q.seqLen(), k.seqLen(), q.dim(), v.dim());
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return qHeads / kvHeads;
    }

    /** The key/value head query head {@code h} reads. */
    public int kvHeadOf(int qHead) {
        return qHead / groupSize();
    }

    /** Number of (batch, query head) slices. */
    public int slices() {
        return batch * qHeads;
    }
}
