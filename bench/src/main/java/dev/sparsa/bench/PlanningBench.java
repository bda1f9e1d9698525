package dev.sparsa.bench;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.attention.Options;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.render.StructuredProblem;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
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
 * Time (and, with {@code -prof gc}, allocation) of planning: every static family and every
 * block-level or last-queries estimator, on B=1, H=8, D=128, causal, 64×64 tiles. Q and K come from
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
            "minferenceBlockEstimate", "verticalSlashEstimate", "sortLsh", "reformerLsh", "topKPerQueryBlock"})
    public String pattern;

    private Pattern p;
    private PlanContext ctx;
    private Tensor q;
    private Tensor k;

    @Setup(Level.Trial)
    public void setup() {
        AttentionShape shape = AttentionShape.of(1, 8, n, n, 128);
        ctx = PlanContext.of(shape, Options.causalMask());
        int[] cols = new int[1000];
        for (int i = 0; i < cols.length; i++) {
            cols[i] = (int) ((long) i * n / cols.length);
        }
        int[] diags = new int[600];
        for (int i = 0; i < diags.length; i++) {
            diags[i] = i < 100 ? i : (int) ((long) i * n / 2 / diags.length);
        }
        p = switch (pattern) {
            case "aShape" -> Patterns.aShape(4096, 128);
            case "triShape" -> Patterns.triShape(4096, 128, 128);
            case "randomBlockSparse" -> Patterns.randomBlockSparse(0.10, 7);
            case "s2Strided" -> Patterns.s2Strided(8, 8);
            case "sparseTransformerStrided" -> Patterns.sparseTransformerStrided(128);
            case "dilatedWindow" -> Patterns.dilatedWindow(2048, 2);
            case "neighbourhood" -> Patterns.neighbourhood(4096);
            case "verticalSlashBlockExpanded" -> Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED);
            case "verticalSlashExact" -> Patterns.verticalSlash(cols, diags, VsSemantics.EXACT);
            case "unionAShapeVerticalSlash" -> Patterns.union(Patterns.aShape(1024, 64),
                    Patterns.verticalSlash(cols, new int[0], VsSemantics.EXACT));
            case "minferenceBlockEstimate" -> Patterns.minferenceBlockSparse(32);
            case "verticalSlashEstimate" -> Patterns.verticalSlashEstimate(1000, 600, VsSemantics.BLOCK_EXPANDED);
            case "sortLsh" -> Patterns.sortLsh(8, 64, 256, 11);
            case "reformerLsh" -> Patterns.reformerLsh(2, 8, 64, 13);
            case "topKPerQueryBlock" -> Patterns.topKPerQueryBlock(2048, 128, 512);
            default -> throw new IllegalArgumentException("pattern: unknown " + pattern);
        };
        if (p.dataDependent()) {
            Tensor[] qkv = StructuredProblem.generate(shape, 1);
            q = qkv[0];
            k = qkv[1];
        }
        SparsePlan once = plan();
        System.err.println("[PlanningBench] " + once + " (pairs visited " + once.pairsVisited() + ")");
    }

    @Benchmark
    public SparsePlan plan() {
        return p.dataDependent() ? p.plan(ctx, q, k) : p.plan(ctx);
    }
}
