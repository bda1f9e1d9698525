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
 * "Planning cost"): plans each named {@link PlanningCases} pattern in an untimed warm-up phase, then
 * {@code -Dreps} times (the best is reported), then, with {@code -Dkernel=true}, runs the plan
 * {@code -DkernelReps} times (default 2, the best is reported) through {@code new CpuBackend()}
 * (f32, B = 1, H = {@code -Dh}, N = {@code -Dn}, D = 128, causal, 64 × 64 tiles, the structured
 * problem). Results on stdout, one line per pattern, with wall time and the process's CPU time (all
 * threads; steadier than wall time on a shared machine).
 *
 * <p>The warm-up plans the pattern again until two plans in a row ran without any JIT compilation
 * (the JVM's total compilation time did not grow), at most {@code -Dwarmup} plans (default 20;
 * {@code 0} turns the warm-up off) and no longer than {@code -DwarmupSeconds} (default 30) of wall
 * time. Without it, on a machine of two cores the C2 compiler can still be working through its queue
 * during all of a few timed plans, which then run in less optimised code and pay the compiler's CPU
 * time. Each line reports the number of warm-up plans and the JIT compilation time that fell into the
 * timed plans ({@code jit ... ms}; 0 when they were steady):
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx16g -Dkernel=true \
 *      -cp bench/target/benchmarks.jar dev.sparsa.bench.PlanVsKernel topKPerQueryBlock sortLsh ...
 * </pre>
 */
public final class PlanVsKernel {
    private static final com.sun.management.OperatingSystemMXBean CPU =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    private static final java.lang.management.CompilationMXBean JIT =
            java.lang.management.ManagementFactory.getCompilationMXBean();

    private PlanVsKernel() {
    }

    /**
     * Plans {@code p} until two plans in a row compiled nothing, at most {@code max} plans and no
     * longer than {@code seconds}; returns the number of plans made.
     */
    private static int warmUp(Pattern p, PlanContext ctx, StructuredProblem.Generated qkv, int max, double seconds) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        int steady = 0;
        int made = 0;
        while (made < max && steady < 2 && System.nanoTime() < end) {
            long jit0 = JIT.getTotalCompilationTime();
            SparsePlan plan = p.dataDependent() ? p.plan(ctx, qkv.q(), qkv.k()) : p.plan(ctx);
            made++;
            steady = JIT.getTotalCompilationTime() == jit0 && plan != null ? steady + 1 : 0;
        }
        return made;
    }

    public static void main(String[] names) {
        int n = Integer.getInteger("n", 32768);
        int h = Integer.getInteger("h", 8);
        int reps = Integer.getInteger("reps", 2);
        boolean kernel = Boolean.getBoolean("kernel");
        int kernelReps = Integer.getInteger("kernelReps", 2);
        int warmup = Integer.getInteger("warmup", 20);
        double warmupSeconds = Double.parseDouble(System.getProperty("warmupSeconds", "30"));
        AttentionShape shape = AttentionShape.of(1, h, n, n, 128);
        Options opt = Options.causalMask();
        PlanContext ctx = PlanContext.of(shape, opt);
        StructuredProblem.Generated qkv = StructuredProblem.generate(shape, 1);
        for (String name : names) {
            Pattern p = PlanningCases.pattern(name, n);
            SparsePlan plan = null;
            double best = Double.MAX_VALUE;
            double bestCpu = Double.MAX_VALUE;
            int warmed = warmUp(p, ctx, qkv, warmup, warmupSeconds);
            long jit0 = JIT.getTotalCompilationTime();
            for (int r = 0; r < reps; r++) {
                long c0 = CPU.getProcessCpuTime();
                long t0 = System.nanoTime();
                plan = p.dataDependent() ? p.plan(ctx, qkv.q(), qkv.k()) : p.plan(ctx);
                best = Math.min(best, (System.nanoTime() - t0) / 1e6);
                bestCpu = Math.min(bestCpu, (CPU.getProcessCpuTime() - c0) / 1e6);
            }
            long jit = JIT.getTotalCompilationTime() - jit0;
            String line = String.format("%-28s plan %9.1f ms (cpu %9.1f ms)  visited %d admitted %d  warm-up %d jit %d ms", name,
                    best, bestCpu, plan.pairsVisited(), plan.pairsAdmitted(), warmed, jit);
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
