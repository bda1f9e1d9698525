package dev.sparsa.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * A JMH secondary result for memory-bound benchmarks: each call adds the GB (10^9 bytes) it moved, so
 * in throughput mode JMH reports this counter's rate, in "ops/s", which is GB/s (summed over the
 * benchmark's threads).
 */
@AuxCounters(AuxCounters.Type.OPERATIONS)
@State(Scope.Thread)
public class GigaBytes {
    /** GB moved so far in this iteration; reported as GB/s. */
    public double gbytes;

    @Setup(Level.Iteration)
    public void clear() {
        gbytes = 0;
    }
}
