package dev.sparsa.bench.gpu;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cuda.CudaBackend;
import dev.sparsa.cuda.CudaDevice;
import dev.sparsa.cuda.CudaStream;
import dev.sparsa.cuda.CudaTensors;
import dev.sparsa.cuda.LaunchTiming;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Times the CUDA kernels on the benchmark shapes of docs/PERFORMANCE.md: B=1, H=32, D={@code --d}
 * (128 unless given; 64 and 256 too), bf16 (or e4m3 with {@code --dtype e4m3}: the same random values
 * quantised with a scale per head, head dim 128, bf16 output), 128×128 tiles, N in {@code --n} (default 8192,32768), patterns dense, causal, causal window 1024
 * and random block-sparse 10 % (non-causal, each (tile, block) kept with probability 0.1, seed 42).
 * Device tensors; each row timed by {@link LaunchTiming}: a warm-up of at least {@code --warmup}
 * launches and {@code --warmup-s} seconds, then {@code --iters} launches each between its own CUDA
 * events, with an L2-evicting memset before every launch unless {@code --l2-flush off}. The whole
 * measurement (every N and pattern) runs {@code --repeats} times (default 2) in the same process.
 *
 * <p>Prints one line per (repeat, N, pattern): {@code rep N row min_ms median_ms max_ms density
 * TFLOP/s_adm TFLOP/s_vis}, the row named {@code sparsa:PATTERN}, TFLOP/s at the median on admitted
 * pairs (4·D·H·pairs, the convention PyTorch numbers use) and on visited pairs (what the kernel
 * computes), {@code sparsa-e4m3:PATTERN} for e4m3 inputs; then per (N, pattern) {@code spread N row median1/median2 S%}, the spread between the
 * repeats' medians ({@link LaunchTiming#spreadPercent}). Lines starting with {@code #} are comments.
 * {@code kernels-cuda/bench/torch_bench.py} prints the same columns. With {@code --masks DIR} it
 * writes each random block mask as {@code blocks-N.bin} (int32 little-endian: nTiles, nBlocks, then
 * per tile a count and nBlocks indices, −1 padded) so that the PyTorch harness builds an equal
 * BlockMask.
 *
 * <p>Usage: {@code java dev.sparsa.bench.gpu.CudaBench [--n 8192,32768] [--iters 30] [--warmup 5]
 * [--warmup-s 0.5] [--repeats 2] [--l2-flush on|off] [--masks DIR]
 * [--patterns dense,causal,window-1024,block-sparse-10%] [--dtype bf16|e4m3]}. A bad flag prints one line and exits with
 * status 2; no usable CUDA device exits with status 2 too.
 */
public final class CudaBench {
    static final String USAGE = "usage: CudaBench [--n 8192,32768] [--d 128|64|256] [--iters 30] [--warmup 5] [--warmup-s 0.5]"
            + " [--repeats 2] [--l2-flush on|off] [--masks DIR] [--patterns " + String.join(",", Args.PATTERNS) + "]"
            + " [--dtype bf16|e4m3]";

    private CudaBench() {
    }

    /**
     * The parsed command line.
     *
     * @param ns sequence lengths, each a positive multiple of 128
     * @param timing how each row is timed
     * @param repeats how many times the whole measurement runs (at least 1)
     * @param masks where the random block masks are written, or null
     * @param patterns the patterns timed, each one of {@link #PATTERNS}
     * @param headDim the head (and value) dim, 64, 128 or 256
     * @param dtype the inputs' dtype, bf16 or e4m3 (head dim 128 only)
     */
    record Args(int[] ns, LaunchTiming.Settings timing, int repeats, Path masks, List<String> patterns, int headDim,
                DType dtype) {
        static final List<String> PATTERNS = List.of("dense", "causal", "window-1024", "block-sparse-10%");

        /** Throws IllegalArgumentException, with a one-line message, on an unknown flag or a bad value. */
        static Args parse(String[] args) {
            int[] ns = {8192, 32768};
            int iters = 30;
            int warmup = 5;
            double warmupSeconds = 0.5;
            int repeats = 2;
            boolean flush = true;
            Path masks = null;
            List<String> patterns = PATTERNS;
            int headDim = 128;
            DType dtype = DType.BF16;
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                switch (flag) {
                    case "--n" -> ns = LaunchTiming.intsFlag(flag, LaunchTiming.value(args, i++), 128);
                    case "--d" -> {
                        headDim = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                        if (headDim != 64 && headDim != 128 && headDim != 256) {
                            throw new IllegalArgumentException("--d: the benchmark runs head dims 64, 128 and 256, got " + headDim);
                        }
                    }
                    case "--iters" -> iters = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--warmup" -> warmup = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 0);
                    case "--warmup-s" -> warmupSeconds = LaunchTiming.secondsFlag(flag, LaunchTiming.value(args, i++));
                    case "--repeats" -> repeats = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--l2-flush" -> flush = LaunchTiming.switchFlag(flag, LaunchTiming.value(args, i++));
                    case "--masks" -> masks = Path.of(LaunchTiming.value(args, i++));
                    case "--dtype" -> {
                        String t = LaunchTiming.value(args, i++);
                        if (!t.equals("bf16") && !t.equals("e4m3")) {
                            throw new IllegalArgumentException("--dtype: the benchmark runs bf16 and e4m3, got '" + t + "'");
                        }
                        dtype = DType.parse(t);
                    }
                    case "--patterns" -> {
                        patterns = List.of(LaunchTiming.value(args, i++).split(",", -1));
                        for (String p : patterns) {
                            if (!PATTERNS.contains(p)) {
                                throw new IllegalArgumentException("--patterns: unknown pattern '" + p + "' (known: "
                                        + String.join(",", PATTERNS) + ")");
                            }
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown argument " + flag);
                }
            }
            if (dtype == DType.E4M3 && headDim != 128) {
                throw new IllegalArgumentException("--dtype e4m3: the e4m3 kernel runs head dim 128, got --d " + headDim);
            }
            for (int n : ns) {
                if (n % 128 != 0) {
                    throw new IllegalArgumentException("--n: " + n + " is not a multiple of 128 (the tile)");
                }
            }
            return new Args(ns, new LaunchTiming.Settings(iters, warmup, warmupSeconds, flush), repeats, masks, patterns,
                    headDim, dtype);
        }
    }

    public static void main(String[] args) throws IOException {
        int status = run(args);
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Parses {@code args} and runs the benchmark; returns the exit status: 0, or 2 after one line on
     * standard error for a bad flag or when no CUDA device is usable (nothing is timed then).
     */
    static int run(String[] argv) throws IOException {
        Args a;
        try {
            a = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("CudaBench: " + e.getMessage() + "; " + USAGE);
            return 2;
        }
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.err.println("CudaBench: cuda backend unavailable: " + backend.availability().reason());
            return 2;
        }
        CudaDevice dev = backend.device();
        System.err.println("device: " + dev);
        int h = 32;
        int d = a.headDim();
        TileGeometry g = new TileGeometry(128, 128);
        LaunchTiming.Settings t = a.timing();
        System.err.println("kernel: " + backend.kernelFor(AttentionShape.of(1, h, 128, 128, d), a.dtype(), g).name());
        System.out.printf(Locale.ROOT, "# iters %d, warm-up >= %d launches and >= %.2f s per row, L2 flush %s, repeats %d%n",
                t.iters(), t.warmup(), t.warmupSeconds(), t.flushL2() ? "on (" + LaunchTiming.FLUSH_MIB + " MiB memset before each launch)" : "off",
                a.repeats());
        System.out.printf(Locale.ROOT, "# %-3s %-8s %-24s %10s %10s %10s %10s %12s %12s%n", "rep", "N", "row", "min_ms",
                "median_ms", "max_ms", "density", "TFLOP/s_adm", "TFLOP/s_vis");
        Map<String, double[]> medians = new LinkedHashMap<>();
        for (int rep = 1; rep <= a.repeats(); rep++) {
            for (int n : a.ns()) {
                AttentionShape s = AttentionShape.of(1, h, n, n, d);
                try (Tensor q = randomDevice(dev, a.dtype(), 1, h, n, d, 11);
                     Tensor k = randomDevice(dev, a.dtype(), 1, h, n, d, 12);
                     Tensor v = randomDevice(dev, a.dtype(), 1, h, n, d, 13);
                     Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
                     CudaStream stream = new CudaStream(dev);
                     LaunchTiming timer = new LaunchTiming(dev, stream, t)) {
                    for (String pattern : a.patterns()) {
                        Options o = Options.defaults().withGeometry(g).withCausal(!pattern.equals("dense") && !pattern.startsWith("block"));
                        PlanContext ctx = PlanContext.of(s, o);
                        SparsePlan plan = switch (pattern) {
                            case "dense", "causal" -> Dense.INSTANCE.plan(ctx);
                            case "window-1024" -> window(ctx, 1024);
                            default -> randomBlocks(ctx, 0.10, 42, a.masks() == null ? null : a.masks().resolve("blocks-" + n + ".bin"));
                        };
                        LaunchTiming.Stats st;
                        try (PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()))) {
                            st = timer.time(() -> backend.forwardAsync(prepared, q, k, v, out, null, o.run(), stream));
                        }
                        double adm = 4.0 * d * plan.pairsAdmitted() / (st.median() * 1e-3) / 1e12;
                        double vis = 4.0 * d * plan.pairsVisited() / (st.median() * 1e-3) / 1e12;
                        String row = (a.dtype() == DType.E4M3 ? "sparsa-e4m3:" : "sparsa:") + pattern;
                        System.out.printf(Locale.ROOT, "%-5d %-8d %-24s %10.3f %10.3f %10.3f %10.4f %12.1f %12.1f%n",
                                rep, n, row, st.min(), st.median(), st.max(), plan.density(), adm, vis);
                        medians.computeIfAbsent(String.format(Locale.ROOT, "%-8d %-24s", n, row),
                                key -> new double[a.repeats()])[rep - 1] = st.median();
                    }
                }
            }
        }
        System.out.println("# spread N row median_ms(per repeat) |max-min|/min of the medians");
        medians.forEach((key, m) -> System.out.println(LaunchTiming.spreadLine(key, m, "%.3f")));
        return 0;
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

    /** Uniform values in [-1, 1) as bf16, or those values quantised to e4m3 with a scale per head, on the device. */
    private static Tensor randomDevice(CudaDevice dev, DType dtype, int b, int h, int n, int d, long seed) {
        Tensor t = Tensor.allocate(DType.BF16, Layout.BHSD, b, h, n, d);
        SplittableRandom r = new SplittableRandom(seed);
        java.lang.foreign.MemorySegment seg = t.segment();
        long count = t.elementCount();
        for (long i = 0; i < count; i++) {
            seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, DType.floatToBf16((float) (r.nextDouble() * 2 - 1)));
        }
        return CudaTensors.upload(dev, dtype == DType.E4M3 ? Tensor.quantizeE4m3PerHead(t, Layout.BHSD) : t);
    }
}
