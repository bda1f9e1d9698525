package dev.sparsa.attention;

import java.util.List;
import dev.sparsa.tensor.Tensor;

/**
 * The output of an attention call, its log-sum-exp when asked for, and what ran.
 *
 * @param output   {@code [batch, qHeads, queryLength, valueDim]} (for a ragged batch: Q's shape
 *                 with {@code valueDim})
 * @param lse      {@code [batch, qHeads, queryLength, 1]} f32, natural log; −∞ on rows with no
 *                 admitted key; null when not requested
 * @param dispatch what ran: one decision for a call, one per sequence for a ragged batch
 */
public record AttentionResult(Tensor output, Tensor lse, List<DispatchDecision> dispatch) {

    public AttentionResult {
        if (output == null || dispatch == null || dispatch.isEmpty()) {
            throw new IllegalArgumentException("output and dispatch: must not be null or empty");
        }
        dispatch = List.copyOf(dispatch);
    }

    /** The decision of a call that is not a ragged batch (for a ragged batch: sequence 0's). */
    public DispatchDecision decision() {
        return dispatch.get(0);
    }
}
