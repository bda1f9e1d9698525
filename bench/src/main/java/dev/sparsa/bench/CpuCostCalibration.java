package dev.sparsa.bench;

import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.cpu.KernelFlavour;
import dev.sparsa.pattern.Dense;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.PlanFeatures;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.tools.StructuredProblem;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Fits the CPU kernel's cost model ({@code dev.sparsa.cpu.CpuCostModel}) on this machine: times the
 * kernel on one thread (the calling thread's CPU time, best of {@code rounds} interleaved rounds) over
 * synthetic plans that span its costs (dense, random blocks, windows and
 * strides under element tests, gathered keys, one-row and short tiles, GQA stacking), counts each
 * plan's {@link PlanFeatures}, fits the {@link LinearCostModel.Coefficients} by non-negative least
 * squares on relative error, and prints the fit per plan and the constants to paste into {@code
 * CpuCostModel}. One line per timed plan and the constants go to stdout.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.sparsa.bench.CpuCostCalibration \
 *      [vector|scalar] [rounds]
 * </pre>
 */
public final class CpuCostCalibration {
    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();
    private CpuCostCalibration() {
    }

    /** One timed plan: its features and its best time. */
    record Sample(String name, DType dtype, PlanFeatures features, double nanos) {
    }

    public static void main(String[] args) {
        KernelFlavour flavour = args.length > 0 ? KernelFlavour.valueOf(args[0].toUpperCase()) : KernelFlavour.VECTOR;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        CpuBackend backend = new CpuBackend(flavour, 1);
        int n = flavour == KernelFlavour.VECTOR ? 2048 : 512;
        System.out.println("# " + backend + ", lanes " + backend.lanes() + ", N " + n + ", best of " + rounds
                + " interleaved rounds (thread CPU time)");
        List<Case> cases = new ArrayList<>();
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            AttentionShape mha = new AttentionShape(1, 4, 4, n, n, 128, 128);
            AttentionShape gqa = new AttentionShape(1, 8, 2, n, n, 64, 64);
            for (AttentionShape s : List.of(mha, gqa)) {
                StructuredProblem.Generated p = StructuredProblem.generate(s, 5).as(dtype);
                for (boolean causal : new boolean[] {false, true}) {
                    PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal));
                    for (SparsePlan plan : plans(ctx)) {
                        cases.add(new Case(plan, dtype, p, backend.prepare(plan)));
                    }
                }
            }
        }
        // rounds over every case, so that a busy moment of a shared machine spoils one sample of many
        // cases rather than every sample of one
        double[] best = new double[cases.size()];
        java.util.Arrays.fill(best, Double.MAX_VALUE);
        for (int r = 0; r < rounds + 1; r++) {
            for (int i = 0; i < cases.size(); i++) {
                double t = cases.get(i).time(backend);
                if (r > 0) {
                    best[i] = Math.min(best[i], t);
                }
            }
            System.err.println("round " + r + " done");
        }
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            List<Sample> samples = new ArrayList<>();
            for (int i = 0; i < cases.size(); i++) {
                Case c = cases.get(i);
                if (c.dtype() == dtype) {
                    samples.add(new Sample(c.name(), dtype, PlanFeatures.of(c.plan(), backend.lanes(), true), best[i]));
                }
            }
            report(flavour, dtype, samples);
        }
    }

    /** One plan and dtype, prepared, with its inputs and output. */
    record Case(SparsePlan plan, DType dtype, StructuredProblem.Generated inputs, PreparedPlan prepared, Tensor out) {
        Case(SparsePlan plan, DType dtype, StructuredProblem.Generated inputs, PreparedPlan prepared) {
            this(plan, dtype, inputs, prepared, Tensor.allocate(DType.F32, Layout.BHSD, plan.shape().batch(),
                    plan.shape().qHeads(), plan.shape().queryLength(), plan.shape().valueDim()));
        }

        String name() {
            AttentionShape s = plan.shape();
            return plan.description() + " " + s.qHeads() + "/" + s.kvHeads() + "h d" + s.headDim()
                    + (plan.context().causal() ? " causal" : "");
        }

        /** Nanoseconds of one run: a one-thread backend runs on the calling thread, whose CPU time is the kernel's. */
        double time(CpuBackend backend) {
            long t = THREADS.getCurrentThreadCpuTime();
            backend.forward(prepared, inputs.q(), inputs.k(), inputs.v(), out, null, RunOptions.defaults());
            return THREADS.getCurrentThreadCpuTime() - t;
        }
    }

    private static void report(KernelFlavour flavour, DType dtype, List<Sample> samples) {
        double[] c = fit(samples);
        LinearCostModel.Coefficients coeff = new LinearCostModel.Coefficients(c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                c[7], c[8], c[9]);
        System.out.println("# " + dtype + ": measured and fitted (one thread)");
        double worst = 0;
        for (Sample sm : samples) {
            double pred = coeff.perCall() + coeff.workNanos(sm.features());
            worst = Math.max(worst, Math.abs(pred / sm.nanos() - 1));
            System.out.printf("%-60s %s measured %9.3f ms  model %9.3f ms  ratio %.2f%n", sm.name(), dtype,
                    sm.nanos() / 1e6, pred / 1e6, pred / sm.nanos());
        }
        System.out.printf("# worst relative error %.2f%n", worst);
        System.out.printf("static final Coefficients %s_%s = new Coefficients(%s);%n", flavour,
                dtype.toString().toUpperCase(),
                String.join(", ", Arrays.stream(c).mapToObj(x -> String.format("%.6g", x)).toList()));
    }

    /** The calibration plans of one context. */
    static List<SparsePlan> plans(PlanContext ctx) {
        List<SparsePlan> plans = new ArrayList<>();
        plans.add(Dense.INSTANCE.plan(ctx));
        for (double p : new double[] {0.05, 0.2, 0.5}) {
            plans.add(Patterns.randomBlockSparse(p, 11).plan(ctx));
        }
        plans.add(Patterns.slidingWindow(256).plan(ctx));
        plans.add(Patterns.dilatedWindow(256, 4).plan(ctx));
        plans.add(gathered(ctx, ctx.geometry().tileRows(), 64, 21));
        plans.add(gathered(ctx, ctx.geometry().tileRows(), 512, 22));
        plans.add(gathered(ctx, 1, 128, 23));
        plans.add(gathered(ctx, 4, 128, 24));
        plans.add(gathered(ctx, 16, 128, 25));
        plans.add(shortTiles(ctx, 8, 4, 26));
        return plans;
    }

    /** Tiles of {@code rows} contiguous rows, each gathering {@code keys} random distinct keys. */
    static SparsePlan gathered(PlanContext ctx, int rows, int keys, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int nk = ctx.keyLength();
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            HeadLayoutBuilder.Tile tile = b.tile(start, Math.min(rows, ctx.queryLength() - start));
            int[] chosen = rnd.ints(0, nk).distinct().limit(Math.min(keys, nk)).sorted().toArray();
            tile.gatherAll(chosen, 0, chosen.length);
            tile.end();
        }
        return SparsePlan.uniform(ctx, b.build(), "gathered(" + rows + " rows, " + keys + " keys)");
    }

    /** Tiles of {@code rows} rows, each visiting {@code blocks} random key blocks by the predicate. */
    static SparsePlan shortTiles(PlanContext ctx, int rows, int blocks, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            HeadLayoutBuilder.Tile tile = b.tile(start, Math.min(rows, ctx.queryLength() - start));
            rnd.ints(0, ctx.keyBlocks()).distinct().limit(Math.min(blocks, ctx.keyBlocks())).forEach(tile::blockByPredicate);
            tile.end();
        }
        return SparsePlan.uniform(ctx, b.build(), "short tiles(" + rows + " rows, " + blocks + " blocks)");
    }

    /** The feature columns of a sample, in the order of {@link LinearCostModel.Coefficients}. */
    static double[] columns(PlanFeatures f) {
        double dims = f.headDim() + f.valueDim();
        return new double[] {1, f.items(), f.rows() * dims, f.paddedRowKeys() * dims, f.paddedRowKeys(),
                f.causalMaskPairs(), f.predicateMaskPairs(), f.blockKeys() * dims, f.listedKeys() * dims, f.chunks()};
    }

    /** Non-negative least squares on relative error: minimises Σ ((a·x − t) / t)² over x ≥ 0. */
    static double[] fit(List<Sample> samples) {
        int m = samples.size();
        int n = 10;
        double[][] a = new double[m][];
        double[] b = new double[m];
        for (int i = 0; i < m; i++) {
            double t = samples.get(i).nanos();
            double[] row = columns(samples.get(i).features());
            for (int j = 0; j < n; j++) {
                row[j] /= t;
            }
            a[i] = row;
            b[i] = 1;
        }
        // scale the columns to unit norm so the active-set solve is well conditioned
        double[] scale = new double[n];
        for (int j = 0; j < n; j++) {
            double ss = 0;
            for (int i = 0; i < m; i++) {
                ss += a[i][j] * a[i][j];
            }
            scale[j] = ss == 0 ? 1 : Math.sqrt(ss);
            for (int i = 0; i < m; i++) {
                a[i][j] /= scale[j];
            }
        }
        double[] x = Nnls.solve(a, b);
        for (int j = 0; j < n; j++) {
            x[j] /= scale[j];
        }
        return x;
    }
}
