package dev.sparsa.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.bench.CacheEviction;
import dev.sparsa.bench.DecodeProblem;
import dev.sparsa.bench.MemoryCopy;
import dev.sparsa.bench.PlacedCaches;
import dev.sparsa.bench.StepAllocation;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SpanTable;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa decode}: one decode step against a generated KV cache, on every available backend and
 * dtype: dense on a contiguous and on a paged cache, Quest and top-k at two budgets, sinks + window,
 * with the bandwidth each reaches next to the machine's copy bandwidth measured in the same run. A
 * table on stdout, or one JSON object ({@code machine}, {@code problem}, {@code rows}) with {@code
 * --json}; progress on stderr. Exits 1 when an output misses its dtype's tolerance against the fp64
 * oracle of the same selection.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Decode one step against a generated KV cache: dense, paged, Quest, top-k, sinks + window.")
final class DecodeCommand implements Callable<Integer> {

    @Option(names = "--quick", description = "A small problem (H=8/2, N=4096, D=64) for smoke tests.")
    boolean quick;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of the table.")
    boolean json;

    @Option(names = {"-b", "--batch"}, description = "Sequences (default ${DEFAULT-VALUE}).", defaultValue = "1")
    int batch;

    @Option(names = {"-H", "--heads"}, description = "Query heads (default 32; 8 with --quick).")
    Integer heads;

    @Option(names = "--kv-heads", description = "Key/value heads (default 8; 2 with --quick).")
    Integer kvHeads;

    @Option(names = {"-n", "--kv-length"}, description = "Tokens in each sequence's cache (default 32768; 4096 with --quick).")
    Integer kvLength;

    @Option(names = {"-d", "--dim"}, description = "Head dimension (default 128; 64 with --quick).")
    Integer dim;

    @Option(names = "--rows", description = "Query rows per sequence, 1 to 64 (default ${DEFAULT-VALUE}).", defaultValue = "1")
    int rows;

    @Option(names = "--dtypes", split = ",", description = "Cache dtypes (default ${DEFAULT-VALUE}).", defaultValue = "f32,bf16")
    List<String> dtypes;

    @Option(names = "--page-size", description = "Tokens per page, a power of two (default ${DEFAULT-VALUE}).", defaultValue = "16")
    int pageSize;

    @Option(names = "--scatter-pages", description = "Hand the paged cache's pages out in a random order (seeded),"
            + " as in a pool where other sequences took and freed pages; default: in address order.")
    boolean scatterPages;

    @Option(names = "--page-layout", description = "Order of a page's rows: hnd (head after head, the default) or nhd"
            + " (token after token, every head's row of a token side by side, as vLLM's cache; default ${DEFAULT-VALUE}).",
            defaultValue = "hnd")
    String pageLayout;

    @Option(names = "--budgets", split = ",", description = "Sparse budgets as fractions of the cache (default ${DEFAULT-VALUE}).",
            defaultValue = "0.125,0.03125")
    List<Double> budgets;

    @Option(names = "--sinks", description = "Sinks of the sinks + window row (default ${DEFAULT-VALUE}).", defaultValue = "64")
    int sinks;

    @Option(names = "--backend", description = "Run only this backend (cpu, cuda).")
    String backendName;

    @Option(names = "--repeat", description = "Timed steps per row after the warm-up; the median is reported (default 7; 3 with --quick).")
    Integer repeat;

    @Option(names = "--seed", description = "Seed of the generated problem (default ${DEFAULT-VALUE}).", defaultValue = "42")
    long seed;

    @Option(names = "--warmup-ms", description = "Warm-up per row, at least 20 steps (default ${DEFAULT-VALUE} ms; three times"
            + " as long for the first row of each backend and dtype); it goes on while the JIT is compiling, up to 10"
            + " times as long (at least 10 s).", defaultValue = "1000")
    int warmupMillis;

    @Option(names = "--cold", description = "Read a buffer larger than the CPU's caches on the host before each timed"
            + " step and selection (not timed), so that a host backend finds none of its rows in the CPU caches, as in"
            + " a loop whose other layers run between two steps of a layer (default: steps back to back).")
    boolean cold;

    @Option(names = "--cold-mib", description = "MiB that --cold reads (default: twice the largest cache the OS reports"
            + " for CPU 0, at least 64).")
    Integer coldMib;

    @Option(names = "--copy-mib", description = "MiB each thread copies for the copy bandwidth (default ${DEFAULT-VALUE}).",
            defaultValue = "256")
    int copyMib;

    private final PrintStream out;
    private final PrintStream err;
    private final JitActivity jit = JitActivity.ofThisJvm();
    private final StepAllocation allocation;

    DecodeCommand(PrintStream out, PrintStream err) {
        this(out, err, StepAllocation.ofThisJvm());
    }

    /** Counts the bytes a step allocates with {@code allocation} (tests give a count of their own). */
    DecodeCommand(PrintStream out, PrintStream err, StepAllocation allocation) {
        this.out = out;
        this.err = err;
        this.allocation = allocation;
    }

    private record Case(String name, DecodePattern pattern, boolean paged, long budget) {
    }

    /** Backends whose rows read host memory, the memory the copy bandwidth measures. */
    private final Set<String> onHost = new HashSet<>();

    /** Where a backend runs this command's caches: the host for backends that run there, else its default device. */
    private static Device placement(AttentionBackend backend) {
        return backend.runsOn(Device.CPU) ? Device.CPU : backend.defaultDevice();
    }

    /**
     * Refuses, before anything is generated, a problem that no (dtype, backend) pair runs: the table
     * would be empty. Pairs that one backend refuses are skipped later, each with its reason.
     */
    private void requireSomeBackendRuns(List<AttentionBackend> backends, List<DType> types, int d) {
        List<String> reasons = new ArrayList<>();
        for (DType t : types) {
            for (AttentionBackend b : backends) {
                String refusal = b.decodeRefusal(new DecodeShape(placement(b), t, d, d, rows));
                if (refusal == null) {
                    return;
                }
                if (!reasons.contains(b.name() + ": " + refusal)) {
                    reasons.add(b.name() + ": " + refusal);
                }
            }
        }
        throw new IllegalArgumentException("no backend runs this problem (" + String.join("; ", reasons) + ")");
    }

    @Override
    public Integer call() throws IOException {
        int h = heads != null ? heads : quick ? 8 : 32;
        int kvh = kvHeads != null ? kvHeads : quick ? 2 : 8;
        int n = kvLength != null ? kvLength : quick ? 4096 : 32768;
        int d = dim != null ? dim : quick ? 64 : 128;
        int reps = repeat != null ? repeat : quick ? 3 : 7;
        validate(h, kvh, n, d, reps);
        List<DType> types = dtypes.stream().map(DemoCommand::dtype).toList();
        requireHeap(h, kvh, n, d, types, Runtime.getRuntime().maxMemory());
        List<AttentionBackend> backends = backendName == null ? Backends.available() : List.of(Backends.get(backendName));
        for (AttentionBackend b : backends) {
            if (!b.availability().available()) {
                throw new IllegalArgumentException("--backend: " + b.name() + " is not available: " + b.availability().reason());
            }
        }
        requireSomeBackendRuns(backends, types, d);
        DecodeProblem problem = new DecodeProblem(batch, h, kvh, n, d, rows, seed);
        List<Case> cases = cases(n);
        err.printf("sparsa decode: B=%d H=%d (kv %d) N=%d D=%d rows=%d, page %d, dtypes %s, backends %s%n", batch, h, kvh,
                n, d, rows, pageSize, types, backends.stream().map(AttentionBackend::name).toList());
        int copyThreads = Runtime.getRuntime().availableProcessors();
        // the copy runs before each dtype's rows and after the last: on a shared machine the rows and
        // the copy then see the same conditions; machine.copyGBps is the median of these samples
        List<Double> copySamples = new ArrayList<>();
        copySamples.add(copyBandwidth(copyThreads));
        Progress progress = new Progress(err, types.size() * backends.size() * cases.size());
        List<DecodeRow> results = new ArrayList<>();
        for (DType dtype : types) {
            if (dtype != types.get(0)) {
                copySamples.add(copyBandwidth(copyThreads));
            }
            long tg = System.nanoTime();
            int pages = batch * ((n + pageSize - 1) / pageSize);
            float[] ks = {DecodeProblem.E4M3_KEY_SCALE};
            float[] vs = {DecodeProblem.E4M3_VALUE_SCALE};
            ContiguousKvCache flat = dtype.isScaled() ? ContiguousKvCache.allocateE4m3(batch, kvh, n, d, d, ks, vs)
                    : ContiguousKvCache.allocate(dtype, batch, kvh, n, d, d);
            Layout order = pageLayout.equals("nhd") ? Layout.BSHD : Layout.BHSD;
            PagedKvCache paged = dtype.isScaled()
                    ? PagedKvCache.allocateE4m3(order, batch, kvh, d, d, pageSize, pages, true, ks, vs)
                    : PagedKvCache.allocate(dtype, order, batch, kvh, d, d, pageSize, pages, true);
            problem.fill(flat, paged);
            if (scatterPages) {
                paged = scattered(paged, seed);
            }
            Tensor q = problem.query(dtype);
            ReferenceResult dense = ReferenceDecode.decode(q, flat, null, DecodeOptions.defaults().run());
            progress.note(String.format("%s: generated the caches and the fp64 dense oracle in %.1fs", dtype,
                    (System.nanoTime() - tg) / 1e9));
            for (AttentionBackend backend : backends) {
                Device device = placement(backend);
                if (device == Device.CPU) {
                    onHost.add(backend.name());
                }
                // judged on the shape of the caches where the backend runs (a device backend refuses
                // host caches by design), before anything is copied there
                String refusal = backend.decodeRefusal(DecodeShape.of(flat, rows).on(device));
                if (refusal != null) {
                    progress.note(backend.name() + ": skipped, " + refusal);
                    continue;
                }
                List<Timed> timed = new ArrayList<>();
                try (PlacedCaches placed = PlacedCaches.on(backend, device, flat, paged, q)) {
                    double denseFlat = Double.NaN;
                    double densePaged = Double.NaN;
                    for (Case c : cases) {
                        String label = backend.name() + " " + dtype + " " + (c.paged ? "paged " : "contiguous ") + c.name;
                        long step = progress.begin(label);
                        KvCache host = c.paged ? paged : flat;
                        // the first row of a backend and dtype warms up three times as long: its steps are the
                        // ones during which the JIT compiles the decode loops
                        long warm = (c == cases.getFirst() ? 3L : 1L) * warmupMillis * 1_000_000L;
                        Timed t = timeOne(backend, c, placed.cache(c.paged), placed.q(), reps, warm);
                        if (c.pattern instanceof DecodePattern.Dense) {
                            if (c.paged) {
                                densePaged = t.millis();
                            } else {
                                denseFlat = t.millis();
                            }
                        }
                        double speedup = (c.paged ? densePaged : denseFlat) / t.millis();
                        timed.add(t.withSpeedup(speedup));
                        long bytes = bytesTouched(c, host, t.selection(), dtype);
                        double gbPerSec = bytes / (t.millis() * 1e6);
                        // the copy measures the host's memory: a device's rows are not a share of it
                        String share = device == Device.CPU
                                ? String.format(" (%.0f%% of the last copy)", 100 * gbPerSec / copySamples.getLast())
                                : "";
                        String allocated = t.allocatedBytesPerStep() < 0 ? ""
                                : String.format(", %.2f MB allocated a step", t.allocatedBytesPerStep() / 1e6);
                        progress.end(step, String.format("%.2f ms, %.1f GB/s%s, %.2fx%s", t.millis(), gbPerSec, share,
                                speedup, allocated));
                        String warning = StepAllocation.warning(label, t.allocatedBytesPerStep(), bytes);
                        if (warning != null) {
                            err.println(warning);
                        }
                    }
                }
                // the oracles of the sparse rows after the backend's timed rows: each gathers the cache in fp64
                // (hundreds of MB at 32k keys), and a heap grown and shrunk between timed rows made the rows
                // after it commit fresh pages while they were timed (2-4 x slower bf16 top-k rows in some runs)
                for (Timed t : timed) {
                    Case c = t.c();
                    DecodeRow row = finish(backend, t, c.paged ? paged : flat, q, dtype, dense).withSpeedup(t.speedup());
                    results.add(row);
                    progress.note(String.format("%s %s %s %s: err %.2e, recall %.3f", backend.name(), dtype,
                            c.paged ? "paged" : "contiguous", c.name, row.relErrVsOracle(), row.recall()));
                }
            }
        }
        copySamples.add(copyBandwidth(copyThreads));
        double[] sorted = copySamples.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double copyGBps = sorted[sorted.length / 2];
        if (json) {
            out.println(toJson(h, kvh, n, d, reps, types, copyGBps, copyThreads, copySamples, results));
        } else {
            printTable(h, kvh, n, d, copyGBps, results);
        }
        List<DecodeRow> bad = results.stream().filter(r -> !r.withinTolerance()).toList();
        for (DecodeRow r : bad) {
            err.printf("sparsa decode: %s %s %s %s: relErrVsOracle %.3e exceeds the %s tolerance %.0e%n", r.backend(),
                    r.kvLayout(), r.dtype(), r.pattern(), r.relErrVsOracle(), r.dtype(),
                    DemoCommand.tolerance(DType.parse(r.dtype())));
        }
        return bad.isEmpty() ? 0 : 1;
    }

    private void validate(int h, int kvh, int n, int d, int reps) {
        if (batch < 1 || h < 1 || kvh < 1 || n < 1 || d < 1) {
            throw new IllegalArgumentException("--batch, --heads, --kv-heads, --kv-length, --dim: must be >= 1, got " + batch
                    + ", " + h + ", " + kvh + ", " + n + ", " + d);
        }
        if (h % kvh != 0) {
            throw new IllegalArgumentException("--heads: " + h + " is not a multiple of --kv-heads " + kvh);
        }
        if (rows < 1 || rows > 64) {
            throw new IllegalArgumentException("--rows: must be in [1, 64], got " + rows);
        }
        if (pageSize < 1 || Integer.bitCount(pageSize) != 1) {
            throw new IllegalArgumentException("--page-size: must be a power of two, got " + pageSize);
        }
        if (!pageLayout.equals("hnd") && !pageLayout.equals("nhd")) {
            throw new IllegalArgumentException("--page-layout: must be hnd or nhd, got " + pageLayout);
        }
        if (reps < 1) {
            throw new IllegalArgumentException("--repeat: must be >= 1, got " + reps);
        }
        if (budgets.isEmpty()) {
            throw new IllegalArgumentException("--budgets: give at least one fraction");
        }
        for (double f : budgets) {
            if (!(f > 0 && f <= 1)) {
                throw new IllegalArgumentException("--budgets: each must be in (0, 1], got " + f);
            }
        }
        if (warmupMillis < 0 || copyMib < 1) {
            throw new IllegalArgumentException("--warmup-ms and --copy-mib: need >= 0 and >= 1, got " + warmupMillis
                    + " and " + copyMib);
        }
        if (coldMib != null && (coldMib < 1 || coldMib > CacheEviction.MAX_MIB)) {
            throw new IllegalArgumentException("--cold-mib: must be in [1, " + CacheEviction.MAX_MIB + "], got "
                    + coldMib);
        }
        if (sinks < 0) {
            throw new IllegalArgumentException("--sinks: must be >= 0, got " + sinks);
        }
    }

    /**
     * Heap one dtype's rows need, in bytes (the caches of one dtype are dropped before the next):
     * the contiguous and the paged cache (K, V and the page bounds), one sequence's K and V gathered
     * in f32 for the oracle, the f32 chunks the generator appends, a fixed 64 MiB for the JVM, and what
     * {@code --cold} reads.
     */
    long heapNeeded(int h, int kvh, int n, int d, List<DType> types) {
        long size = types.stream().mapToLong(t -> t == DType.F32 ? 4 : 2).max().orElse(4);
        long pages = (long) batch * ((n + (long) pageSize - 1) / pageSize);
        long contiguous = 2L * batch * kvh * n * d * size;
        long paged = 2L * pages * kvh * pageSize * d * size + 2L * pages * kvh * d * size;
        long oracle = 2L * kvh * n * d * 4 + 8L * batch * h * rows * d;
        long generator = 2L * kvh * 1024 * d * 4;
        return contiguous + paged + oracle + generator + (64L << 20) + (cold ? (long) evictMib() << 20 : 0);
    }

    /** Refuses a problem that would not fit the heap, before allocating any of it. */
    private void requireHeap(int h, int kvh, int n, int d, List<DType> types, long maxHeap) {
        long need = heapNeeded(h, kvh, n, d, types);
        if (need > maxHeap) {
            throw new IllegalArgumentException(String.format("-n/--kv-length: B=%d KV heads %d N=%d D=%d needs about %.1f"
                    + " GiB of heap, the JVM has %.1f GiB; lower -n, --kv-heads, -b or -d, or raise -Xmx"
                    + " (JDK_JAVA_OPTIONS=-Xmx16g, for example)",
                    batch, kvh, n, d, need / (double) (1L << 30), maxHeap / (double) (1L << 30)));
        }
    }

    private List<Case> cases(int n) {
        List<Case> list = new ArrayList<>();
        list.add(new Case("dense", DecodePattern.dense(), false, n));
        list.add(new Case("dense", DecodePattern.dense(), true, n));
        for (double f : budgets) {
            int tokens = (int) Math.max(1, Math.round(f * n));
            list.add(new Case("quest(" + tokens + ")", DecodePattern.quest(tokens), true, tokens));
        }
        for (double f : budgets) {
            int tokens = (int) Math.max(1, Math.round(f * n));
            list.add(new Case("topk(" + tokens + ")", DecodePattern.topK(tokens), true, tokens));
        }
        int tokens = (int) Math.max(1, Math.round(budgets.get(0) * n));
        int s = Math.min(sinks, tokens - 1);
        list.add(new Case("sinks(" + s + ")+window(" + (tokens - s) + ")", DecodePattern.sinkWindow(s, tokens - s), true,
                tokens));
        return list;
    }

    /**
     * One row's timing on the backend: the step's median over {@code reps} after the warm-up, the selection's
     * alone, the selection the oracle reads, the last step's output on the host, and the speedup over dense
     * on the same layout (NaN until set).
     */
    private record Timed(Case c, double millis, double selectMillis, DecodeSelection selection, Tensor out,
                         double speedup, long allocatedBytesPerStep) {
        Timed withSpeedup(double s) {
            return new Timed(c, millis, selectMillis, selection, out, s, allocatedBytesPerStep);
        }
    }

    /**
     * The same sequences in a pool of the same size and order (HND or NHD) whose pages are handed out in a random
     * order (seeded): every page copied to its new place, the block tables pointing there, the bounds recomputed.
     */
    static PagedKvCache scattered(PagedKvCache from, long seed) {
        int pages = from.numPages();
        Layout order = from.pageLayout().orElseThrow(() -> new IllegalArgumentException("from: a pool in HND or NHD"
                + " order, got strides " + Arrays.toString(from.keyPages().strides())));
        PagedKvCache to = from.dtype().isScaled()
                ? PagedKvCache.allocateE4m3(order, from.batch(), from.kvHeads(), from.headDim(), from.valueDim(),
                        from.pageSize(), pages, from.hasPageBounds(), from.keyPages().scales(),
                        from.valuePages().scales())
                : PagedKvCache.allocate(from.dtype(), order, from.batch(), from.kvHeads(), from.headDim(),
                        from.valueDim(), from.pageSize(), pages, from.hasPageBounds());
        int[] place = new int[pages];
        Arrays.setAll(place, i -> i);
        SplittableRandom rnd = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
        for (int i = pages - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = place[i];
            place[i] = place[j];
            place[j] = t;
        }
        for (Tensor[] pair : new Tensor[][] {{from.keyPages(), to.keyPages()}, {from.valuePages(), to.valuePages()}}) {
            long e = pair[0].dtype().byteSize();
            long pageBytes = pair[0].stride(0) * e;
            for (int i = 0; i < pages; i++) {
                MemorySegment.copy(pair[0].segment(), pair[0].index(i, 0, 0, 0) * e, pair[1].segment(),
                        pair[1].index(place[i], 0, 0, 0) * e, pageBytes);
            }
        }
        for (int b = 0; b < from.batch(); b++) {
            int[] table = from.blockTable(b);
            for (int i = 0; i < table.length; i++) {
                table[i] = place[table[i]];
                to.allocator().claim(table[i]);
            }
            to.setBlockTable(b, table, from.length(b));
        }
        return to;
    }

    private Timed timeOne(AttentionBackend backend, Case c, KvCache cache, Tensor q, int reps, long min) {
        DecodeOptions options = DecodeOptions.defaults().withOutputDType(DType.F32);
        Device where = cache.device();
        Tensor outT = backend.allocate(where, DType.F32, Layout.BHSD, q.batch(), q.heads(), rows, cache.valueDim());
        Tensor lseT = backend.allocate(where, DType.F32, Layout.BHSD, q.batch(), q.heads(), rows, 1);
        try {
            boolean selects = !(c.pattern instanceof DecodePattern.Dense);
            // a step as Attention.decode(q, cache, pattern) runs it: the backend's selectAndDecode (the CUDA backend
            // chooses Quest's pages and top-k's keys and decodes in one pass), dense decode for the dense rows
            Runnable step = () -> {
                if (selects) {
                    backend.selectAndDecode(q, cache, c.pattern, outT, lseT, options);
                } else {
                    backend.decode(q, cache, (DecodeSelection) null, outT, lseT, options);
                }
            };
            // warm-up until the JIT has compiled the loops: at least 20 steps and min, then while the JIT is still
            // compiling (a compile of the Vector API kernels can outlast a fixed warm-up), up to the cap
            long warmStart = System.nanoTime();
            long cap = Math.max(10 * min, 10_000_000_000L);
            for (int i = 1; ; i++) {
                step.run();
                long elapsed = System.nanoTime() - warmStart;
                if (i >= 20 && elapsed >= min) {
                    if (!jit.busy()) {
                        break;
                    }
                    if (elapsed >= cap) {
                        err.printf(Locale.ROOT, "sparsa decode: %s %s: the JIT still compiles after a warm-up of"
                                + " %.1f s; timing anyway%n", backend.name(), c.name, elapsed / 1e9);
                        break;
                    }
                }
            }
            double[] times = new double[reps];
            long[] allocated = new long[reps];
            for (int i = 0; i < reps; i++) {
                evictIfCold();
                long a0 = allocation.total();
                long t0 = System.nanoTime();
                step.run();
                times[i] = (System.nanoTime() - t0) / 1e6;
                long a1 = allocation.total();
                allocated[i] = a0 < 0 || a1 < 0 ? -1 : a1 - a0;
            }
            // the selection alone (Attention.select: what a caller keeps or reuses), after a few untimed calls; the
            // oracle reads it (the backends' one-pass choice is the same: their tests compare the two)
            DecodeSelection sel = null;
            double[] selectTimes = new double[reps];
            for (int i = -3; selects && i < reps; i++) {
                evictIfCold();
                long t0 = System.nanoTime();
                sel = backend.select(q, cache, c.pattern, options);
                if (i >= 0) {
                    selectTimes[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            Arrays.sort(times);
            Arrays.sort(selectTimes);
            Arrays.sort(allocated);
            // a heap copy of the output: outT is closed below, and a host tensor's toHost() is itself
            Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, q.batch(), q.heads(), rows, cache.valueDim());
            Tensor.copy(outT, out);
            return new Timed(c, times[reps / 2], selectTimes[reps / 2], sel, out, Double.NaN, allocated[reps / 2]);
        } finally {
            outT.close();
            lseT.close();
        }
    }

    /** With {@code --cold}: reads {@link #evictMib()} MiB on this thread, one load per 64-byte line. */
    private void evictIfCold() {
        if (!cold) {
            return;
        }
        if (eviction == null) {
            eviction = new CacheEviction(evictMib());
        }
        eviction.run();
    }

    /** What {@code --cold} reads, in MiB: {@code --cold-mib}, else {@link CacheEviction#defaultMib()}. */
    int evictMib() {
        return coldMib != null ? coldMib : CacheEviction.defaultMib();
    }

    /** {@code --cold}'s buffer, made on first use. */
    private CacheEviction eviction;

    /** A timed row against the fp64 oracle of its selection ({@code dense} where it has none). */
    private DecodeRow finish(AttentionBackend backend, Timed t, KvCache host, Tensor qHost, DType dtype,
                             ReferenceResult dense) {
        Case c = t.c();
        ReferenceResult oracle = t.selection() == null ? dense
                : ReferenceDecode.decode(qHost, host, t.selection(), DecodeOptions.defaults().run());
        double relErr = oracle.maxRelativeError(t.out());
        double recall = ReferenceResult.meanRecall(oracle, dense);
        long bytes = bytesTouched(c, host, t.selection(), dtype);
        return new DecodeRow(backend.name(), c.name, c.paged ? "paged" : "contiguous", dtype.toString(), batch,
                host.maxLength(), c.budget, t.millis(), bytes, bytes / (t.millis() * 1e6), Double.NaN, relErr, recall,
                t.selectMillis(), relErr <= DemoCommand.tolerance(dtype), t.allocatedBytesPerStep());
    }

    /** K/V rows visited, plus what the selection reads, plus Q and the output (f32). */
    private long bytesTouched(Case c, KvCache cache, DecodeSelection sel, DType dtype) {
        long e = dtype.byteSize();
        int d = cache.headDim();
        int dv = cache.valueDim();
        long qh = (long) cache.batch() * (heads != null ? heads : quick ? 8 : 32) * rows;
        long bytes = qh * (d * e + dv * 4L);
        int[] lengths = cache.lengths();
        if (sel == null) {
            for (int b = 0; b < cache.batch(); b++) {
                bytes += cache.bytesOf(b);
            }
            return bytes;
        }
        SpanTable spans = sel.spanTable(lengths, rows);
        for (int b = 0; b < cache.batch(); b++) {
            for (int g = 0; g < cache.kvHeads(); g++) {
                bytes += spans.keyCount(b, g) * (d + dv) * e;
                if (c.pattern instanceof DecodePattern.Quest quest && cache instanceof PagedKvCache p) {
                    int pages = (lengths[b] + p.pageSize() - 1) / p.pageSize();
                    if (pages > quest.pageBudget(p.pageSize())) {
                        bytes += (long) (pages - 1) * 2 * d * e;
                    }
                } else if (c.pattern instanceof DecodePattern.TopK top && lengths[b] > top.tokens()) {
                    bytes += (long) lengths[b] * d * e;
                }
            }
        }
        return bytes;
    }

    /** The paged pool's order and page order where they are not the defaults, as " (NHD, pages scattered)". */
    private String poolNote() {
        List<String> notes = new ArrayList<>();
        if (pageLayout.equals("nhd")) {
            notes.add("NHD");
        }
        if (scatterPages) {
            notes.add("pages scattered");
        }
        return notes.isEmpty() ? "" : " (" + String.join(", ", notes) + ")";
    }

    /** The caches and Q where a backend runs: the host ones, or copies in its device's memory (closed after). */
    private void printTable(int h, int kvh, int n, int d, double copyGBps, List<DecodeRow> rows) {
        out.printf("Sparsa decode: B=%d H=%d (kv %d) N=%d D=%d rows=%d, page %d%s; copy bandwidth %.1f GB/s"
                + " (read + write); host caches %s%n", batch, h, kvh, n, d, this.rows, pageSize,
                poolNote(), copyGBps,
                cold ? "cold (" + evictMib() + " MiB read before each timed step)" : "warm");
        String fmt = "%-5s %-10s %-5s %-26s %7s %9s %9s %8s %7s %8s %10s %7s%n";
        out.printf(fmt, "back", "layout", "dtype", "pattern", "budget", "ms", "select ms", "GB/s", "%copy", "speedup",
                "errOracle", "recall");
        for (DecodeRow r : rows) {
            // the copy measures the host's memory: rows of a backend on another device show no share of it
            boolean host = onHost.contains(r.backend());
            // the selection's share of the step: '-' for dense rows, which select nothing
            String select = r.pattern().equals("dense") ? "-" : String.format("%.3f", r.selectMillis());
            out.printf(fmt, r.backend(), r.kvLayout(), r.dtype(), r.pattern(), r.budget(), String.format("%.3f", r.millis()),
                    select, String.format("%.1f", r.gbPerSec()),
                    host ? String.format("%.0f%%", 100 * r.gbPerSec() / copyGBps) : "-",
                    String.format("%.2fx", r.speedup()), String.format("%.2e", r.relErrVsOracle()),
                    String.format("%.4f", r.recall()));
        }
    }

    private double copyBandwidth(int threads) {
        try (MemoryCopy copy = new MemoryCopy(threads, (long) copyMib << 20)) {
            double gbps = copy.gbPerSec(5);
            err.printf("copy bandwidth: %.1f GB/s (%d threads, read + write)%n", gbps, threads);
            return gbps;
        }
    }

    private String toJson(int h, int kvh, int n, int d, int reps, List<DType> types, double copyGBps, int copyThreads,
                          List<Double> copySamples, List<DecodeRow> rows) throws IOException {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            Map<String, Object> machine = MachineInfo.collect();
            machine.put("copyGBps", copyGBps);
            machine.put("copyThreads", copyThreads);
            machine.put("copySamplesGBps", copySamples);
            machine.put("copyMethod", "MemorySegment.copy of " + copyMib + " MiB per thread, all threads at once, (read"
                    + " + write bytes) / time, median of 5 copies; sampled before each dtype's rows and at the end,"
                    + " copyGBps is the median of the samples");
            g.writeFieldName("machine");
            DemoCommand.writeMap(g, machine);
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("generator", "standard normal Q, K, V; about 1 key in 512 per (sequence, KV head) a needle along the group's mean query");
            p.put("seed", seed);
            p.put("batch", batch);
            p.put("heads", h);
            p.put("kvHeads", kvh);
            p.put("kvLength", n);
            p.put("headDim", d);
            p.put("queryRows", this.rows);
            p.put("pageSize", pageSize);
            p.put("pageLayout", pageLayout.equals("nhd")
                    ? "nhd: a page's rows token after token, every KV head's row of a token side by side"
                    : "hnd: a page's rows head after head");
            p.put("pageOrder", scatterPages ? "scattered: the pool's pages handed out in a random order"
                    : "in address order");
            p.put("dtypes", types.stream().map(DType::toString).toList());
            p.put("repeat", reps);
            p.put("millis", "median of the timed steps; a step is selection (if any) plus decode");
            p.put("allocatedBytesPerStep", "median over the timed steps of the bytes the JVM allocated on its heap during"
                    + " the step, every thread (-1: not counted by this JVM)");
            p.put("hostCaches", cold
                    ? "cold: " + evictMib() + " MiB read on the host before each timed step and selection"
                    : "warm: timed steps run back to back");
            g.writeFieldName("problem");
            DemoCommand.writeMap(g, p);
            g.writeArrayFieldStart("rows");
            for (DecodeRow r : rows) {
                g.writeStartObject();
                g.writeStringField("backend", r.backend());
                g.writeStringField("pattern", r.pattern());
                g.writeStringField("kvLayout", r.kvLayout());
                g.writeStringField("dtype", r.dtype());
                g.writeNumberField("batch", r.batch());
                g.writeNumberField("kvLength", r.kvLength());
                g.writeNumberField("budget", r.budget());
                g.writeNumberField("millis", r.millis());
                g.writeNumberField("bytesTouched", r.bytesTouched());
                g.writeNumberField("gbPerSec", r.gbPerSec());
                g.writeNumberField("speedup", r.speedup());
                g.writeNumberField("relErrVsOracle", r.relErrVsOracle());
                g.writeNumberField("recall", r.recall());
                g.writeNumberField("selectMillis", r.selectMillis());
                g.writeBooleanField("withinTolerance", r.withinTolerance());
                g.writeNumberField("allocatedBytesPerStep", r.allocatedBytesPerStep());
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        return w.toString();
    }
}
