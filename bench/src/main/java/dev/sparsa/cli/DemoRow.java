package dev.sparsa.cli;

/**
 * One row of the demo: a pattern run on one backend in one dtype (its JSON: docs/cli.md).
 *
 * @param dispatch        which plan ran: {@code sparse} (the pattern's), {@code block-expanded},
 *                        {@code dense}; for a ragged batch whose sequences ran different plans, the
 *                        count of each ({@code "dense:1 sparse:2"})
 * @param density         admitted pairs / admissible pairs of the plan that ran (a fraction)
 * @param planMillis      planning and dispatch time of the row (once; for a ragged batch, every
 *                        sequence's)
 * @param millis          median wall time of one forward call on the prepared plan
 * @param gflops          {@code 2·pairsVisited·(headDim + valueDim)} / time, in GFLOP/s
 * @param speedup         dense time / this time, same backend and dtype (kernels only)
 * @param speedupEndToEnd dense (plan + kernel) / this row's (plan + kernel): what a call that plans
 *                        every time gains
 * @param relErrVsOracle  the kernel against the fp64 oracle of the plan that ran (its exactness)
 * @param relErrVsDense   the kernel against the fp64 dense oracle (what the pattern loses)
 * @param recall          mean over sampled rows of {@code exp(lseSparse − lseDense)}
 */
record DemoRow(String backend, String family, String pattern, String dtype, String dispatch, double density,
               long pairsAdmitted, long pairsVisited, double planMillis, double millis, double gflops, double speedup,
               double speedupEndToEnd, double relErrVsOracle, double relErrVsDense, double recall,
               boolean withinTolerance) {

    /** This row with its speed-ups against a dense row's kernel and end-to-end times. */
    DemoRow against(double denseMillis, double densePlanMillis) {
        return new DemoRow(backend, family, pattern, dtype, dispatch, density, pairsAdmitted, pairsVisited, planMillis,
                millis, gflops, denseMillis / millis, (densePlanMillis + denseMillis) / (planMillis + millis),
                relErrVsOracle, relErrVsDense, recall, withinTolerance);
    }
}
