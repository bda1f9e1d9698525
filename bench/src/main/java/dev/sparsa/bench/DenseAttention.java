package dev.sparsa.bench;

import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
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
 * Dense attention through the CPU backend: B=1, H=8, N=4096, D=128 by default, on the backend's own
 * pool of {@code threads} threads. Primary result: calls per second; {@code gflops}: GFLOP/s on the
 * visited pairs ({@code 4·pairsVisited·D} per call).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class DenseAttention {
    @Param({"f32", "bf16"})
    public String dtype;
    @Param({"true", "false"})
    public boolean causal;
    @Param({"4096"})
    public int n;
    @Param({"128"})
    public int dim;
    @Param({"8"})
    public int heads;
    @Param({"2"})
    public int threads;

    private AttentionBenchState state;

    @Setup
    public void setup() {
        AttentionShape shape = AttentionShape.of(1, heads, n, n, dim);
        state = new AttentionBenchState(shape, DType.parse(dtype), Options.defaults().withCausal(causal), threads,
                Dense.INSTANCE::plan);
    }

    @Benchmark
    public void forward(GigaFlops flops) {
        state.forward(flops);
    }
}
