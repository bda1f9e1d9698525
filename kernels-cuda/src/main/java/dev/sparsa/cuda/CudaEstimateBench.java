package dev.sparsa.cuda;

import static dev.sparsa.cuda.BenchSupport.backendOrExit;
import static dev.sparsa.cuda.BenchSupport.median;
import static dev.sparsa.cuda.BenchSupport.randomBf16;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@link MeanPoolBlockTopK} with its selection estimated on the device ({@link CudaEstimatedPlan}),
 * or with {@code --vs} {@link VerticalSlashEstimator} ({@link CudaVsEstimatedPlan}; default vertical
 * 1000, slash 1000, MInference's block-expanded semantics), against the attention kernel alone on the
 * same plan: bf16, causal, B=1, H=32, D=128, per sequence length (default 8192 and 32768). For each:
 * {@code kernel} (the host-planned plan, prepared once, CUDA events around each launch, median), {@code
 * estimate + kernel} (the estimate's kernels and the attention kernel queued on one stream, events,
 * median) and {@code estimate alone} (the estimate's kernels only); the three are run in turn, and the
 * outputs compared bit for bit. The target is {@code estimate + kernel <= 1.3 x kernel}. With {@code
 * --host}, also the host path once: Q and K copied back, {@code plan} on the host, prepared, run.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaEstimateBench [--n 8192,32768] [--heads 32]
 * [--top 32] [--block 128] [--geometry 128] [--iters 20] [--host] [--vs [--vertical 1000] [--slash
 * 1000] [--semantics block-expanded|grid-expanded]]}. Not API.
 */
final class CudaEstimateBench {
    private CudaEstimateBench() {
    }

    public static void main(String[] args) {
        int[] ns = {8192, 32768};
        int h = 32;
        int top = 32;
        int block = 128;
        int geometry = 0;
        int iters = 20;
        boolean host = false;
        boolean vs = false;
        int vertical = 1000;
        int slash = 1000;
        VsSemantics semantics = VsSemantics.BLOCK_EXPANDED;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> ns = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--heads" -> h = Integer.parseInt(args[++i]);
                case "--top" -> top = Integer.parseInt(args[++i]);
                case "--block" -> block = Integer.parseInt(args[++i]);
                case "--geometry" -> geometry = Integer.parseInt(args[++i]);
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--host" -> host = true;
                case "--vs" -> vs = true;
                case "--vertical" -> vertical = Integer.parseInt(args[++i]);
                case "--slash" -> slash = Integer.parseInt(args[++i]);
                case "--semantics" -> semantics = VsSemantics.valueOf(args[++i].toUpperCase(Locale.ROOT).replace('-', '_'));
                default -> {
                    System.err.println("unknown argument " + args[i] + "; usage: CudaEstimateBench [--n 8192,32768] "
                            + "[--heads 32] [--top 32] [--block 128] [--geometry 64|128] [--iters 20] [--host] "
                            + "[--vs [--vertical 1000] [--slash 1000] [--semantics block-expanded|grid-expanded]]");
                    System.exit(2);
                }
            }
        }
        CudaBackend backend = backendOrExit();
        CudaDevice dev = backend.device();
        Device where = Device.cuda(dev.ordinal());
        int d = 128;
        System.err.println("device: " + dev);
        for (int n : ns) {
            AttentionShape s = AttentionShape.of(1, h, n, n, d);
            TileGeometry g = geometry == 0 ? backend.proposedGeometry(s, DType.BF16) : new TileGeometry(geometry, geometry);
            Options o = Options.causalMask().withGeometry(g);
            PlanContext ctx = PlanContext.of(s, o);
            MeanPoolBlockTopK pattern = new MeanPoolBlockTopK(top, block, false, "meanPoolTopK");
            VerticalSlashEstimator vsEst = new VerticalSlashEstimator(vertical, slash, semantics,
                    VerticalSlashEstimator.LAST_QUERIES, Double.NaN);
            String why = vs ? CudaVsEstimatedPlan.refusal(vsEst, ctx) : CudaEstimatedPlan.refusal(pattern, ctx);
            if (why != null) {
                System.out.println("n " + n + ": not estimated on the device: " + why);
                continue;
            }
            Tensor q = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 11);
            Tensor k = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 12);
            Tensor v = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 13);
            long t0 = System.nanoTime();
            SparsePlan plan = vs ? vsEst.plan(ctx, q, k) : pattern.plan(ctx, q, k);
            double hostPlanMs = (System.nanoTime() - t0) / 1e6;
            try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
                 Tensor dv = CudaTensors.upload(dev, v);
                 Tensor outA = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 Tensor outB = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 CudaStream stream = new CudaStream(dev);
                 PreparedPlan prepared = backend.prepare(plan, where);
                 CudaEstimatedPlan est = vs ? null : backend.prepareEstimated(pattern, ctx, where);
                 CudaVsEstimatedPlan vsPlan = vs ? backend.prepareEstimated(vsEst, ctx, where) : null;
                 CudaEvents ev = new CudaEvents(dev)) {
                Runnable kernelOnly = () -> backend.forwardAsync(prepared, dq, dk, dv, outA, null, o.run(), stream);
                Runnable endToEnd = vs ? () -> backend.forwardAsync(vsPlan, dq, dk, dv, outB, null, o.run(), stream)
                        : () -> backend.forwardAsync(est, dq, dk, dv, outB, null, o.run(), stream);
                Runnable estimateOnly = vs ? () -> vsPlan.queueEstimate(dq, dk, stream) : () -> est.queueEstimate(dq, dk, stream);
                for (int i = 0; i < 3; i++) {
                    kernelOnly.run();
                    endToEnd.run();
                }
                stream.synchronize();
                String kernelName = backend.kernelFor(s, DType.BF16, g).name();
                double[] kernel = new double[iters];
                double[] both = new double[iters];
                double[] alone = new double[iters];
                for (int i = 0; i < iters; i++) {
                    kernel[i] = timed(ev, stream, kernelOnly);
                    both[i] = timed(ev, stream, endToEnd);
                    alone[i] = timed(ev, stream, estimateOnly);
                }
                stream.synchronize();
                // the estimate alone rewrote the same plan from the same inputs: run once more for the comparison
                endToEnd.run();
                stream.synchronize();
                boolean same = Arrays.equals(outA.toHost().toFloatArray(), outB.toHost().toFloatArray());
                double km = median(kernel);
                double bm = median(both);
                System.out.printf(Locale.ROOT, "n %d: bf16 B1 H%d D%d causal, %s, geometry %s, kernel %s, density %.3f%n",
                        n, h, d, vs ? vsEst.name() : pattern.name(), g, kernelName, plan.density());
                System.out.printf(Locale.ROOT, "  kernel alone (host plan)   %9.3f ms%n", km);
                System.out.printf(Locale.ROOT, "  estimate + kernel          %9.3f ms  (%.3f x kernel; target <= 1.3)%n", bm, bm / km);
                System.out.printf(Locale.ROOT, "  estimate alone             %9.3f ms%n", median(alone));
                System.out.printf(Locale.ROOT, "  outputs bit for bit equal: %s%n", same);
                System.out.printf(Locale.ROOT, "  host plan (Java, this process, first call) %9.1f ms%n", hostPlanMs);
                if (host) {
                    double[] hp = new double[Math.max(1, iters / 4)];
                    for (int i = 0; i < hp.length; i++) {
                        long a = System.nanoTime();
                        SparsePlan p = vs ? vsEst.plan(ctx, dq.toHost(), dk.toHost()) : pattern.plan(ctx, dq.toHost(), dk.toHost());
                        try (PreparedPlan pp = backend.prepare(p, where)) {
                            backend.forward(pp, dq, dk, dv, outA, null, o.run());
                        }
                        hp[i] = (System.nanoTime() - a) / 1e6;
                    }
                    double hm = median(hp);
                    System.out.printf(Locale.ROOT, "  host path (copy back, plan, prepare, run) %9.3f ms  (%.1f x kernel)%n",
                            hm, hm / km);
                }
            }
        }
    }

    /** Milliseconds between CUDA events around {@code work} on {@code stream}. */
    private static double timed(CudaEvents ev, CudaStream stream, Runnable work) {
        ev.start(stream);
        work.run();
        ev.stop(stream);
        return ev.millis();
    }
}
