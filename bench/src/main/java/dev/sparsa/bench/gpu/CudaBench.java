package dev.sparsa.bench.gpu;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cuda.CudaBackend;
import dev.sparsa.cuda.CudaDevice;
import dev.sparsa.cuda.CudaEvents;
import dev.sparsa.cuda.CudaStream;
import dev.sparsa.cuda.CudaTensors;
import dev.sparsa.pattern.Dense;
import dev.sparsa.patterns.Patterns;
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
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Times the CUDA kernels on the benchmark shapes of docs/PERFORMANCE.md: B=1, H=32, D=128, bf16,
 * 128×128 tiles, N in {@code --n} (default 8192,32768), patterns dense, causal, causal window 1024
 * and random block-sparse 10 % (non-causal, each (tile, block) kept with probability 0.1, seed 42).
 * Device tensors, CUDA events around each launch after warm-up, median of {@code --iters}. Prints one
 * line per (N, pattern) with TFLOP/s on admitted pairs (4·D·pairs, the convention PyTorch numbers
 * use) and on visited pairs (what the kernel computes). With {@code --masks DIR} it writes each
 * random block mask as {@code blocks-N.bin} (int32 little-endian: nTiles, nBlocks, then per tile a
 * count and nBlocks indices, −1 padded) so that the PyTorch harness builds an equal BlockMask.
 *
 * <p>Usage: {@code java dev.sparsa.bench.gpu.CudaBench [--n 8192,32768] [--iters 30] [--warmup 5] [--masks DIR] [--patterns dense,causal,window-1024,block-sparse-10%]}
 */
public final class CudaBench {
    private CudaBench() {
    }

    public static void main(String[] args) throws IOException {
        int[] ns = {8192, 32768};
        int iters = 30;
        int warmup = 5;
        Path masks = null;
        String[] patterns = {"dense", "causal", "window-1024", "block-sparse-10%"};
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> ns = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--masks" -> masks = Path.of(args[++i]);
                case "--patterns" -> patterns = args[++i].split(",");
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: CudaBench [--n 8192,32768] [--iters 30] [--warmup 5] [--masks DIR]");
            }
        }
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.err.println("cuda backend unavailable: " + backend.availability().reason());
            System.exit(2);
        }
        CudaDevice dev = backend.device();
        System.err.println("device: " + dev);
        int h = 32;
        int d = 128;
        TileGeometry g = new TileGeometry(128, 128);
        System.err.println("kernel: " + backend.kernelFor(AttentionShape.of(1, h, 128, 128, d), DType.BF16, g).name());
        System.out.printf("%-8s %-22s %10s %12s %14s %14s%n", "N", "pattern", "median ms", "density", "TFLOP/s adm", "TFLOP/s vis");
        for (int n : ns) {
            AttentionShape s = AttentionShape.of(1, h, n, n, d);
            try (Tensor q = randomDevice(dev, 1, h, n, d, 11);
                 Tensor k = randomDevice(dev, 1, h, n, d, 12);
                 Tensor v = randomDevice(dev, 1, h, n, d, 13);
                 Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                 CudaStream stream = new CudaStream(dev)) {
                for (String pattern : patterns) {
                    Options o = Options.defaults().withGeometry(g).withCausal(!pattern.equals("dense") && !pattern.startsWith("block"));
                    PlanContext ctx = PlanContext.of(s, o);
                    SparsePlan plan = switch (pattern) {
                        case "dense", "causal" -> Dense.INSTANCE.plan(ctx);
                        case "window-1024" -> window(ctx, 1024);
                        default -> randomBlocks(ctx, 0.10, 42, masks == null ? null : masks.resolve("blocks-" + n + ".bin"));
                    };
                    float[] ms = new float[iters];
                    try (PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()));
                         CudaEvents ev = new CudaEvents(dev)) {
                        for (int i = 0; i < warmup; i++) {
                            backend.forwardAsync(prepared, q, k, v, out, null, o.run(), stream);
                        }
                        stream.synchronize("warm-up");
                        for (int i = 0; i < iters; i++) {
                            ev.start(stream);
                            backend.forwardAsync(prepared, q, k, v, out, null, o.run(), stream);
                            ev.stop(stream);
                            ms[i] = ev.millis();
                        }
                    }
                    Arrays.sort(ms);
                    double med = ms[iters / 2];
                    double adm = 4.0 * d * plan.pairsAdmitted() / (med * 1e-3) / 1e12;
                    double vis = 4.0 * d * plan.pairsVisited() / (med * 1e-3) / 1e12;
                    System.out.printf("%-8d %-22s %10.3f %12.4f %14.1f %14.1f%n", n, "sparsa " + pattern, med, plan.density(), adm, vis);
                }
            }
        }
    }

    /** Causal sliding window of {@code w} keys (δ in [0, w−1]): the library's sliding window without sinks. */
    static SparsePlan window(PlanContext ctx, int w) {
        return Patterns.slidingWindow(w).plan(ctx);
    }

    /**
     * The library's seeded random block-sparse selection ({@link Patterns#randomBlockSparse}: each
     * (tile, block) kept with probability {@code p}, all heads sharing one layout); with {@code dump}
     * the kept blocks are also written for the PyTorch harness.
     */
    static SparsePlan randomBlocks(PlanContext ctx, double p, long seed, Path dump) throws IOException {
        SparsePlan plan = Patterns.randomBlockSparse(p, seed).plan(ctx);
        if (dump != null) {
            HeadLayout h = plan.layouts().get(0);
            int tiles = h.tileCount();
            int blocks = ctx.keyBlocks();
            ByteBuffer bb = ByteBuffer.allocate(4 * (2 + tiles * (1 + blocks))).order(ByteOrder.LITTLE_ENDIAN);
            bb.putInt(tiles).putInt(blocks);
            for (int t = 0; t < tiles; t++) {
                int c = h.fullEnd(t) - h.fullStart(t);
                if (h.partialEnd(t) > h.partialStart(t)) {
                    throw new IllegalStateException("a non-causal random block layout has only full blocks");
                }
                bb.putInt(c);
                for (int i = 0; i < blocks; i++) {
                    bb.putInt(i < c ? h.fullBlock(h.fullStart(t) + i) : -1);
                }
            }
            Files.createDirectories(dump.getParent());
            Files.write(dump, bb.array());
        }
        return plan;
    }

    private static Tensor randomDevice(CudaDevice dev, int b, int h, int n, int d, long seed) {
        Tensor t = Tensor.allocate(DType.BF16, Layout.BHSD, b, h, n, d);
        SplittableRandom r = new SplittableRandom(seed);
        java.lang.foreign.MemorySegment seg = t.segment();
        long count = t.elementCount();
        for (long i = 0; i < count; i++) {
            seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, DType.floatToBf16((float) (r.nextDouble() * 2 - 1)));
        }
        return CudaTensors.upload(dev, t);
    }
}
