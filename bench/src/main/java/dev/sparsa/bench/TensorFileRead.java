package dev.sparsa.bench;

import dev.sparsa.io.NdArray;
import dev.sparsa.io.Npy;
import dev.sparsa.io.Safetensors;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
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
 * Reading tensor files from the page cache: open and map a {@code .npy} or {@code .safetensors} file
 * of {@code mb} MiB of f32, view it as a {@code [1, 8, rows, 128]} tensor, and read every row into
 * an f32 array (what a kernel's loads or a conversion would touch), summing it so nothing is
 * skipped. Time per call; throughput = mb / time. The files are written once in {@code @Setup} to
 * the temporary folder and read once there, so the page cache holds them.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class TensorFileRead {
    @Param({"512"})
    public int mb;

    private Path npy;
    private Path safetensors;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        int rows = mb * (1 << 20) / 4 / 8 / 128;
        float[] data = new float[8 * rows * 128];
        for (int i = 0; i < data.length; i++) {
            data[i] = (i % 1000) * 1e-3f;
        }
        NdArray a = NdArray.ofFloats(data, 1, 8, rows, 128);
        npy = Files.createTempFile("sparsa-read-bench", ".npy");
        safetensors = Files.createTempFile("sparsa-read-bench", ".safetensors");
        Npy.write(npy, a);
        Safetensors.write(safetensors, Map.of("q", a), Map.of());
        readNpy();
        readSafetensors();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        Files.deleteIfExists(npy);
        Files.deleteIfExists(safetensors);
    }

    @Benchmark
    public double readNpy() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            return sum(Npy.read(npy, arena).asTensor(Layout.BHSD));
        }
    }

    @Benchmark
    public double readSafetensors() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            return sum(Safetensors.read(safetensors, arena).tensor("q", Layout.BHSD));
        }
    }

    private static double sum(Tensor t) {
        float[] row = new float[t.dim()];
        double s = 0;
        for (int h = 0; h < t.heads(); h++) {
            for (int i = 0; i < t.seqLen(); i++) {
                t.readRow(0, h, i, row, 0);
                for (float x : row) {
                    s += x;
                }
            }
        }
        return s;
    }
}
