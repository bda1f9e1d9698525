package dev.sparsa.patterns.dsa;

import dev.sparsa.tensor.Tensor;

/**
 * The lightning indexer's own inputs, shaped independently of the attention's (few heads, a small
 * dimension, one key head shared by every query head):
 *
 * @param queries {@code [batch, indexerHeads, queryLength, indexerDim]}: the indexer's queries
 * @param keys    {@code [batch, 1, keyLength, indexerDim]}: its keys
 * @param weights {@code [batch, 1, queryLength, indexerHeads]}: each query's weight per indexer
 *                head, scales included (DeepSeek-V3.2 folds {@code indexerHeads^-1/2}, the softmax
 *                scale and the quantisation scale into it)
 * <p>Throws {@link IllegalArgumentException} if a tensor is null or the shapes disagree with each other
 */
public record IndexerInputs(Tensor queries, Tensor keys, Tensor weights) {
    public IndexerInputs {
        if (queries == null || keys == null || weights == null) {
            throw new IllegalArgumentException("queries, keys, weights: must not be null");
        }
        if (keys.heads() != 1 || keys.batch() != queries.batch() || keys.dim() != queries.dim()) {
            throw new IllegalArgumentException("keys: shape " + java.util.Arrays.toString(keys.shape()) + " must be ["
                    + queries.batch() + ", 1, keyLength, " + queries.dim() + "] to match queries "
                    + java.util.Arrays.toString(queries.shape()));
        }
        if (weights.batch() != queries.batch() || weights.heads() != 1 || weights.seqLen() != queries.seqLen()
                || weights.dim() != queries.heads()) {
            throw new IllegalArgumentException("weights: shape " + java.util.Arrays.toString(weights.shape()) + " must be ["
                    + queries.batch() + ", 1, " + queries.seqLen() + ", " + queries.heads() + "]");
        }
    }

    public int heads() {
        return queries.heads();
    }

    public int dim() {
        return queries.dim();
    }
}
