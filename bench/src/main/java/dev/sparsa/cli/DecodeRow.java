package dev.sparsa.cli;

/**
 * One row of {@code sparsa decode}: a decode pattern on one backend, cache layout and dtype.
 *
 * @param budget         tokens a (sequence, KV head) may attend to: the cache length for dense
 * @param millis         median wall time of one step: selection (data-dependent patterns) plus decode
 * @param bytesTouched   bytes one step reads: K and V rows visited, the selection's reads (Quest's
 *                       page bounds, top-k's keys), Q and the output
 * @param gbPerSec       {@code bytesTouched / millis}, in 10^9 bytes per second
 * @param speedup        dense time on the same backend, layout and dtype / this time
 * @param relErrVsOracle the output against the fp64 oracle of the same selection
 * @param recall         mean over query rows of {@code exp(lseSelection − lseDense)} (fp64)
 * @param selectMillis   median wall time of the selection alone (0 for static patterns)
 * @param allocatedBytesPerStep median bytes the JVM allocated on its heap during one timed step (every
 *                       thread); −1 where the JVM does not count them
 */
record DecodeRow(String backend, String pattern, String kvLayout, String dtype, int batch, int kvLength, long budget,
                 double millis, long bytesTouched, double gbPerSec, double speedup, double relErrVsOracle, double recall,
                 double selectMillis, boolean withinTolerance, long allocatedBytesPerStep) {

    DecodeRow withSpeedup(double s) {
        return new DecodeRow(backend, pattern, kvLayout, dtype, batch, kvLength, budget, millis, bytesTouched, gbPerSec, s,
                relErrVsOracle, recall, selectMillis, withinTolerance, allocatedBytesPerStep);
    }
}
