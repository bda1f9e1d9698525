package dev.sparsa.cuda;

import static dev.sparsa.cuda.BenchSupport.backendOrExit;
import static dev.sparsa.cuda.BenchSupport.median;
import static dev.sparsa.cuda.BenchSupport.randomBf16;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@link TopKPerQueryBlock} (pooled scoring) with its selection estimated on the device ({@link
 * CudaTopKEstimatedPlan}) against the attention kernel alone on the same plan: bf16, causal, B=1,
 * H=32, D=128, per sequence length (default 32768), k = 2048 keys per query tile besides 64 sinks and
 * a window of 1024. For each: {@code kernel} (the host-planned plan, prepared once, CUDA events around
 * each launch, median) and {@code estimate + kernel} (mean queries, scores and top-k, the layout's
 * lists and the kernel queued on one stream, events, median); the two are run alternately, and the
 * outputs compared bit for bit. With {@code --host}, also the host path: Q and K copied back, {@code
 * plan} on the host, prepared, run.
 *
 * <p>With {@code --per-query}, {@link TopKPerQuery} (exact top-k per query row, {@link
 * CudaTopKQueryEstimatedPlan}) instead, default H=8 (32 heads of per-row lists at 32k exceed the
 * plan's int pool): {@code kernel} is the attention kernel alone over the device plan the last
 * estimate wrote (no host plan: planning exact top-k in Java at 32k costs dense scoring on the CPU),
 * {@code estimate + kernel} the scores, top-k, per-row lists and kernel queued together; the outputs
 * of the two are compared bit for bit.
 *
 * <p>With {@code --indexer}, DeepSeek Sparse Attention's {@link LightningIndexer} ({@link
 * CudaLightningIndexerEstimatedPlan}) instead: default H=32 over one KV head (MQA), top {@code --k}
 * keys per query row (default 2048; sinks and window do not apply), an indexer of {@code
 * --indexer-heads} (default 4) heads of {@code --indexer-dim} (default 32) channels, bf16 queries and
 * keys and f32 weights in device memory. {@code kernel} is the attention kernel alone over the device
 * plan the last estimate wrote, {@code estimate + kernel} the index scores, top-k, per-row lists and
 * kernel queued together; the outputs of the two are compared bit for bit, and the host plan ({@code
 * LightningIndexer.plan} in Java over the same inputs) is timed once.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaTopKEstimateBench [--n 32768] [--heads 32] [--k 2048]
 * [--sinks 64] [--window 1024] [--geometry 64|128] [--iters 20] [--host] [--per-query] [--indexer
 * [--kv-heads 1] [--indexer-heads 4] [--indexer-dim 32]]}. Not API.
 */
final class CudaTopKEstimateBench {
    private CudaTopKEstimateBench() {
    }

    public static void main(String[] args) {
        int[] ns = {32768};
        int h = 0;
        boolean perQuery = false;
        int topK = 2048;
        int sinks = 64;
        int window = 1024;
        int geometry = 0;
        int iters = 20;
        boolean host = false;
        boolean indexer = false;
        int kvHeads = 1;
        int indexerHeads = 4;
        int indexerDim = 32;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> ns = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--heads" -> h = Integer.parseInt(args[++i]);
                case "--k" -> topK = Integer.parseInt(args[++i]);
                case "--sinks" -> sinks = Integer.parseInt(args[++i]);
                case "--window" -> window = Integer.parseInt(args[++i]);
                case "--geometry" -> geometry = Integer.parseInt(args[++i]);
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--host" -> host = true;
                case "--per-query" -> perQuery = true;
                case "--indexer" -> indexer = true;
                case "--kv-heads" -> kvHeads = Integer.parseInt(args[++i]);
                case "--indexer-heads" -> indexerHeads = Integer.parseInt(args[++i]);
                case "--indexer-dim" -> indexerDim = Integer.parseInt(args[++i]);
                default -> {
                    System.err.println("unknown argument " + args[i] + "; usage: CudaTopKEstimateBench [--n 32768] [--heads 32] "
                            + "[--k 2048] [--sinks 64] [--window 1024] [--geometry 64|128] [--iters 20] [--host] [--per-query] "
                            + "[--indexer [--kv-heads 1] [--indexer-heads 4] [--indexer-dim 32]]");
                    System.exit(2);
                }
            }
        }
        CudaBackend backend = backendOrExit();
        CudaDevice dev = backend.device();
        Device where = Device.cuda(dev.ordinal());
        int d = 128;
        System.err.println("device: " + dev);
        if (indexer) {
            for (int n : ns) {
                indexer(backend, n, h == 0 ? 32 : h, kvHeads, topK, indexerHeads, indexerDim, geometry, iters);
            }
            return;
        }
        if (perQuery) {
            for (int n : ns) {
                perQuery(backend, n, h == 0 ? 8 : h, topK, sinks, window, geometry, iters, host);
            }
            return;
        }
        h = h == 0 ? 32 : h;
        for (int n : ns) {
            AttentionShape s = AttentionShape.of(1, h, n, n, d);
            TileGeometry g = geometry == 0 ? backend.proposedGeometry(s, DType.BF16) : new TileGeometry(geometry, geometry);
            Options o = Options.causalMask().withGeometry(g);
            PlanContext ctx = PlanContext.of(s, o);
            TopKPerQueryBlock pattern = new TopKPerQueryBlock(topK, new ForcedKeys(sinks, window),
                    TopKPerQueryBlock.Scoring.POOLED_QUERY);
            String why = CudaTopKEstimatedPlan.refusal(pattern, ctx);
            if (why != null) {
                System.out.println("n " + n + ": not estimated on the device: " + why);
                continue;
            }
            Tensor q = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 11);
            Tensor k = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 12);
            Tensor v = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 13);
            long t0 = System.nanoTime();
            SparsePlan plan = pattern.plan(ctx, q, k);
            double hostPlanMs = (System.nanoTime() - t0) / 1e6;
            try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
                 Tensor dv = CudaTensors.upload(dev, v);
                 Tensor outA = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 Tensor outB = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 CudaStream stream = new CudaStream(dev);
                 PreparedPlan prepared = backend.prepare(plan, where);
                 CudaTopKEstimatedPlan est = backend.prepareEstimated(pattern, ctx, where);
                 CudaEvents ev = new CudaEvents(dev)) {
                String kernelName = null;
                for (int i = 0; i < 3; i++) {
                    backend.forwardAsync(prepared, dq, dk, dv, outA, null, o.run(), stream);
                    kernelName = CudaBackend.lastKernel(); // the kernels launched, not the geometry's default
                    backend.forwardAsync(est, dq, dk, dv, outB, null, o.run(), stream);
                }
                stream.synchronize();
                double[] kernel = new double[iters];
                double[] both = new double[iters];
                for (int i = 0; i < iters; i++) {
                    ev.start(stream);
                    backend.forwardAsync(prepared, dq, dk, dv, outA, null, o.run(), stream);
                    ev.stop(stream);
                    kernel[i] = ev.millis();
                    ev.start(stream);
                    backend.forwardAsync(est, dq, dk, dv, outB, null, o.run(), stream);
                    ev.stop(stream);
                    both[i] = ev.millis();
                }
                stream.synchronize();
                boolean same = Arrays.equals(outA.toHost().toFloatArray(), outB.toHost().toFloatArray());
                double km = median(kernel);
                double bm = median(both);
                System.out.printf(Locale.ROOT, "n %d: bf16 B1 H%d D%d causal, %s, geometry %s, kernel %s, density %.3f%n",
                        n, h, d, pattern.name(), g, kernelName, plan.density());
                System.out.printf(Locale.ROOT, "  kernel alone (host plan)   %9.3f ms%n", km);
                System.out.printf(Locale.ROOT, "  estimate + kernel          %9.3f ms  (%.3f x kernel)%n", bm, bm / km);
                System.out.printf(Locale.ROOT, "  estimate's device memory   %9.1f MiB%n", est.deviceBytes() / 1048576.0);
                System.out.printf(Locale.ROOT, "  outputs bit for bit equal: %s%n", same);
                System.out.printf(Locale.ROOT, "  host plan (Java, this process, first call) %9.1f ms%n", hostPlanMs);
                if (host) {
                    double[] hp = new double[Math.max(1, iters / 4)];
                    for (int i = 0; i < hp.length; i++) {
                        long a = System.nanoTime();
                        SparsePlan p = pattern.plan(ctx, dq.toHost(), dk.toHost());
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

    /** The {@code --per-query} run at one length: {@link TopKPerQuery} estimated on the device. */
    private static void perQuery(CudaBackend backend, int n, int h, int topK, int sinks, int window, int geometry, int iters,
                                 boolean host) {
        CudaDevice dev = backend.device();
        Device where = Device.cuda(dev.ordinal());
        int d = 128;
        AttentionShape s = AttentionShape.of(1, h, n, n, d);
        TileGeometry g = geometry == 0 ? backend.proposedGeometry(s, DType.BF16) : new TileGeometry(geometry, geometry);
        Options o = Options.causalMask().withGeometry(g);
        PlanContext ctx = PlanContext.of(s, o);
        TopKPerQuery pattern = new TopKPerQuery(topK, new ForcedKeys(sinks, window));
        String why = CudaTopKQueryEstimatedPlan.refusal(pattern, ctx);
        if (why != null) {
            System.out.println("n " + n + ": not estimated on the device: " + why);
            return;
        }
        Tensor q = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 11);
        Tensor k = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 12);
        Tensor v = randomBf16(s.kvHeads(), s.queryLength(), s.headDim(), 13);
        try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
             Tensor dv = CudaTensors.upload(dev, v);
             Tensor outA = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
             Tensor outB = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
             CudaStream stream = new CudaStream(dev);
             CudaTopKQueryEstimatedPlan est = backend.prepareEstimated(pattern, ctx, where);
             CudaEvents ev = new CudaEvents(dev)) {
            DevicePlanTimes t = DevicePlanTimes.measure(backend, est, dq, dk, dv, outA, outB, o.run(), stream, ev, iters);
            System.out.printf(Locale.ROOT, "n %d: bf16 B1 H%d D%d causal, %s, geometry %s, kernel %s, visited <= %.3f%n",
                    n, h, d, pattern.name(), g, t.kernelName(), est.visitedFractionBound());
            t.print(est);
            if (host) {
                long a = System.nanoTime();
                SparsePlan p = pattern.plan(ctx, dq.toHost(), dk.toHost());
                try (PreparedPlan pp = backend.prepare(p, where)) {
                    backend.forward(pp, dq, dk, dv, outA, null, o.run());
                }
                double hm = (System.nanoTime() - a) / 1e6;
                System.out.printf(Locale.ROOT, "  host path (copy back, plan, prepare, run, once) %9.3f ms  (%.1f x kernel)%n",
                        hm, hm / t.kernelMs());
            }
        }
    }

    /** The {@code --indexer} run at one length: {@link LightningIndexer} estimated on the device. */
    private static void indexer(CudaBackend backend, int n, int h, int kvHeads, int topK, int ih, int id, int geometry,
                                int iters) {
        CudaDevice dev = backend.device();
        Device where = Device.cuda(dev.ordinal());
        int d = 128;
        AttentionShape s = new AttentionShape(1, h, kvHeads, n, n, d, d);
        TileGeometry g = geometry == 0 ? backend.proposedGeometry(s, DType.BF16) : new TileGeometry(geometry, geometry);
        Options o = Options.causalMask().withGeometry(g);
        PlanContext ctx = PlanContext.of(s, o);
        Tensor q = randomBf16(s.qHeads(), n, d, 11);
        Tensor k = randomBf16(s.kvHeads(), n, d, 12);
        Tensor v = randomBf16(s.kvHeads(), n, d, 13);
        float[] w = new float[n * ih];
        java.util.SplittableRandom r = new java.util.SplittableRandom(17);
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() * 2 - 1);
        }
        IndexerInputs hostInputs = new IndexerInputs(randomBf16(ih, n, id, 14), randomBf16(1, n, id, 15),
                Tensor.of(w, 1, 1, n, ih));
        try (Tensor iq = CudaTensors.upload(dev, hostInputs.queries()); Tensor ik = CudaTensors.upload(dev, hostInputs.keys());
             Tensor iw = CudaTensors.upload(dev, hostInputs.weights());
             Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
             Tensor dv = CudaTensors.upload(dev, v);
             Tensor outA = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
             Tensor outB = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
             CudaStream stream = new CudaStream(dev);
             CudaEvents ev = new CudaEvents(dev)) {
            LightningIndexer pattern = LightningIndexer.of(topK, new IndexerInputs(iq, ik, iw));
            String why = CudaLightningIndexerEstimatedPlan.refusal(pattern, ctx);
            if (why != null) {
                System.out.println("n " + n + ": not estimated on the device: " + why);
                return;
            }
            try (CudaLightningIndexerEstimatedPlan est = backend.prepareEstimated(pattern, ctx, where)) {
                DevicePlanTimes t = DevicePlanTimes.measure(backend, est, dq, dk, dv, outA, outB, o.run(), stream, ev, iters);
                System.out.printf(Locale.ROOT, "n %d: bf16 B1 H%d KV%d D%d causal, %s, indexer %d x %d (bf16, f32 weights), "
                        + "geometry %s, kernel %s, visited <= %.3f%n", n, h, kvHeads, d, pattern.name(), ih, id, g,
                        t.kernelName(), est.visitedFractionBound());
                t.print(est);
            }
            long a = System.nanoTime();
            SparsePlan p = LightningIndexer.of(topK, hostInputs).plan(ctx, q, k);
            double hm = (System.nanoTime() - a) / 1e6;
            System.out.printf(Locale.ROOT, "  host plan (LightningIndexer.plan in Java, once, %d pairs admitted) %9.1f ms%n",
                    p.pairsAdmitted(), hm);
        }
    }

    /**
     * The {@code --per-query} and {@code --indexer} timing of a device-estimated plan: {@code kernel}
     * (the attention kernel alone over the device plan the last estimate wrote, into {@code outA}) and
     * {@code estimate + kernel} (into {@code outB}), three warm-up calls of each, then {@code iters}
     * alternating pairs between CUDA events; medians, whether the two outputs are equal bit for bit,
     * and the attention kernel launched.
     */
    private record DevicePlanTimes(String kernelName, double kernelMs, double bothMs, boolean same) {

        static DevicePlanTimes measure(CudaBackend backend, CudaDeviceEstimatedPlan est, Tensor dq, Tensor dk, Tensor dv,
                                       Tensor outA, Tensor outB, RunOptions run, CudaStream stream, CudaEvents ev,
                                       int iters) {
            String kernelName = null;
            for (int i = 0; i < 3; i++) {
                backend.forwardAsync(est, dq, dk, dv, outB, null, run, stream);
                backend.forwardAsEstimated(est, dq, dk, dv, outA, null, run, stream);
                kernelName = CudaBackend.lastKernel(); // the attention kernel launched
            }
            stream.synchronize();
            double[] kernel = new double[iters];
            double[] both = new double[iters];
            for (int i = 0; i < iters; i++) {
                ev.start(stream);
                backend.forwardAsEstimated(est, dq, dk, dv, outA, null, run, stream);
                ev.stop(stream);
                kernel[i] = ev.millis();
                ev.start(stream);
                backend.forwardAsync(est, dq, dk, dv, outB, null, run, stream);
                ev.stop(stream);
                both[i] = ev.millis();
            }
            stream.synchronize();
            boolean same = Arrays.equals(outA.toHost().toFloatArray(), outB.toHost().toFloatArray());
            return new DevicePlanTimes(kernelName, median(kernel), median(both), same);
        }

        /** The four lines under a run's header: the two times, the estimate's device memory, the comparison. */
        void print(CudaDeviceEstimatedPlan est) {
            System.out.printf(Locale.ROOT, "  kernel alone (device plan) %9.3f ms%n", kernelMs);
            System.out.printf(Locale.ROOT, "  estimate + kernel          %9.3f ms  (%.3f x kernel)%n", bothMs,
                    bothMs / kernelMs);
            System.out.printf(Locale.ROOT, "  estimate's device memory   %9.1f MiB%n", est.deviceBytes() / 1048576.0);
            System.out.printf(Locale.ROOT, "  outputs bit for bit equal: %s%n", same);
        }
    }
}
