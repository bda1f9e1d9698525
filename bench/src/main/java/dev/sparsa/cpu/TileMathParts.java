package dev.sparsa.cpu;

import dev.sparsa.bench.GigaFlops;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Where the time of one tile × block step goes: each part of the CPU kernel's arithmetic alone, on
 * one thread, for a 64-row tile against a 64-key block at D = Dv = 128 (the benchmark shape's
 * unit of work), with data resident in L1/L2. {@code block} runs the parts in the kernel's order
 * (scores, softmax, P·V). Compare {@code block}'s time with the full forward's time per visited
 * block to see the kernel's overhead (K/V conversion, Q transposition, scheduling, memory).
 *
 * <p>Lives in package {@code dev.sparsa.cpu} (a split package on the class path) because the tile
 * arithmetic is package-private. Primary result: calls per second; {@code gflops}: GFLOP/s with
 * 2·64·64·128 per matrix product ({@code block} counts both products).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
public class TileMathParts {
    private static final int ROWS = 64;
    private static final int KEYS = 64;
    private static final int DIM = 128;

    @Param({"vector", "scalar"})
    public String flavour;

    private TileMath math;
    private float[] qT;
    private float[] k;
    private float[] v;
    private float[] s;
    private float[] sSaved;
    private float[] o;
    private float[] m;
    private float[] l;
    private float[] alpha;
    private int[] kOff;
    private int[] vOff;
    private short[] bits;
    private float[] wide;

    @Setup
    public void setup() {
        math = flavour.equals("vector") ? TileMathProvider.vector() : TileMathProvider.scalar();
        System.out.println("TileMathParts: " + math.description());
        SplittableRandom rnd = new SplittableRandom(3);
        qT = fill(rnd, DIM * ROWS, 1 / Math.sqrt(DIM));
        k = fill(rnd, KEYS * DIM, 1);
        v = fill(rnd, KEYS * DIM, 1);
        s = new float[KEYS * ROWS];
        o = new float[ROWS * DIM];
        m = new float[ROWS];
        l = new float[ROWS];
        alpha = new float[ROWS];
        java.util.Arrays.fill(alpha, 1f);
        kOff = new int[KEYS];
        vOff = new int[KEYS];
        for (int j = 0; j < KEYS; j++) {
            kOff[j] = j * DIM;
            vOff[j] = j * DIM;
        }
        math.scores(qT, ROWS, ROWS, k, kOff, DIM, KEYS, s, ROWS);
        sSaved = s.clone();
        bits = new short[2 * KEYS * DIM];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = dev.sparsa.tensor.DType.floatToBf16((float) rnd.nextDouble(-1, 1));
        }
        wide = new float[bits.length];
    }

    private static float[] fill(SplittableRandom rnd, int n, double amplitude) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextDouble(-1, 1) * amplitude);
        }
        return a;
    }

    private static double productGflop() {
        return 2.0 * ROWS * KEYS * DIM * 1e-9;
    }

    /** Q·Kᵀ: 64 rows × 64 keys × 128. */
    @Benchmark
    public float[] scores(GigaFlops f) {
        math.scores(qT, ROWS, ROWS, k, kOff, DIM, KEYS, s, ROWS);
        f.gflops += productGflop();
        return s;
    }

    /** One online-softmax step over 64 × 64 scores (restored from a copy each call). */
    @Benchmark
    public float[] softmax() {
        System.arraycopy(sSaved, 0, s, 0, s.length);
        java.util.Arrays.fill(m, 0, ROWS, Float.NEGATIVE_INFINITY);
        math.softmax(s, ROWS, KEYS, ROWS, m, l, alpha);
        return s;
    }

    /** P·V: 64 rows × 128 columns × 64 keys. */
    @Benchmark
    public float[] accumulate(GigaFlops f) {
        math.accumulate(s, ROWS, KEYS, ROWS, v, vOff, DIM, o, DIM, alpha, false, null, null, null);
        f.gflops += productGflop();
        return o;
    }

    /** bf16 → f32 of one K and one V block (2 × 64 × 128 values). */
    @Benchmark
    public float[] widenBf16() {
        math.widenBf16(bits, 0, wide, 0, bits.length);
        return wide;
    }

    /** The three parts in the kernel's order: one tile × block step. */
    @Benchmark
    public float[] block(GigaFlops f) {
        math.scores(qT, ROWS, ROWS, k, kOff, DIM, KEYS, s, ROWS);
        math.softmax(s, ROWS, KEYS, ROWS, m, l, alpha);
        math.accumulate(s, ROWS, KEYS, ROWS, v, vOff, DIM, o, DIM, alpha, false, null, null, null);
        f.gflops += 2 * productGflop();
        return o;
    }
}
