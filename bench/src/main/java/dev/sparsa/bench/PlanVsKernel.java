package dev.sparsa.bench;

import dev.sparsa.attention.Attention;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.tools.StructuredProblem;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;

/**
 * Plain timing of planning against the CPU kernel on the plan it produces (docs/patterns.md,
 * "Planning cost"): plans each named {@link PlanningCases} pattern {@code -Dreps} times (the best is
 * reported), then, with {@code -Dkernel=true}, runs the plan {@code -DkernelReps} times (default 2, the
 * best is reported) through {@code new CpuBackend()}
 * (f32, B = 1, H = {@code -Dh}, N = {@code -Dn}, D = 128, causal, 64 × 64 tiles, the structured
 * problem). Results on stdout, one line per pattern, with wall time and the process's CPU time (all
 * threads; steadier than wall time on a shared machine):
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx16g -Dkernel=true \
 *      -cp bench/target/benchmarks.jar dev.sparsa.bench.PlanVsKernel topKPerQueryBlock sortLsh ...
 * </pre>
 */
public final class PlanVsKernel {
    private static final com.sun.management.OperatingSystemMXBean CPU =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    private PlanVsKernel() {
    }

    public static void main(String[] names) {
        int n = Integer.getInteger("n", 32768);
        int h = Integer.getInteger("h", 8);
        int reps = Integer.getInteger("reps", 2);
        boolean kernel = Boolean.getBoolean("kernel");
        int kernelReps = Integer.getInteger("kernelReps", 2);
        AttentionShape shape = AttentionShape.of(1, h, n, n, 128);
        Options opt = Options.causalMask();
        PlanContext ctx = PlanContext.of(shape, opt);
        StructuredProblem.Generated qkv = StructuredProblem.generate(shape, 1);
        for (String name : names) {
            Pattern p = PlanningCases.pattern(name, n);
            SparsePlan plan = null;
            double best = Double.MAX_VALUE;
            double bestCpu = Double.MAX_VALUE;
            for (int r = 0; r < reps; r++) {
                long c0 = CPU.getProcessCpuTime();
                long t0 = System.nanoTime();
                plan = p.dataDependent() ? p.plan(ctx, qkv.q(), qkv.k()) : p.plan(ctx);
                best = Math.min(best, (System.nanoTime() - t0) / 1e6);
                bestCpu = Math.min(bestCpu, (CPU.getProcessCpuTime() - c0) / 1e6);
            }
            String line = String.format("%-28s plan %9.1f ms (cpu %9.1f ms)  visited %d admitted %d", name, best, bestCpu,
                    plan.pairsVisited(), plan.pairsAdmitted());
            if (kernel) {
                double km = Double.MAX_VALUE;
                double kc = Double.MAX_VALUE;
                for (int r = 0; r < kernelReps; r++) { // the best of several: the first run also compiles
                    long c0 = CPU.getProcessCpuTime();
                    long t0 = System.nanoTime();
                    Attention.run(new CpuBackend(), plan, qkv.q(), qkv.k(), qkv.v(), opt, false);
                    km = Math.min(km, (System.nanoTime() - t0) / 1e6);
                    kc = Math.min(kc, (CPU.getProcessCpuTime() - c0) / 1e6);
                }
                line += String.format("  kernel %9.1f ms (cpu %9.1f ms, %.1f GFLOP/s)  plan/kernel %.3f (cpu %.3f)", km, kc,
                        plan.flopsVisited() / 1e6 / km, best / km, bestCpu / kc);
            }
            System.out.println(line);
        }
    }
}
