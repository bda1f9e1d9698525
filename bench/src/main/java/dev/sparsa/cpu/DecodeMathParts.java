package dev.sparsa.cpu;

import dev.sparsa.bench.GigaBytes;
import dev.sparsa.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The CPU decode kernel's arithmetic alone, on rows already in cache: one thread, the query vectors of
 * one GQA group (4: 32 query heads over 8 KV heads, one row) against a run of 256 keys at D = 128,
 * K and V rows in one segment, native or a Java array (256 KB in f32, in L2). {@code step} runs the kernel's order
 * (scores, softmax, P·V) with the rows marked as read, so no part reads ahead; {@code readRows} is the
 * read pass alone on the same cached rows; {@code questBounds} is Quest's page bounds on such rows.
 * The secondary result {@code gbytes} is the rate at which K and V bytes are consumed (GB/s): a
 * decode step on two threads must consume at the memory's rate,
 * so this figure tells whether the arithmetic by itself can keep up (its rate per thread against half
 * of the two-thread read rate) or whether the gap lies in overlapping it with the reads.
 *
 * <p>Lives in package {@code dev.sparsa.cpu} (a split package on the class path) because the decode
 * arithmetic's provider is package-private.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class DecodeMathParts {
    private static final int GROUP = 4;
    private static final int KEYS = 256;
    private static final int DIM = 128;

    @Param({"f32", "bf16"})
    public String dtype;

    @Param({"vector", "scalar"})
    public String flavour;

    /** Where the rows live: a native segment (an off-heap cache) or a Java array (a heap cache). */
    @Param({"native", "heap"})
    public String memory;

    private DecodeMath math;
    private DType type;
    private Arena arena;
    private MemorySegment rows;
    private long[] kOff;
    private long[] vOff;
    private float[] q;
    /** The form of the bounds the scorer would take for {@link #q} ({@link DecodeMath#boundsBySign}). */
    private boolean bySign;
    private float[] s;
    private float[] o;
    private float[] m;
    private float[] l;
    private float[] alpha;
    private double stepBytes;

    @Setup(Level.Trial)
    public void setup() {
        math = DecodeMathProvider.forFlavour(flavour.equals("vector") ? KernelFlavour.VECTOR : KernelFlavour.SCALAR);
        type = DType.valueOf(dtype.toUpperCase(java.util.Locale.ROOT));
        int e = type.byteSize();
        arena = Arena.ofConfined();
        rows = memory.equals("heap")
                ? (type == DType.F32 ? MemorySegment.ofArray(new float[2 * KEYS * DIM])
                        : MemorySegment.ofArray(new short[2 * KEYS * DIM]))
                : arena.allocate(2L * KEYS * DIM * e, 64);
        kOff = new long[KEYS];
        vOff = new long[KEYS];
        SplittableRandom rnd = new SplittableRandom(5);
        // K and V rows of each key side by side, as one page of a cache holds them
        for (int j = 0; j < KEYS; j++) {
            kOff[j] = 2L * j * DIM * e;
            vOff[j] = kOff[j] + (long) DIM * e;
        }
        for (long i = 0; i < 2L * KEYS * DIM; i++) {
            float x = (float) rnd.nextDouble(-1, 1);
            if (type == DType.F32) {
                rows.setAtIndex(ValueLayout.JAVA_FLOAT, i, x);
            } else {
                rows.setAtIndex(ValueLayout.JAVA_SHORT, i, DType.floatToBf16(x));
            }
        }
        q = new float[GROUP * DIM];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) (rnd.nextDouble(-1, 1) / Math.sqrt(DIM));
        }
        bySign = DecodeMath.boundsBySign(q, DIM, GROUP, DIM);
        s = new float[GROUP * KEYS];
        o = new float[GROUP * DIM];
        m = new float[GROUP];
        l = new float[GROUP];
        alpha = new float[GROUP];
        stepBytes = 2.0 * KEYS * DIM * e * 1e-9;
    }

    @TearDown(Level.Trial)
    public void close() {
        arena.close();
    }

    /** Q·Kᵀ for the group's 4 query vectors over 256 cached key rows. */
    @Benchmark
    public float[] scores(GigaBytes g) {
        math.scores(q, DIM, GROUP, DIM, rows, kOff, rows, vOff, DIM, type, KEYS, s, KEYS, true);
        g.gbytes += stepBytes / 2;
        return s;
    }

    /** P·V over 256 cached value rows (the probabilities of the last {@code scores}, not renormalised). */
    @Benchmark
    public float[] accumulate(GigaBytes g) {
        java.util.Arrays.fill(alpha, 1f);
        math.accumulate(s, KEYS, GROUP, KEYS, rows, vOff, type, DIM, o, DIM, alpha, true);
        g.gbytes += stepBytes / 2;
        return o;
    }

    /** The whole step in the kernel's order: scores, one online-softmax step, P·V. */
    @Benchmark
    public float[] step(GigaBytes g) {
        java.util.Arrays.fill(m, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(l, 0f);
        math.scores(q, DIM, GROUP, DIM, rows, kOff, rows, vOff, DIM, type, KEYS, s, KEYS, true);
        math.softmax(s, KEYS, GROUP, KEYS, m, l, alpha);
        math.accumulate(s, KEYS, GROUP, KEYS, rows, vOff, type, DIM, o, DIM, alpha, true);
        g.gbytes += stepBytes;
        return o;
    }

    /**
     * Quest's page bounds for the group's 4 query vectors over 256 cached pages (the key rows stand in
     * for the pages' min rows, the value rows for their max rows); {@code gbytes} counts the bound rows.
     */
    @Benchmark
    public float[] questBounds(GigaBytes g) {
        math.questBounds(q, DIM, GROUP, DIM, rows, kOff, vOff, type, KEYS, s, KEYS, bySign);
        g.gbytes += stepBytes;
        return s;
    }

    /** The read pass alone on the same cached rows. */
    @Benchmark
    public MemorySegment readRows(GigaBytes g) {
        math.readRows(rows, kOff, DIM, rows, vOff, DIM, type, KEYS);
        g.gbytes += stepBytes;
        return rows;
    }
}
