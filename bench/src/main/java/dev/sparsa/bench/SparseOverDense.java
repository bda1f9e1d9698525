package dev.sparsa.bench;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
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
 * Block-sparse time over density × dense time, with the two interleaved: each benchmark call runs
 * one dense non-causal call and {@code round(1/density)} calls of the random block-sparse plan of
 * {@link BlockSparseAttention} (same shape, same backend and pool, same tensors), alternating which
 * goes first, and adds their times to two counters. On a shared machine, load that comes and goes
 * then weighs on both alike, which separate benchmarks seconds apart cannot promise.
 *
 * <p>Secondary results (per iteration, summed over its calls): {@code denseMs}, the dense calls'
 * milliseconds, and {@code scaledSparseMs}, each sparse call's milliseconds divided by (calls ×
 * the plan's actual density): their quotient is the ratio {@code t_sparse / (density · t_dense)},
 * also printed after every iteration.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 4)
@Measurement(iterations = 6, time = 4)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class SparseOverDense {
    @Param({"0.05", "0.10"})
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

    private CpuBackend backend;
    private BenchProblem problem;
    private Options options;
    private PreparedPlan dense;
    private PreparedPlan sparse;
    private double actualDensity;
    private int calls;
    private boolean sparseFirst;

    /** The two sums of one iteration. */
    @AuxCounters(AuxCounters.Type.EVENTS)
    @State(Scope.Thread)
    public static class Times {
        /** Milliseconds of the dense calls. */
        public double denseMs;
        /** Milliseconds of the sparse calls, each divided by (calls per benchmark call × actual density). */
        public double scaledSparseMs;

        @Setup(Level.Iteration)
        public void clear() {
            denseMs = 0;
            scaledSparseMs = 0;
        }

        @TearDown(Level.Iteration)
        public void report() {
            System.out.printf("sparse over dense: t_sparse / (density · t_dense) = %.3f (dense %.0f ms in all)%n",
                    scaledSparseMs / denseMs, denseMs);
        }
    }

    @Setup
    public void setup() {
        AttentionShape shape = AttentionShape.of(1, heads, n, n, dim);
        backend = new CpuBackend(threads);
        problem = new BenchProblem(shape, DType.parse(dtype), 42);
        options = Options.defaults();
        PlanContext ctx = PlanContext.of(shape, options);
        SparsePlan densePlan = Dense.INSTANCE.plan(ctx);
        SparsePlan sparsePlan = BlockSparseAttention.perHeadRandomBlocks(density, heads).plan(ctx);
        dense = backend.prepare(densePlan);
        sparse = backend.prepare(sparsePlan);
        actualDensity = (double) sparsePlan.flopsVisited() / densePlan.flopsVisited();
        calls = (int) Math.round(1 / density);
        System.out.println("sparse over dense: backend " + backend.name() + ", kernel " + backend.kernelDescription()
                + ", " + backend.parallelism() + " thread(s), " + dtype + ", " + shape + ", sparse plan " + sparsePlan
                + String.format(", actual density %.4f, %d sparse calls per dense call", actualDensity, calls));
    }

    @Benchmark
    public void interleaved(Times t) {
        sparseFirst = !sparseFirst;
        if (sparseFirst) {
            t.scaledSparseMs += sparseCalls();
            t.denseMs += denseCall();
        } else {
            t.denseMs += denseCall();
            t.scaledSparseMs += sparseCalls();
        }
    }

    private double denseCall() {
        long t0 = System.nanoTime();
        backend.forward(dense, problem.q, problem.k, problem.v, problem.out, null, options.run());
        return (System.nanoTime() - t0) * 1e-6;
    }

    private double sparseCalls() {
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            backend.forward(sparse, problem.q, problem.k, problem.v, problem.out, null, options.run());
        }
        return (System.nanoTime() - t0) * 1e-6 / (calls * actualDensity);
    }
}
