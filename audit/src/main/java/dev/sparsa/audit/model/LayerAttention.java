package dev.sparsa.audit.model;

import dev.sparsa.tensor.Tensor;

/**
 * The attention an encoder layer runs: the drop-in point. Given the layer's projected queries, keys
 * and values as {@code [1, heads, seq, headDim]} f32 tensors (BSHD views of the projection outputs),
 * returns the attention output of the same shape (scale {@code 1/sqrt(headDim)}, no mask: one
 * unpadded sequence).
 */
@FunctionalInterface
public interface LayerAttention {
    /** Attention of layer {@code layer}. */
    Tensor attend(int layer, Tensor q, Tensor k, Tensor v);
}
