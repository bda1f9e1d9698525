package dev.sparsa.audit;

import java.util.List;

/**
 * Every candidate on one head, the one chosen, and whether the head is a retrieval head.
 *
 * @param layer the layer (0 for tensors given as files)
 * @param head the query head
 * @param candidates the results, in the candidate list's order
 * @param chosen index into {@code candidates} of the cheapest one meeting the recall target
 * @param probe the streaming probe's result ({@link CandidateSets#streamingProbe})
 * @param retrieval true when the probe's recall is below the target
 */
public record HeadResult(int layer, int head, List<CandidateResult> candidates, int chosen, CandidateResult probe,
                         boolean retrieval) {
    public HeadResult {
        candidates = List.copyOf(candidates);
    }

    /** The chosen candidate. */
    public CandidateResult choice() {
        return candidates.get(chosen);
    }
}
