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
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * This machine's FMA ceiling through the Vector API at the preferred width: 12 independent FMA
 * chains per thread (more than latency × pipes on current x86 cores), no memory traffic. The {@code
 * gflops} counter is GFLOP/s (2 flops per lane per FMA), summed over the benchmark threads; {@code
 * twoThreads} is the ceiling the 2-thread attention benchmarks are compared with.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class PeakFma {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** FMAs per accumulator per call. */
    private static final int STEPS = 4096;
    private static final int CHAINS = 12;

    private float x;
    private float y;
    private float[] seed;

    @Setup
    public void setup() {
        x = 0.999999f;
        y = 1e-6f;
        seed = new float[F.length() * CHAINS];
        for (int i = 0; i < seed.length; i++) {
            seed[i] = 1f + i * 1e-3f;
        }
        System.out.println("PeakFma: " + F.vectorBitSize() + "-bit vectors (" + F.length() + " f32 lanes), "
                + CHAINS + " chains x " + STEPS + " FMAs per call");
    }

    private float chains() {
        FloatVector vx = FloatVector.broadcast(F, x);
        FloatVector vy = FloatVector.broadcast(F, y);
        int l = F.length();
        FloatVector a0 = FloatVector.fromArray(F, seed, 0);
        FloatVector a1 = FloatVector.fromArray(F, seed, l);
        FloatVector a2 = FloatVector.fromArray(F, seed, 2 * l);
        FloatVector a3 = FloatVector.fromArray(F, seed, 3 * l);
        FloatVector a4 = FloatVector.fromArray(F, seed, 4 * l);
        FloatVector a5 = FloatVector.fromArray(F, seed, 5 * l);
        FloatVector a6 = FloatVector.fromArray(F, seed, 6 * l);
        FloatVector a7 = FloatVector.fromArray(F, seed, 7 * l);
        FloatVector a8 = FloatVector.fromArray(F, seed, 8 * l);
        FloatVector a9 = FloatVector.fromArray(F, seed, 9 * l);
        FloatVector a10 = FloatVector.fromArray(F, seed, 10 * l);
        FloatVector a11 = FloatVector.fromArray(F, seed, 11 * l);
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.fma(vx, vy);
            a1 = a1.fma(vx, vy);
            a2 = a2.fma(vx, vy);
            a3 = a3.fma(vx, vy);
            a4 = a4.fma(vx, vy);
            a5 = a5.fma(vx, vy);
            a6 = a6.fma(vx, vy);
            a7 = a7.fma(vx, vy);
            a8 = a8.fma(vx, vy);
            a9 = a9.fma(vx, vy);
            a10 = a10.fma(vx, vy);
            a11 = a11.fma(vx, vy);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }

    private static double flopsPerCall() {
        return 2.0 * F.length() * CHAINS * STEPS;
    }

    /** One thread: the per-core ceiling. */
    @Benchmark
    @Threads(1)
    public float oneThread(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        return chains();
    }

    /** Two threads (this machine's cores): the ceiling of the 2-thread attention benchmarks. */
    @Benchmark
    @Threads(2)
    public float twoThreads(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        return chains();
    }
}
