package dev.sparsa.cli;

/**
 * One row of the demo: a pattern run on one backend in one dtype (its JSON: docs/cli.md).
 *
 * @param density        admitted pairs / admissible pairs (a fraction)
 * @param millis         median wall time of one forward call
 * @param gflops         {@code 2·pairsVisited·(headDim + valueDim)} / time, in GFLOP/s
 * @param speedup        dense time / this time, same backend and dtype
 * @param relErrVsOracle the kernel against the fp64 oracle of the same plan (its exactness)
 * @param relErrVsDense  the kernel against the fp64 dense oracle (what the pattern loses)
 * @param recall         mean over sampled rows of {@code exp(lseSparse − lseDense)}
 */
record DemoRow(String backend, String family, String pattern, String dtype, double density, long pairsAdmitted,
               long pairsVisited, double planMillis, double millis, double gflops, double speedup,
               double relErrVsOracle, double relErrVsDense, double recall, boolean withinTolerance) {
}
