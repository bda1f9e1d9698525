package dev.sparsa.audit;

/**
 * One candidate pattern on one head.
 *
 * @param spec the pattern spec
 * @param family its family
 * @param density admitted pairs / admissible pairs
 * @param pairsVisited pairs the kernel computes (its cost)
 * @param recall mean over query rows of {@code exp(lse_pattern − lse_dense)}: the share of each row's
 *     softmax mass the pattern keeps (above 1 only for patterns with sampling weights, LSH)
 * @param minRecall the smallest row recall
 * @param relErrVsDense relative Frobenius error of the head's output against dense attention
 * @param planMillis time to plan the head (estimators included)
 * @param kernelMillis median time of the kernel on the head
 * @param denseMillis median time of the dense kernel on the same head, in the same run
 */
public record CandidateResult(String spec, String family, double density, long pairsVisited, double recall,
                              double minRecall, double relErrVsDense, double planMillis, double kernelMillis,
                              double denseMillis) {

    /** Dense kernel time over this kernel's time. */
    public double kernelSpeedup() {
        return denseMillis / kernelMillis;
    }

    /** Dense kernel time over planning plus kernel time: the speed-up of a call that plans every time. */
    public double endToEndSpeedup() {
        return denseMillis / (planMillis + kernelMillis);
    }
}
