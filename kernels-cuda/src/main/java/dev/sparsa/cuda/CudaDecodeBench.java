package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Decode on the GPU against the bandwidth it must use: bf16, 32 query / 8 KV heads, D = 128, one
 * query row, batch {@code --batch} (default 1,16), cache lengths {@code --n} (default
 * 8192,32768,131072); dense decode on a contiguous cache and on a paged cache (pages of {@code --page}
 * tokens in a shuffled block table), and Quest at 1/16 of the pages (page bounds, page choice and
 * decode on the device) and top-k at 1/16 of the keys (key scores, choice and decode on the device) at
 * batch 1. Each step is captured in a CUDA graph on a stream of the caller
 * and its replays timed by {@link LaunchTiming} (the device's time: metadata copy, kernels, merge; host
 * work between calls not counted): a warm-up of at least {@code --warmup} replays and {@code --warmup-s}
 * seconds, then {@code --iters} replays each between its own CUDA events, with an L2-evicting memset
 * before every replay unless {@code --l2-flush off} (a decode step's cache of 8k tokens fits in the L2;
 * in a model the other layers' caches evict it between steps). The host time of a direct call is
 * logged. Rows ending in {@code -step} time a prepared {@link CudaDecodeStep} at the same lengths: its
 * kernels alone in the graph, the metadata copied by its refresh between steps (not timed); at batch 1
 * a {@code -step-merge-in-decode} row times the same step with the split's merge inside the decode
 * kernel instead of the merge kernel (the same bits). In the
 * same run a device-to-device copy gives the bandwidth ceiling. GB/s counts the bytes
 * of K and V the call must read, at the median. The whole measurement runs {@code --repeats} times
 * (default 2) in the same process.
 *
 * <p>Prints one line per (repeat, batch, length, row): {@code rep batch kv_len row min_ms median_ms
 * max_ms GB/s of_copy}, then per (batch, length, row) {@code spread batch kv_len row median1/median2 S%},
 * the spread between the repeats' medians; lines starting with {@code #} are comments (the copy
 * bandwidth, the paged / contiguous and dense / Quest ratios). {@code kernels-cuda/bench/torch_decode_bench.py}
 * prints the same columns.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaDecodeBench [--batch 1,16] [--n 8192,32768,131072]
 * [--page 16] [--iters 50] [--warmup 5] [--warmup-s 0.5] [--repeats 2] [--l2-flush on|off]
 * [--split rule,rule:MIN:ITEMS,KEYS,none] [--quest 16,64] [--rows call,step,merge-in-decode,paged,quest,topk]}:
 * the first split rule runs every row, the others dense on the contiguous cache as extra rows (direct
 * calls and prepared steps, as {@code --rows} selects); Quest runs at a budget of 1/d of the tokens for
 * each d of {@code --quest}, and so does top-k ({@code topk}: key scores, choice and decode on the
 * device, captured and replayed like the other rows); {@code --rows} keeps only the named kinds
 * of row (default all: {@code call} the direct call on the contiguous cache, {@code step} its prepared
 * step, {@code merge-in-decode} the step with the merge in the decode kernel, {@code paged} the paged
 * call and step, {@code quest}, {@code topk}; with {@code step}, Quest and top-k also time their
 * prepared steps, rows {@code quest-1/d-step} and {@code topk-1/d-step}). A
 * bad flag prints one line and exits with status 2. Not API: it lives beside the decode lanes and
 * graph capture it times.
 */
final class CudaDecodeBench {
    static final String USAGE = "usage: CudaDecodeBench [--batch 1,16] [--n 8192,32768,131072] [--page 16] [--iters 50]"
            + " [--warmup 5] [--warmup-s 0.5] [--repeats 2] [--l2-flush on|off] [--split rule,rule:MIN:ITEMS,KEYS,none]"
            + " [--quest 16,64] [--rows call,step,merge-in-decode,paged,quest,topk] [--cache bf16|e4m3]";
    /** The kinds of row {@code --rows} may name, all of them by default. */
    static final List<String> ROWS = List.of("call", "step", "merge-in-decode", "paged", "quest", "topk");

    private CudaDecodeBench() {
    }

    /**
     * The parsed command line.
     *
     * @param batches batch sizes (each at least 1)
     * @param lengths cache lengths, each a positive multiple of {@code page}
     * @param page tokens per page (at least 1)
     * @param timing how each row is timed
     * @param repeats how many times the whole measurement runs (at least 1)
     * @param splits split rules, the first for every row
     * @param questDivisors Quest budgets as divisors of the length (each at least 1)
     * @param rows the kinds of row to time (a subset of {@link #ROWS})
     * @param cache the caches' dtype: bf16, or e4m3 (codes with a scale per KV head, read by a bf16 query;
     *     no Quest rows)
     */
    record Args(int[] batches, int[] lengths, int page, LaunchTiming.Settings timing, int repeats,
                List<SplitKv> splits, List<String> splitNames, int[] questDivisors, List<String> rows, DType cache) {

        /** Throws IllegalArgumentException, with a one-line message, on an unknown flag or a bad value. */
        static Args parse(String[] args) {
            int[] batches = {1, 16};
            int[] lengths = {8192, 32768, 131072};
            int page = 16;
            int iters = 50;
            int warmup = 5;
            double warmupSeconds = 0.5;
            int repeats = 2;
            boolean flush = true;
            String[] splits = {"rule"};
            int[] questDivisors = {16};
            List<String> rows = ROWS;
            DType cache = DType.BF16;
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                switch (flag) {
                    case "--batch" -> batches = LaunchTiming.intsFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--n" -> lengths = LaunchTiming.intsFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--page" -> page = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--iters" -> iters = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--warmup" -> warmup = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 0);
                    case "--warmup-s" -> warmupSeconds = LaunchTiming.secondsFlag(flag, LaunchTiming.value(args, i++));
                    case "--repeats" -> repeats = LaunchTiming.intFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--l2-flush" -> flush = LaunchTiming.switchFlag(flag, LaunchTiming.value(args, i++));
                    case "--split" -> splits = LaunchTiming.value(args, i++).split(",", -1);
                    case "--quest" -> questDivisors = LaunchTiming.intsFlag(flag, LaunchTiming.value(args, i++), 1);
                    case "--rows" -> {
                        rows = List.of(LaunchTiming.value(args, i++).split(",", -1));
                        for (String r : rows) {
                            if (!ROWS.contains(r)) {
                                throw new IllegalArgumentException("--rows: unknown row kind '" + r + "' ("
                                        + String.join(",", ROWS) + ")");
                            }
                        }
                    }
                    case "--cache" -> {
                        String c = LaunchTiming.value(args, i++);
                        cache = switch (c) {
                            case "bf16" -> DType.BF16;
                            case "e4m3" -> DType.E4M3;
                            default -> throw new IllegalArgumentException("--cache: bf16 or e4m3, got '" + c + "'");
                        };
                    }
                    default -> throw new IllegalArgumentException("unknown argument " + flag);
                }
            }
            for (int n : lengths) {
                if (n % page != 0) {
                    throw new IllegalArgumentException("--n: " + n + " is not a multiple of the page (" + page + ")");
                }
            }
            List<SplitKv> rules = new ArrayList<>();
            for (String sp : splits) {
                try {
                    rules.add(split(sp));
                } catch (RuntimeException e) {
                    throw new IllegalArgumentException("--split: bad rule '" + sp + "' (rule, rule:MIN:ITEMS, KEYS or none)");
                }
            }
            return new Args(batches, lengths, page, new LaunchTiming.Settings(iters, warmup, warmupSeconds, flush),
                    repeats, List.copyOf(rules), List.of(splits), questDivisors, rows, cache);
        }
    }

    public static void main(String[] args) {
        int status = run(args);
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Parses {@code args} and runs the benchmark; returns the exit status: 0, or 2 after one line on
     * standard error for a bad flag or when no CUDA device is usable (nothing is timed then).
     */
    static int run(String[] argv) {
        Args a;
        try {
            a = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("CudaDecodeBench: " + e.getMessage() + "; " + USAGE);
            return 2;
        }
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.err.println("CudaDecodeBench: cuda backend unavailable: " + backend.availability().reason());
            return 2;
        }
        CudaDevice dev = backend.device();
        System.err.println("device: " + dev);
        int hq = 32;
        int hk = 8;
        int d = 128;
        int page = a.page();
        LaunchTiming.Settings t = a.timing();
        double copy = copyBandwidth(dev, t.iters());
        System.out.printf(Locale.ROOT, "# device-to-device copy: %.0f GB/s (bytes read + written)%n", copy);
        DType cacheType = a.cache();
        System.out.printf(Locale.ROOT, "# caches: %s%s%n", cacheType, cacheType == DType.E4M3
                ? " (codes with a scale per KV head, bf16 query; Quest's page bounds e4m3 codes under K's scale)" : "");
        System.out.printf(Locale.ROOT, "# iters %d, warm-up >= %d replays and >= %.2f s per row, L2 flush %s, repeats %d%n",
                t.iters(), t.warmup(), t.warmupSeconds(), t.flushL2() ? "on (" + LaunchTiming.FLUSH_MIB + " MiB memset before each replay)" : "off",
                a.repeats());
        System.out.printf(Locale.ROOT, "# dependent launch in the steps' graphs: %s%n", DependentLaunch.status());
        System.out.printf(Locale.ROOT, "# %-3s %-6s %-8s %-28s %10s %10s %10s %8s %8s%n", "rep", "batch", "kv_len", "row",
                "min_ms", "median_ms", "max_ms", "GB/s", "of_copy");
        Map<String, double[]> medians = new LinkedHashMap<>();
        Results results = new Results(copy, a.repeats(), medians);
        DecodeOptions o = DecodeOptions.defaults().withSplit(a.splits().get(0));
        for (int rep = 1; rep <= a.repeats(); rep++) {
            for (int batch : a.batches()) {
                for (int n : a.lengths()) {
                    long kvBytes = 2L * batch * hk * n * d * cacheType.byteSize();
                    Tensor q = random(dev, DType.BF16, batch, hq, 1, d, 7);
                    Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, batch, hq, 1, d);
                    Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, batch, hq, 1, 1);
                    List<Tensor> held = new ArrayList<>(List.of(q, out, lse));
                    try {
                        Tensor k = random(dev, cacheType, batch, hk, n, d, 11);
                        Tensor v = random(dev, cacheType, batch, hk, n, d, 12);
                        held.add(k);
                        held.add(v);
                        int[] lens = new int[batch];
                        Arrays.fill(lens, n);
                        ContiguousKvCache contiguous = ContiguousKvCache.wrap(k, v, lens);
                        List<String> kinds = a.rows();
                        double dense = Double.NaN;
                        double stepMs = Double.NaN;
                        if (kinds.contains("call")) {
                            dense = results.row(rep, batch, n, "sparsa:dense-contiguous",
                                    time(backend, dev, q, contiguous, null, out, lse, o, t), kvBytes);
                        }
                        if (kinds.contains("step")) {
                            stepMs = results.row(rep, batch, n, "sparsa:dense-contiguous-step",
                                    timeStep(backend, dev, q, contiguous, DecodePattern.dense(), out, lse, o, t), kvBytes);
                        }
                        if (kinds.contains("call") && kinds.contains("step")) {
                            System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: prepared step / dense call = %.3f%n",
                                    rep, batch, n, stepMs / dense);
                        }
                        if (batch == 1 && kinds.contains("merge-in-decode")) {
                            // the same step with the split's merge inside the decode kernel (same bits)
                            double folded;
                            boolean was = CudaDecode.mergeInDecode;
                            try {
                                CudaDecode.mergeInDecode = true;
                                folded = results.row(rep, batch, n, "sparsa:dense-contiguous-step-merge-in-decode",
                                        timeStep(backend, dev, q, contiguous, DecodePattern.dense(), out, lse, o, t), kvBytes);
                            } finally {
                                CudaDecode.mergeInDecode = was;
                            }
                            if (kinds.contains("step")) {
                                System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: merge in the decode kernel / "
                                        + "merge kernel = %.3f%n", rep, batch, n, folded / stepMs);
                            }
                        }
                        for (int sp = 1; sp < a.splits().size(); sp++) {
                            DecodeOptions other = o.withSplit(a.splits().get(sp));
                            if (kinds.contains("call")) {
                                results.row(rep, batch, n, "sparsa:dense-contiguous-" + a.splitNames().get(sp),
                                        time(backend, dev, q, contiguous, null, out, lse, other, t), kvBytes);
                            }
                            if (kinds.contains("step")) {
                                results.row(rep, batch, n, "sparsa:dense-contiguous-step-" + a.splitNames().get(sp),
                                        timeStep(backend, dev, q, contiguous, DecodePattern.dense(), out, lse, other, t), kvBytes);
                            }
                        }
                        k.close();
                        v.close();
                        held.remove(k);
                        held.remove(v);
                        if (!kinds.contains("paged") && !kinds.contains("quest") && !kinds.contains("topk")) {
                            continue;
                        }
                        int pages = batch * (n / page);
                        Tensor kp = random(dev, cacheType, pages, hk, page, d, 13);
                        Tensor vp = random(dev, cacheType, pages, hk, page, d, 14);
                        held.add(kp);
                        held.add(vp);
                        PagedKvCache paged = PagedKvCache.wrap(kp, vp, null, page, batch, null);
                        shuffledTables(paged, batch, n, page, pages);
                        double pagedMs = Double.NaN;
                        double pagedStepMs = Double.NaN;
                        if (kinds.contains("paged")) {
                            pagedMs = results.row(rep, batch, n, "sparsa:dense-paged-" + page,
                                    time(backend, dev, q, paged, null, out, lse, o, t), kvBytes);
                            if (kinds.contains("call")) {
                                System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: paged / contiguous = %.3f"
                                        + " (target <= 1.1)%n", rep, batch, n, pagedMs / dense);
                            }
                            pagedStepMs = results.row(rep, batch, n, "sparsa:dense-paged-" + page + "-step",
                                    timeStep(backend, dev, q, paged, DecodePattern.dense(), out, lse, o, t), kvBytes);
                        }
                        if (batch == 1 && kinds.contains("topk")) {
                            for (int div : a.questDivisors()) {
                                DecodePattern.TopK top = DecodePattern.topK(n / div);
                                double topMs = results.row(rep, batch, n, "sparsa:topk-1/" + div + "-fused",
                                        time(backend, dev, q, paged, top, out, lse, o, t), kvBytes);
                                if (kinds.contains("paged")) {
                                    System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: dense paged / top-k 1/%d"
                                            + " = %.2f x (scores, choice and decode)%n", rep, batch, n, div, pagedMs / topMs);
                                }
                                if (kinds.contains("step")) {
                                    double topStepMs = results.row(rep, batch, n, "sparsa:topk-1/" + div + "-step",
                                            timeStep(backend, dev, q, paged, top, out, lse, o, t), kvBytes);
                                    if (kinds.contains("paged")) {
                                        System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: dense paged step / top-k"
                                                + " 1/%d step = %.2f x%n", rep, batch, n, div, pagedStepMs / topStepMs);
                                    }
                                }
                            }
                        }
                        if (batch == 1 && kinds.contains("quest")) {
                            // e4m3: random codes under the keys' scale (PagedKvCache.wrap wants the same scales)
                            Tensor bounds = cacheType == DType.E4M3 ? random(dev, cacheType, pages, hk, 2, d, 15)
                                    : CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, pages, hk, 2, d);
                            held.add(bounds);
                            PagedKvCache withBounds = PagedKvCache.wrap(kp, vp, bounds, page, batch, null);
                            shuffledTables(withBounds, batch, n, page, pages);
                            for (int div : a.questDivisors()) {
                                DecodePattern.Quest quest = DecodePattern.quest(n / div);
                                double questMs = results.row(rep, batch, n, "sparsa:quest-1/" + div + "-fused",
                                        time(backend, dev, q, withBounds, quest, out, lse, o, t), kvBytes);
                                if (kinds.contains("paged")) {
                                    System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: dense paged / quest 1/%d"
                                            + " = %.2f x (target >= 6 at 128k, 1/16)%n", rep, batch, n, div, pagedMs / questMs);
                                }
                                if (kinds.contains("step")) {
                                    double questStepMs = results.row(rep, batch, n, "sparsa:quest-1/" + div + "-step",
                                            timeStep(backend, dev, q, withBounds, quest, out, lse, o, t), kvBytes);
                                    if (kinds.contains("paged")) {
                                        System.out.printf(Locale.ROOT, "# rep %d batch %d kv_len %d: dense paged step / quest"
                                                + " 1/%d step = %.2f x (target >= 6 at 128k, 1/16)%n", rep, batch, n, div,
                                                pagedStepMs / questStepMs);
                                    }
                                }
                            }
                        }
                    } finally {
                        held.forEach(Tensor::close);
                    }
                }
            }
        }
        System.out.println("# spread batch kv_len row median_ms(per repeat) |max-min|/min of the medians");
        medians.forEach((key, m) -> System.out.println(LaunchTiming.spreadLine(key, m, "%.4f")));
        return 0;
    }

    /** Prints the rows and keeps each row's median per repeat for the spread lines. */
    private record Results(double copy, int repeats, Map<String, double[]> medians) {
        /** Prints one row; returns its median in ms. */
        double row(int rep, int batch, int n, String what, LaunchTiming.Stats st, long bytes) {
            double gbps = bytes / (st.median() * 1e6);
            System.out.printf(Locale.ROOT, "%-5d %-6d %-8d %-28s %10.4f %10.4f %10.4f %8.0f %7.1f%%%n", rep, batch, n, what,
                    st.min(), st.median(), st.max(), gbps, 100 * gbps / copy);
            medians.computeIfAbsent(String.format(Locale.ROOT, "%-6d %-8d %-28s", batch, n, what),
                    key -> new double[repeats])[rep - 1] = st.median();
            return st.median();
        }
    }

    /** Each sequence's pages in a shuffled order of the pool (the bounds, if kept, computed once here). */
    private static void shuffledTables(PagedKvCache cache, int batch, int n, int page, int pages) {
        int[] perm = new int[pages];
        Arrays.setAll(perm, i -> i);
        SplittableRandom r = new SplittableRandom(3);
        for (int i = pages - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int per = n / page;
        for (int b = 0; b < batch; b++) {
            cache.setBlockTable(b, Arrays.copyOfRange(perm, b * per, (b + 1) * per), n);
        }
    }

    /**
     * The device time of one decode step: the step captured in a CUDA graph on a stream of the caller
     * and its replays timed by {@link LaunchTiming} (so host work between calls is not counted); the
     * host time per direct call is logged next to it.
     */
    private static LaunchTiming.Stats time(CudaBackend backend, CudaDevice dev, Tensor q, KvCache cache,
                                           DecodePattern pattern, Tensor out, Tensor lse, DecodeOptions o,
                                           LaunchTiming.Settings settings) {
        double[] host = new double[settings.iters()];
        Runnable step = () -> {
            if (pattern != null) {
                backend.selectAndDecode(q, cache, pattern, out, lse, o);
            } else {
                backend.decode(q, cache, (DecodeSelection) null, out, lse, o);
            }
        };
        LaunchTiming.Stats stats;
        try (CudaStream stream = new CudaStream(dev); CudaStream.Scope scope = stream.use();
             LaunchTiming timer = new LaunchTiming(dev, stream, settings)) {
            for (int i = -5; i < host.length; i++) {
                long a = System.nanoTime();
                step.run();
                stream.synchronize();
                if (i >= 0) {
                    host[i] = (System.nanoTime() - a) / 1e6;
                }
            }
            stats = graphTime(stream, timer, step);
        }
        System.err.printf(Locale.ROOT, "  (%s: host time per direct call %.3f ms, kernels %s)%n",
                pattern == null ? "dense" : pattern.name(), LaunchTiming.Stats.of(host).median(), CudaBackend.lastKernel());
        return stats;
    }

    /** {@code step} captured once in a CUDA graph on {@code stream}, and the graph's replays timed. */
    private static LaunchTiming.Stats graphTime(CudaStream stream, LaunchTiming timer, Runnable step) {
        try (CudaGraph graph = CudaGraph.capture(stream, step)) {
            return timer.time(graph::launch);
        }
    }

    /**
     * The device time of a prepared step ({@link CudaDecodeStep}) of {@code pattern} at the cache's
     * lengths: its kernels alone captured in a graph (for Quest and top-k the choice, then the decode;
     * the metadata is copied by the step's refresh, outside the graph).
     */
    private static LaunchTiming.Stats timeStep(CudaBackend backend, CudaDevice dev, Tensor q, KvCache cache,
                                               DecodePattern pattern, Tensor out, Tensor lse, DecodeOptions o,
                                               LaunchTiming.Settings settings) {
        try (CudaStream stream = new CudaStream(dev); LaunchTiming timer = new LaunchTiming(dev, stream, settings);
             CudaDecodeStep step = backend.prepareDecodeStep(cache, pattern, q.heads(), q.seqLen(), cache.maxLength(), o,
                     stream)) {
            step.run(q, out, lse);
            stream.synchronize();
            return graphTime(stream, timer, () -> step.run(q, out, lse));
        }
    }

    /** Device-to-device copy of 4 GiB, GB/s counting bytes read and written (median). */
    private static double copyBandwidth(CudaDevice dev, int iters) {
        long bytes = 4L << 30;
        try (DeviceBuffer a = DeviceBuffer.scratch(dev, bytes); DeviceBuffer b = DeviceBuffer.scratch(dev, bytes);
             CudaStream s = new CudaStream(dev); CudaEvents ev = new CudaEvents(dev)) {
            double[] gb = new double[Math.min(iters, 10)];
            for (int i = -2; i < gb.length; i++) {
                ev.start(s);
                Cuda.check(cuMemcpyDtoDAsync(b.pointer(), a.pointer(), bytes, s.handle()), "cuMemcpyDtoDAsync");
                ev.stop(s);
                float m = ev.millis();
                if (i >= 0) {
                    gb[i] = 2.0 * bytes / (m * 1e6);
                }
            }
            return BenchSupport.median(gb);
        } finally {
            dev.releaseCachedMemory();
        }
    }

    /**
     * A device tensor of uniform values in [-1, 1): bf16, or e4m3 codes (every finite code equally likely, NaN
     * codes never) under the scale 1/448; a 32 MiB random block uploaded once and repeated across the tensor by
     * device copies.
     */
    private static Tensor random(CudaDevice dev, DType dtype, int b, int h, int s, int d, long seed) {
        Tensor t = dtype == DType.E4M3
                ? Tensor.onDeviceStrided(DeviceBuffer.cached(dev, (long) b * h * s * d), dtype, new int[] {b, h, s, d},
                        Layout.BHSD.strides(b, h, s, d), new float[] {1f / DType.E4M3_MAX})
                : CudaTensors.allocate(dev, dtype, Layout.BHSD, b, h, s, d, null);
        long bytes = t.spanBytes();
        int e = dtype.byteSize();
        int blockElems = (int) Math.min(bytes / e, 16L << 20);
        SplittableRandom r = new SplittableRandom(seed);
        java.lang.foreign.MemorySegment block;
        if (dtype == DType.E4M3) {
            byte[] codes = new byte[blockElems];
            for (int i = 0; i < blockElems; i++) {
                int c = r.nextInt(254); // 0x00..0x7E and 0x80..0xFE: the finite codes
                codes[i] = (byte) (c < 127 ? c : c + 1);
            }
            block = java.lang.foreign.MemorySegment.ofArray(codes);
        } else {
            short[] values = new short[blockElems];
            for (int i = 0; i < blockElems; i++) {
                values[i] = DType.floatToBf16((float) (r.nextDouble() * 2 - 1));
            }
            block = java.lang.foreign.MemorySegment.ofArray(values);
        }
        DeviceBuffer buf = (DeviceBuffer) t.deviceMemory();
        buf.copyFrom(block, 0);
        dev.makeCurrent();
        long blockBytes = (long) e * blockElems;
        for (long at = blockBytes; at < bytes; at += blockBytes) {
            long n = Math.min(blockBytes, bytes - at);
            Cuda.check(cuMemcpyDtoDAsync(buf.pointer(at), buf.pointer(), n, CudaStream.wrap(dev, 0L).handle()), "cuMemcpyDtoDAsync");
        }
        return t;
    }

    /** {@code rule}, {@code rule:MIN:ITEMS}, {@code none} or a fixed chunk length in keys. */
    private static SplitKv split(String s) {
        if (s.equals("rule")) {
            return SplitKv.rule();
        }
        if (s.equals("none")) {
            return SplitKv.none();
        }
        if (s.startsWith("rule:")) {
            String[] f = s.split(":");
            return SplitKv.rule(Integer.parseInt(f[1]), Integer.parseInt(f[2]));
        }
        return SplitKv.fixed(Integer.parseInt(s));
    }
}
