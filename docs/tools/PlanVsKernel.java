import dev.sparsa.attention.*;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.render.StructuredProblem;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.*;
import dev.sparsa.tensor.*;

/**
 * Plain timing of planning against the CPU kernel on the plan it produces (docs/patterns.md, "Planning
 * cost"): plans each named pattern {@code reps} times (the best is reported), then, with
 * {@code -Dkernel=true}, runs the plan once through {@code new CpuBackend()} (f32, B = 1, H = h,
 * N = n, D = 128, causal, 64 x 64 tiles, the structured problem of PlanningBench). Run from the
 * repository root after {@code mvn -pl bench -am package -DskipTests}:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g -Dkernel=true \
 *      -cp bench/target/benchmarks.jar docs/tools/PlanVsKernel.java topKPerQueryBlock sortLsh ...
 * </pre>
 */
public class PlanVsKernel {
    public static void main(String[] a) throws Exception {
        int n = Integer.parseInt(System.getProperty("n", "32768"));
        int h = Integer.parseInt(System.getProperty("h", "8"));
        int reps = Integer.parseInt(System.getProperty("reps", "2"));
        boolean kernel = Boolean.getBoolean("kernel");
        AttentionShape shape = AttentionShape.of(1, h, n, n, 128);
        Options opt = Options.causalMask();
        PlanContext ctx = PlanContext.of(shape, opt);
        Tensor[] qkv = StructuredProblem.generate(shape, 1);
        int[] cols = new int[1000];
        for (int i = 0; i < cols.length; i++) cols[i] = (int) ((long) i * n / cols.length);
        int[] diags = new int[600];
        for (int i = 0; i < diags.length; i++) diags[i] = i < 100 ? i : (int) ((long) i * n / 2 / diags.length);
        for (String name : a) {
            Pattern p = switch (name) {
                case "aShape" -> Patterns.aShape(4096, 128);
                case "triShape" -> Patterns.triShape(4096, 128, 128);
                case "randomBlockSparse" -> Patterns.randomBlockSparse(0.10, 7);
                case "s2Strided" -> Patterns.s2Strided(8, 8);
                case "sparseTransformerStrided" -> Patterns.sparseTransformerStrided(128);
                case "dilatedWindow" -> Patterns.dilatedWindow(2048, 2);
                case "neighbourhood" -> Patterns.neighbourhood(4096);
                case "verticalSlashBlockExpanded" -> Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED);
                case "verticalSlashExact" -> Patterns.verticalSlash(cols, diags, VsSemantics.EXACT);
                case "unionAShapeVerticalSlash" -> Patterns.union(Patterns.aShape(1024, 64), Patterns.verticalSlash(cols, new int[0], VsSemantics.EXACT));
                case "minferenceBlockEstimate" -> Patterns.minferenceBlockSparse(32);
                case "verticalSlashEstimate" -> Patterns.verticalSlashEstimate(1000, 600, VsSemantics.BLOCK_EXPANDED);
                case "sortLsh" -> Patterns.sortLsh(8, 64, 256, 11);
                case "reformerLsh" -> Patterns.reformerLsh(2, 8, 64, 13);
                case "topKPerQueryBlock" -> Patterns.topKPerQueryBlock(2048, 128, 512);
                default -> throw new IllegalArgumentException(name);
            };
            SparsePlan plan = null;
            double best = Double.MAX_VALUE;
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                plan = p.dataDependent() ? p.plan(ctx, qkv[0], qkv[1]) : p.plan(ctx);
                best = Math.min(best, (System.nanoTime() - t0) / 1e6);
            }
            String line = String.format("%-28s plan %9.1f ms  visited %d admitted %d", name, best, plan.pairsVisited(), plan.pairsAdmitted());
            if (kernel) {
                var be = new dev.sparsa.cpu.CpuBackend();
                long t0 = System.nanoTime();
                Attention.run(be, plan, qkv[0], qkv[1], qkv[2], opt, false);
                double km = (System.nanoTime() - t0) / 1e6;
                line += String.format("  kernel %9.1f ms (%.1f GFLOP/s)  plan/kernel %.3f", km, 4.0 * plan.pairsVisited() * 128 / 1e6 / km, best / km);
            }
            System.out.println(line);
        }
    }
}
