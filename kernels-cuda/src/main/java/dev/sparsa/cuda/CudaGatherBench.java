package dev.sparsa.cuda;

import static dev.sparsa.cuda.BenchSupport.backendOrExit;
import static dev.sparsa.cuda.BenchSupport.median;
import static dev.sparsa.cuda.BenchSupport.randomBf16;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.patterns.selection.TokenListLayout;
import dev.sparsa.plan.HeadLayout;
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
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Token gather with head packing against the dense kernel: bf16, causal, B=1, H=32, D=128, N=32768
 * by default. The DSA-style plan gives each query row its own top-{@code top} token list (random
 * visible keys, a fixed seed; a row that sees at most {@code top} keys takes them all), one list per
 * KV head shared by that head's query heads, compiled by {@link TokenListLayout}; it runs for each
 * KV head count of {@code --kv} (1: MQA, as in MLA; 8: GQA groups of 4), with the head-packed work
 * list ({@code packed}: the mma.sync kernel, the query heads of a group stacked in one CTA) and without
 * ({@code unpacked}: one CTA per head and tile, {@code sparsa.cuda.headPacking=false}), alternately,
 * against the dense causal plan on the same shape. Each figure is the median over {@code --iters}
 * launches (CUDA events around each, after three warm-up calls), with TFLOP/s on computed pairs
 * ({@code 2 · pairsVisited · (D + DV)} / time). The target: packed DSA top-2048 at least half the
 * dense kernel's TFLOP/s. {@code --packed-only} skips the unpacked runs (at 32k they take about a
 * second each) and the comparison of the two outputs.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaGatherBench [--n 32768] [--heads 32] [--kv 1,8]
 * [--top 2048] [--geometry 128] [--iters 20] [--seed 1] [--packed-only]}. Not API.
 */
final class CudaGatherBench {
    private CudaGatherBench() {
    }

    public static void main(String[] args) {
        int n = 32768;
        int h = 32;
        int[] kvs = {1, 8};
        int top = 2048;
        int geometry = 128;
        int iters = 20;
        long seed = 1;
        boolean packedOnly = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> n = Integer.parseInt(args[++i]);
                case "--heads" -> h = Integer.parseInt(args[++i]);
                case "--kv" -> kvs = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--top" -> top = Integer.parseInt(args[++i]);
                case "--geometry" -> geometry = Integer.parseInt(args[++i]);
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                case "--packed-only" -> packedOnly = true;
                default -> {
                    System.err.println("unknown argument " + args[i] + "; usage: CudaGatherBench [--n 32768] [--heads 32] "
                            + "[--kv 1,8] [--top 2048] [--geometry 64|128] [--iters 20] [--seed 1] [--packed-only]");
                    System.exit(2);
                }
            }
        }
        CudaBackend backend = backendOrExit();
        CudaDevice dev = backend.device();
        Device where = Device.cuda(dev.ordinal());
        int d = 128;
        TileGeometry g = new TileGeometry(geometry, geometry);
        Options o = Options.causalMask().withGeometry(g);
        System.out.println("device: " + dev);
        System.out.printf(Locale.ROOT, "bf16 B1 H%d D%d N %d causal, geometry %s, median of %d launches%n", h, d, n, g, iters);
        double denseTflops = dense(backend, where, dev, AttentionShape.of(1, h, n, n, d), o, iters);
        for (int kv : kvs) {
            AttentionShape s = new AttentionShape(1, h, kv, n, n, d, d);
            PlanContext ctx = PlanContext.of(s, o);
            long t0 = System.nanoTime();
            SparsePlan plan = dsaPlan(ctx, top, seed);
            double planMs = (System.nanoTime() - t0) / 1e6;
            Tensor q = randomBf16(h, n, d, 11);
            Tensor k = randomBf16(kv, n, d, 12);
            Tensor v = randomBf16(kv, n, d, 13);
            try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
                 Tensor dv = CudaTensors.upload(dev, v);
                 Tensor outP = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 Tensor outU = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 CudaStream stream = new CudaStream(dev);
                 PreparedPlan prepared = backend.prepare(plan, where);
                 CudaEvents ev = new CudaEvents(dev)) {
                for (int i = 0; i < 3; i++) {
                    run(backend, prepared, dq, dk, dv, outP, o, stream, true);
                    if (!packedOnly) {
                        run(backend, prepared, dq, dk, dv, outU, o, stream, false);
                    }
                }
                stream.synchronize();
                run(backend, prepared, dq, dk, dv, outP, o, stream, true);
                String packedKernel = CudaBackend.lastKernel();
                String unpackedKernel = null;
                if (!packedOnly) {
                    run(backend, prepared, dq, dk, dv, outU, o, stream, false);
                    unpackedKernel = CudaBackend.lastKernel();
                }
                double[] packed = new double[iters];
                double[] unpacked = new double[iters];
                for (int i = 0; i < iters; i++) {
                    ev.start(stream);
                    run(backend, prepared, dq, dk, dv, outP, o, stream, true);
                    ev.stop(stream);
                    packed[i] = ev.millis();
                    if (!packedOnly) {
                        ev.start(stream);
                        run(backend, prepared, dq, dk, dv, outU, o, stream, false);
                        ev.stop(stream);
                        unpacked[i] = ev.millis();
                    }
                }
                stream.synchronize();
                double pm = median(packed);
                double flops = plan.flopsVisited();
                System.out.printf(Locale.ROOT, "DSA top-%d, KV heads %d (group %d): visited pairs %d, density %.4f, "
                        + "host plan %.0f ms%n", top, kv, s.groupSize(), plan.pairsVisited(), plan.density(), planMs);
                System.out.printf(Locale.ROOT, "  packed    %-26s %9.3f ms %8.1f TFLOP/s  (%.2f x dense)%n", packedKernel, pm,
                        flops / pm / 1e9, flops / pm / 1e9 / denseTflops);
                if (!packedOnly) {
                    double diff = maxAbsDiff(outP.toHost().toFloatArray(), outU.toHost().toFloatArray());
                    double um = median(unpacked);
                    System.out.printf(Locale.ROOT, "  unpacked  %-26s %9.3f ms %8.1f TFLOP/s  (%.2f x dense)%n", unpackedKernel,
                            um, flops / um / 1e9, flops / um / 1e9 / denseTflops);
                    System.out.printf(Locale.ROOT, "  packed vs unpacked: %.2f x faster; max |difference| of the outputs %.3g%n",
                            um / pm, diff);
                }
            }
        }
    }

    private static void run(CudaBackend backend, PreparedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out, Options o,
                            CudaStream stream, boolean packing) {
        System.setProperty("sparsa.cuda.headPacking", Boolean.toString(packing));
        backend.forwardAsync(prepared, q, k, v, out, null, o.run(), stream);
    }

    /** The dense causal plan's TFLOP/s on computed pairs; prints its line. */
    private static double dense(CudaBackend backend, Device where, CudaDevice dev, AttentionShape s, Options o, int iters) {
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        int n = s.queryLength();
        try (Tensor dq = CudaTensors.upload(dev, randomBf16(s.qHeads(), n, s.headDim(), 21));
             Tensor dk = CudaTensors.upload(dev, randomBf16(s.kvHeads(), n, s.headDim(), 22));
             Tensor dv = CudaTensors.upload(dev, randomBf16(s.kvHeads(), n, s.headDim(), 23));
             Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, s.qHeads(), n, s.valueDim());
             CudaStream stream = new CudaStream(dev);
             PreparedPlan prepared = backend.prepare(plan, where);
             CudaEvents ev = new CudaEvents(dev)) {
            for (int i = 0; i < 3; i++) {
                backend.forwardAsync(prepared, dq, dk, dv, out, null, o.run(), stream);
            }
            stream.synchronize();
            double[] t = new double[iters];
            for (int i = 0; i < iters; i++) {
                ev.start(stream);
                backend.forwardAsync(prepared, dq, dk, dv, out, null, o.run(), stream);
                ev.stop(stream);
                t[i] = ev.millis();
            }
            stream.synchronize();
            double ms = median(t);
            double tflops = plan.flopsVisited() / ms / 1e9;
            System.out.printf(Locale.ROOT, "dense causal: visited pairs %d%n", plan.pairsVisited());
            System.out.printf(Locale.ROOT, "  dense     %-26s %9.3f ms %8.1f TFLOP/s%n", CudaBackend.lastKernel(), ms, tflops);
            return tflops;
        }
    }

    /**
     * One layout per KV head, shared by its query heads: row {@code r} lists {@code top} distinct random
     * keys of {@code [0, r]} (all of them when {@code r < top}), ascending; seeded by (seed, KV head, row).
     */
    static SparsePlan dsaPlan(PlanContext ctx, int top, long seed) {
        AttentionShape s = ctx.shape();
        HeadLayout[] layouts = IntStream.range(0, s.kvHeads()).parallel().mapToObj(kh -> {
            int n = ctx.queryLength();
            int[][] lists = new int[n][];
            IntStream.range(0, n).parallel().forEach(r -> lists[r] = topK(r, Math.min(ctx.keyLength(), r + 1), top,
                    new SplittableRandom(seed * 0x9E3779B97F4A7C15L + kh * 0x100000001L + r)));
            return TokenListLayout.compile(ctx, r -> lists[r], (long) n * top);
        }).toArray(HeadLayout[]::new);
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe("DSA top-" + top + " per row, shared per KV head");
        for (int hd = 0; hd < s.qHeads(); hd++) {
            plan.head(hd, layouts[hd / s.groupSize()]);
        }
        return plan.build();
    }

    /** {@code k} distinct keys of {@code [0, visible)}, ascending (Floyd's sampling). */
    private static int[] topK(int row, int visible, int k, SplittableRandom rnd) {
        if (visible <= k) {
            return IntStream.range(0, visible).toArray();
        }
        long[] bits = new long[(visible + 63) >>> 6];
        for (int j = visible - k; j < visible; j++) {
            int t = rnd.nextInt(j + 1);
            if ((bits[t >>> 6] & 1L << t) != 0) {
                t = j;
            }
            bits[t >>> 6] |= 1L << t;
        }
        int[] keys = new int[k];
        int at = 0;
        for (int w = 0; w < bits.length; w++) {
            long x = bits[w];
            while (x != 0) {
                keys[at++] = (w << 6) + Long.numberOfTrailingZeros(x);
                x &= x - 1;
            }
        }
        return keys;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }
}
