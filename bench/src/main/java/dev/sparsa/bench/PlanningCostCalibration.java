package dev.sparsa.bench;

import dev.sparsa.attention.Dispatcher;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.pattern.PlanningCost;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tools.StructuredProblem;
import java.util.Arrays;

/**
 * Checks the dispatch's planning estimates ({@link Dispatcher#planningMillis}) against measured
 * planning times: for every data-dependent pattern of the catalogue, on the structured problem (f32,
 * B = 1, causal, H = {@code -Dh} (8), N = {@code -Dn} (4096), D = 128), the median of {@code rounds}
 * timed {@code plan} calls after two untimed ones, next to the estimate and the {@link
 * PlanningCost#costPerMac()} that would make the estimate equal the measurement. A pattern whose
 * ratio is far from 1 gets its measured cost per multiply-add (relative to exact top-k) in its
 * {@code costPerMac}; the rate of exact top-k itself is {@link Dispatcher#planNanosPerMac()}. The
 * last column is the median time of the AUTO decision after planning on the CPU backend's cost
 * model (the block-expanded form built where the plan has listed or short tiles): what AUTO adds
 * to a call that plans.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.sparsa.bench.PlanningCostCalibration [rounds]
 * </pre>
 */
public final class PlanningCostCalibration {
    private PlanningCostCalibration() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int h = Integer.getInteger("h", 8);
        int n = Integer.getInteger("n", 4096);
        AttentionShape shape = AttentionShape.of(1, h, n, n, 128);
        StructuredProblem.Generated p = StructuredProblem.generate(shape, 42);
        PlanContext ctx = PlanContext.of(shape, Options.causalMask());
        System.out.printf("# planning estimates against measured planning: f32 B1 H%d N%d D128 causal, median of %d,"
                + " %.3g ns per multiply-add of exact top-k (%s), %d processors%n", h, n, rounds,
                Dispatcher.planNanosPerMac(), Dispatcher.PLAN_NANOS_PROPERTY, Runtime.getRuntime().availableProcessors());
        AttentionBackend cpu = Backends.get("cpu");
        System.out.printf("%-64s %12s %10s %10s %7s %10s %10s %10s%n", "pattern", "scoring MACs", "est. ms", "meas. ms",
                "meas/est", "costPerMac", "fitted", "decide ms");
        for (CatalogueEntry e : PatternCatalogue.examples()) {
            Pattern pattern = e.pattern();
            if (!pattern.dataDependent()) {
                continue;
            }
            double[] t = new double[rounds];
            double[] decide = new double[rounds];
            for (int i = -2; i < rounds; i++) {
                long t0 = System.nanoTime();
                SparsePlan plan = pattern.plan(ctx, p.q(), p.k());
                long t1 = System.nanoTime();
                Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, cpu.costModel(), DType.F32, () -> Dense.INSTANCE.plan(ctx));
                if (i >= 0) {
                    t[i] = (t1 - t0) / 1e6;
                    decide[i] = (System.nanoTime() - t1) / 1e6;
                }
            }
            Arrays.sort(t);
            Arrays.sort(decide);
            double measured = t[rounds / 2];
            double estimate = Dispatcher.planningMillis(pattern, ctx);
            double macs = pattern instanceof PlanningCost c ? c.scoringMacs(ctx) : Double.NaN;
            double perMac = pattern instanceof PlanningCost c ? c.costPerMac() : Double.NaN;
            System.out.printf("%-64s %12.4g %10.3f %10.3f %7.2f %10.3g %10.3g %10.3f%n", clip(pattern.name(), 64), macs,
                    estimate, measured, measured / estimate, perMac, perMac * measured / estimate, decide[rounds / 2]);
        }
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }
}
