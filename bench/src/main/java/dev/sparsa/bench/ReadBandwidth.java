package dev.sparsa.bench;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What two threads read when they only read: each sums its own 256 MiB {@code float[]} (far larger
 * than the caches) front to back with the preferred vector species, into four independent sums.
 * The {@code gbytes} counter is GB/s of bytes read, summed over both threads. A decode step only
 * reads, so this is its ceiling on the machine; {@link CopyBandwidth} counts a copy's bytes read plus
 * bytes written. Run it in the same JMH invocation as {@link DecodeAttention}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ReadBandwidth {
    private static final int FLOATS = 64 << 20;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** Two threads' arrays; each thread reads its own. */
    @State(Scope.Benchmark)
    public static class Arrays {
        final float[][] data = new float[2][];
        final AtomicInteger next = new AtomicInteger();

        @Setup(Level.Trial)
        public void setup() {
            for (int t = 0; t < 2; t++) {
                data[t] = new float[FLOATS];
                java.util.Arrays.fill(data[t], t + 1f);
            }
        }
    }

    /** The calling thread's array index. */
    @State(Scope.Thread)
    public static class Slot {
        int id;

        @Setup(Level.Trial)
        public void setup(Arrays a) {
            id = a.next.getAndIncrement() % 2;
        }
    }

    @Benchmark
    @Threads(2)
    public float read(Arrays a, Slot s, GigaBytes counter) {
        float[] x = a.data[s.id];
        int l = F.length();
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (int i = 0; i + 4 * l <= x.length; i += 4 * l) {
            s0 = s0.add(FloatVector.fromArray(F, x, i));
            s1 = s1.add(FloatVector.fromArray(F, x, i + l));
            s2 = s2.add(FloatVector.fromArray(F, x, i + 2 * l));
            s3 = s3.add(FloatVector.fromArray(F, x, i + 3 * l));
        }
        counter.gbytes += 4.0 * x.length * 1e-9;
        return s0.add(s1).add(s2.add(s3)).lane(0);
    }
}
