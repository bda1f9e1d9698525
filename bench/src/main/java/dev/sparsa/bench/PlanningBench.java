package dev.sparsa.bench;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.tools.StructuredProblem;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Time (and, with {@code -prof gc}, allocation) of planning: every static family, every
 * block-level or last-queries estimator and the indexer- and gate-driven selectors (MoBA, NSA, the
 * DSA indexer, XAttention, routing, the adaptive budgets), on B=1, H=8, D=128, causal, 64×64 tiles. Q and K come from
 * {@link StructuredProblem} (sinks, band, slashes, columns, a needle), generated in the setup, never
 * in the measured method. Single-shot: one plan per measurement (plans take milliseconds to seconds).
 *
 * <pre>
 * java -jar bench/target/benchmarks.jar PlanningBench -p n=32768
 * java -jar bench/target/benchmarks.jar PlanningBench -p n=131072 -prof gc   # bytes allocated per plan
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx12g"})
public class PlanningBench {

    @Param({"32768"})
    public int n;

    @Param({"aShape", "triShape", "randomBlockSparse", "s2Strided", "sparseTransformerStrided", "dilatedWindow",
            "neighbourhood", "verticalSlashBlockExpanded", "verticalSlashExact", "unionAShapeVerticalSlash",
            "minferenceBlockEstimate", "verticalSlashEstimate", "sortLsh", "reformerLsh", "topKPerQueryBlock", "moba",
            "nsaSelection", "dsaIndexer", "xattention", "routing", "meanPoolTopP", "verticalSlashTopP"})
    public String pattern;

    private Pattern p;
    private PlanContext ctx;
    private Tensor q;
    private Tensor k;

    @Setup(Level.Trial)
    public void setup() {
        AttentionShape shape = AttentionShape.of(1, 8, n, n, 128);
        ctx = PlanContext.of(shape, Options.causalMask());
        p = PlanningCases.pattern(pattern, n);
        if (p.dataDependent()) {
            StructuredProblem.Generated g = StructuredProblem.generate(shape, 1);
            q = g.q();
            k = g.k();
        }
        SparsePlan once = plan();
        System.err.println("[PlanningBench] " + once + " (pairs visited " + once.pairsVisited() + ")");
    }

    @Benchmark
    public SparsePlan plan() {
        return p.dataDependent() ? p.plan(ctx, q, k) : p.plan(ctx);
    }
}
