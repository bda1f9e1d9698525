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
 * @param dispatch what ran: one decision for a call, one per sequence for a ragged batch; empty for
 *                 decode calls, which run no plan
 */
public record AttentionResult(Tensor output, Tensor lse, List<DispatchDecision> dispatch) {

    public AttentionResult {
        if (output == null || dispatch == null) {
            throw new IllegalArgumentException("output and dispatch: must not be null");
        }
        dispatch = List.copyOf(dispatch);
    }

    /** The result of a call that runs no plan (decode): no dispatch decision. */
    public AttentionResult(Tensor output, Tensor lse) {
        this(output, lse, List.of());
    }

    /**
     * The decision of a call that is not a ragged batch (for a ragged batch: sequence 0's).
     *
     * @throws IllegalStateException for a decode result, which ran no plan
     */
    public DispatchDecision decision() {
        if (dispatch.isEmpty()) {
            throw new IllegalStateException("a decode call runs no plan and has no dispatch decision");
        }
        return dispatch.get(0);
    }
}
