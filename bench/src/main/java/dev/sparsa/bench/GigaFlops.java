package dev.sparsa.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * A JMH secondary result: each benchmark call adds the GFLOP it performed, so in throughput mode JMH
 * reports this counter's rate, in "ops/s", which is GFLOP/s. For attention the flops are {@code
 * 2·pairsVisited·(headDim + valueDim)} ({@code 4·pairsVisited·D} when the dims are equal).
 */
@AuxCounters(AuxCounters.Type.OPERATIONS)
@State(Scope.Thread)
public class GigaFlops {
    /** GFLOP done so far in this iteration; reported as GFLOP/s. */
    public double gflops;

    @Setup(Level.Iteration)
    public void clear() {
        gflops = 0;
    }
}
