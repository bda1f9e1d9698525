package dev.sparsa.bench;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The memory bandwidth decode is compared with: two threads each copying 256 MiB with {@code
 * MemorySegment.copy} ({@link MemoryCopy}). The {@code gbytes} counter is GB/s of bytes read plus
 * bytes written, summed over both threads (the same figure {@code sparsa decode} reports as {@code
 * machine.copyGBps}). Run it in the same JMH invocation as {@link DecodeAttention}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class CopyBandwidth {
    private static final long BYTES = 256L << 20;

    /** Two threads' buffers; each thread copies its own. */
    @State(Scope.Benchmark)
    public static class Buffers {
        MemoryCopy copy;
        final AtomicInteger next = new AtomicInteger();

        @Setup(Level.Trial)
        public void setup() {
            copy = new MemoryCopy(2, BYTES);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            copy.close();
        }
    }

    /** The calling thread's buffer index. */
    @State(Scope.Thread)
    public static class Slot {
        int id;

        @Setup(Level.Trial)
        public void setup(Buffers b) {
            id = b.next.getAndIncrement() % 2;
        }
    }

    @Benchmark
    @Threads(2)
    public void copy(Buffers b, Slot s, GigaBytes counter) {
        b.copy.copyOnce(s.id);
        counter.gbytes += b.copy.bytesMovedPerCopy() * 1e-9;
    }
}
