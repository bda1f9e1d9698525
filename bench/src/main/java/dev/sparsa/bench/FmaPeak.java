package dev.sparsa.bench;

import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The fused multiply-adds one thread issues per second with the preferred vector species when nothing
 * else limits it: twelve independent chains of {@code c = c·b + a} on registers, {@value #ROUNDS} rounds
 * per call. The secondary result {@code gbytes} counts here 10^9 vector FMAs (not bytes), so it reads
 * as G vector FMA/s; a decode step at D = 128 and 4 query vectors per KV head needs 64 vector FMAs (of
 * 16 lanes) per key for Q·Kᵀ and P·V, which with this figure bounds the arithmetic's key rate per
 * thread.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 4, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@State(Scope.Thread)
public class FmaPeak {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int ROUNDS = 1 << 20;
    private final float[] seed = new float[F.length()];

    /** Twelve chains of {@value #ROUNDS} FMAs each. */
    @Benchmark
    public float fma(GigaBytes counter) {
        java.util.Arrays.fill(seed, 0.5f);
        FloatVector a = FloatVector.fromArray(F, seed, 0);
        FloatVector b = a.mul(0.999f);
        FloatVector c0 = a;
        FloatVector c1 = a;
        FloatVector c2 = a;
        FloatVector c3 = a;
        FloatVector c4 = a;
        FloatVector c5 = a;
        FloatVector c6 = a;
        FloatVector c7 = a;
        FloatVector c8 = a;
        FloatVector c9 = a;
        FloatVector c10 = a;
        FloatVector c11 = a;
        for (int i = 0; i < ROUNDS; i++) {
            c0 = c0.fma(b, a);
            c1 = c1.fma(b, a);
            c2 = c2.fma(b, a);
            c3 = c3.fma(b, a);
            c4 = c4.fma(b, a);
            c5 = c5.fma(b, a);
            c6 = c6.fma(b, a);
            c7 = c7.fma(b, a);
            c8 = c8.fma(b, a);
            c9 = c9.fma(b, a);
            c10 = c10.fma(b, a);
            c11 = c11.fma(b, a);
        }
        counter.gbytes += 12.0 * ROUNDS * 1e-9;
        return c0.add(c1).add(c2.add(c3)).add(c4.add(c5).add(c6.add(c7))).add(c8.add(c9).add(c10.add(c11))).lane(0);
    }
}
