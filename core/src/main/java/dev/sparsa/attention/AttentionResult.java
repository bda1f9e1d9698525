package dev.sparsa.attention;

import dev.sparsa.tensor.Tensor;

/**
 * The output of an attention call and, when asked for, its log-sum-exp.
 *
 * @param output {@code [batch, qHeads, queryLength, valueDim]}
 * @param lse    {@code [batch, qHeads, queryLength, 1]} f32, natural log; −∞ on rows with no
 *               admitted key; null when not requested
 */
public record AttentionResult(Tensor output, Tensor lse) {
}
