package dev.sparsa.bench;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
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
 * Random block-sparse attention (64×64 blocks, non-causal, a different seeded random layout per head) at
 * several densities, same shape and pool as {@link DenseAttention}: its time at density {@code p}
 * against the dense non-causal time is what sparsity buys. Results as in {@link DenseAttention}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class BlockSparseAttention {
    @Param({"0.05", "0.10", "0.25", "0.50"})
    public double density;
    @Param({"f32"})
    public String dtype;
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
        state = new AttentionBenchState(shape, DType.parse(dtype), Options.defaults(), threads,
                ctx -> perHeadRandomBlocks(density, heads).plan(ctx));
    }

    /** The library's seeded random block selection with a different seed per head. */
    static Pattern perHeadRandomBlocks(double density, int heads) {
        return Patterns.perHead(IntStream.range(0, heads).mapToObj(h -> Patterns.randomBlockSparse(density, 7 + h)).toList());
    }

    @Benchmark
    public void forward(GigaFlops flops) {
        state.forward(flops);
    }
}
