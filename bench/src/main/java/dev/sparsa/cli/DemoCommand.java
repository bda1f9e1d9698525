package dev.sparsa.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.DispatchDecision;
import dev.sparsa.attention.Dispatcher;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.backend.PreparedRaggedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.tools.StructuredProblem;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa demo}: dense against block-sparse at several densities and one row per pattern
 * family, on every available backend and dtype, over a generated long-context-like problem; a
 * table on stdout, or one JSON object with {@code --json} (schema in docs/cli.md). Progress goes to stderr.
 * {@code --lengths} runs a ragged batch (packed tokens × heads × dim, each sequence its own
 * generated problem) instead; {@code --dispatch} chooses what runs for each pattern (its plan, dense
 * attention, or the cost model's choice). Exits 1 when a kernel misses the numerics contract's
 * tolerance against the fp64 oracle of the plan that ran.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run dense and sparse attention on a generated long-context problem and compare them.")
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--quick", description = "A small problem (B=1, H=2, N=512, D=64) for smoke tests.")
    boolean quick;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of the table.")
    boolean json;

    @Option(names = {"-b", "--batch"}, description = "Batch size (default ${DEFAULT-VALUE}).", defaultValue = "1")
    int batch;

    @Option(names = {"-H", "--heads"}, description = "Query heads (default 8; 2 with --quick).")
    Integer heads;

    @Option(names = "--kv-heads", description = "Key/value heads (default: the query heads).")
    Integer kvHeads;

    @Option(names = {"-n", "--seq"}, description = "Sequence length (default 4096; 512 with --quick).")
    Integer seq;

    @Option(names = {"-d", "--dim"}, description = "Head dimension (default 128; 64 with --quick).")
    Integer dim;

    @Option(names = "--dtypes", split = ",", description = "Input dtypes (default ${DEFAULT-VALUE}).",
            defaultValue = "f32,bf16")
    List<String> dtypes;

    @Option(names = "--densities", split = ",", description = "Random block-sparse densities (default ${DEFAULT-VALUE}).",
            defaultValue = "0.05,0.1,0.25,0.5")
    List<Double> densities;

    @Option(names = "--backend", description = "Run only this backend (cpu, cuda).")
    String backendName;

    @Option(names = "--no-families", description = "Skip the per-family rows (dense and block-sparse only).")
    boolean noFamilies;

    @Option(names = "--non-causal", description = "Non-causal attention (default: causal).")
    boolean nonCausal;

    @Option(names = "--repeat", description = "Timed repetitions per row after a warm-up; the median is reported (default 3; 5 with --quick).")
    Integer repeat;

    @Option(names = "--sample-rows", description = "Query rows per slice compared with the fp64 oracle (default ${DEFAULT-VALUE}).",
            defaultValue = "32")
    int sampleRows;

    @Option(names = "--seed", description = "Seed of the generated problem (default ${DEFAULT-VALUE}).", defaultValue = "42")
    long seed;

    @Option(names = "--lengths", split = ",", description = "A ragged batch of sequences of these lengths, packed "
            + "(tokens x heads x dim), instead of --batch x --seq.")
    List<Integer> lengths;

    @Option(names = "--dispatch", description = "What runs per pattern: sparse (its plan), dense, or auto (the backend's "
            + "cost model chooses, as the drop-in call does) (default ${DEFAULT-VALUE}).", defaultValue = "sparse")
    String dispatch;

    @Option(names = "--pattern", paramLabel = "TEXT",
            description = "Run only the catalogue patterns whose family, description or name contains TEXT (any case;"
                    + " repeatable); the dense row stays as the baseline, the random block-sparse rows are left out.")
    List<String> patternFilters;

    @Option(names = "--list-patterns", description = "List the catalogue's patterns (family, name, description) and exit.")
    boolean listPatterns;

    @Option(names = "--warmup-ms", description = "Minimum time per backend and dtype spent running dense and block-sparse"
            + " plans before the first timed row, so that the JIT has compiled the kernel (default 1000; 300 with --quick).")
    Integer warmupMillis;

    private final PrintStream out;
    private final PrintStream err;

    DemoCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** The demo's inputs in one dtype: one batch of equal lengths, or a packed ragged batch. */
    private record Inputs(Tensor q, Tensor k, Tensor v, RaggedBatch ragged) {
        /** Q, K and V of the whole batch, or of the ragged batch's longest sequence (what the warm-up runs). */
        Tensor[] longest() {
            if (ragged == null) {
                return new Tensor[] {q, k, v};
            }
            int best = 0;
            for (int i = 1; i < ragged.sequences(); i++) {
                if (ragged.queryLength(i) > ragged.queryLength(best)) {
                    best = i;
                }
            }
            return new Tensor[] {ragged.queries(q, best), ragged.keys(k, best), ragged.keys(v, best)};
        }
    }

    /** The fp64 dense oracle on the sampled rows: one result, or one per sequence (null where it has none). */
    private record DenseOracle(ReferenceResult whole, List<ReferenceResult> perSequence) {
    }

    @Override
    public Integer call() throws IOException {
        if (listPatterns) {
            printPatternList();
            return 0;
        }
        int h = heads != null ? heads : quick ? 2 : 8;
        int n = seq != null ? seq : quick ? 512 : 4096;
        int d = dim != null ? dim : quick ? 64 : 128;
        int kvh = kvHeads != null ? kvHeads : h;
        int reps = repeat != null ? repeat : quick ? 5 : 3; // quick calls are short: more of them steady the median
        long warmupNanos = (warmupMillis != null ? warmupMillis : quick ? 300 : 1000) * 1_000_000L;
        validate(batch, h, kvh, n, d, reps, warmupNanos);
        requireAtLeast("--sample-rows", sampleRows, 1);
        Dispatch mode = Dispatch.parse(dispatch);
        RaggedBatch ragged = null;
        if (lengths != null) {
            if (seq != null || batch != 1) {
                throw new IllegalArgumentException("--lengths: a ragged batch takes its sequences from --lengths; drop "
                        + (seq != null ? "--seq" : "--batch"));
            }
            ragged = RaggedBatch.packedLengths(lengths.stream().mapToInt(Integer::intValue).toArray());
            if (ragged.totalQueries() == 0) {
                throw new IllegalArgumentException("--lengths: at least one sequence must be longer than 0, got " + lengths);
            }
            n = ragged.maxQueryLength();
        }
        AttentionShape shape = new AttentionShape(batch, h, kvh, n, n, d, d);
        Options options = Options.defaults().withCausal(!nonCausal).withOutputDType(DType.F32).withDispatch(mode);
        List<DType> types = dtypes.stream().map(DemoCommand::dtype).toList();
        requireHeap(ragged == null ? shape : new AttentionShape(1, h, kvh, ragged.totalQueries(), ragged.totalKeys(), d, d),
                types, Runtime.getRuntime().maxMemory());
        List<AttentionBackend> backends = backendName == null ? Backends.available() : List.of(backend(backendName));
        for (AttentionBackend b : backends) {
            if (!b.availability().available()) {
                throw new IllegalArgumentException("--backend: " + b.name() + " is not available: " + b.availability().reason());
            }
        }
        List<Entry> patterns = patterns();
        int[] rows = sampleRows(n, sampleRows);
        err.printf("sparsa demo: %s H=%d (kv %d) D=%d %s, dtypes %s, backends %s, %d patterns, dispatch %s, %d sampled rows per slice%n",
                ragged == null ? "B=" + batch + " N=" + n : "ragged " + ragged, h, kvh, d, nonCausal ? "non-causal" : "causal",
                types, backends.stream().map(AttentionBackend::name).toList(), patterns.size(), mode, rows.length);
        Progress progress = new Progress(err, backends.size() * types.size() * patterns.size());
        long t0 = System.nanoTime();
        List<StructuredProblem.Generated> f32Problems = new ArrayList<>();
        if (ragged == null) {
            f32Problems.add(StructuredProblem.generate(shape, seed));
            progress.note(String.format("generated the problem in %.2fs (needle key %d, %d vertical columns)",
                    (System.nanoTime() - t0) / 1e9, f32Problems.get(0).needleKey(), f32Problems.get(0).verticalKeys().length));
        } else {
            for (int i = 0; i < ragged.sequences(); i++) {
                int len = ragged.queryLength(i);
                f32Problems.add(len == 0 ? null
                        : StructuredProblem.generate(new AttentionShape(1, h, kvh, len, len, d, d), seed + i));
            }
            progress.note(String.format("generated %d sequences in %.2fs", ragged.sequences(), (System.nanoTime() - t0) / 1e9));
        }
        List<DemoRow> results = new ArrayList<>();
        for (DType dtype : types) {
            Inputs in = inputs(f32Problems, ragged, shape, dtype);
            long tr = System.nanoTime();
            DenseOracle dense = denseOracle(in, options, rows);
            progress.note(String.format("fp64 dense oracle on %d sampled rows per slice (%s): %.2fs", rows.length, dtype,
                    (System.nanoTime() - tr) / 1e9));
            for (AttentionBackend backend : backends) {
                Tensor[] w = in.longest();
                AttentionShape ws = AttentionShape.of(w[0], w[1], w[2]);
                String refusal = backend.refusal(ws, dtype, backend.proposedGeometry(ws, dtype));
                if (refusal != null) {
                    progress.skip(patterns.size());
                    err.printf("sparsa demo: %s skips %s: %s%n", backend.name(), dtype, refusal);
                    continue;
                }
                long tw = System.nanoTime();
                int runs = warmUp(backend, in.longest(), options, warmupNanos);
                progress.note(String.format("warm-up on %s %s: %d runs in %.2fs before the first timed row", backend.name(),
                        dtype, runs, (System.nanoTime() - tw) / 1e9));
                DemoRow denseRow = null;
                for (Entry e : patterns) {
                    long step = progress.begin(backend.name() + " " + dtype + " " + e.name);
                    DemoRow row = in.ragged() == null ? runOne(backend, e, in, shape, options, dtype, rows, dense.whole(), reps)
                            : runRagged(backend, e, in, options, dtype, dense.perSequence(), reps);
                    if (e.pattern == Dense.INSTANCE) {
                        denseRow = row;
                    }
                    if (denseRow != null) {
                        row = row.against(denseRow.millis(), denseRow.planMillis());
                    }
                    results.add(row);
                    progress.end(step, String.format("%s, density %.3f, plan %.1f ms, %.1f ms, %.1f GFLOP/s, err %.2e",
                            row.dispatch(), row.density(), row.planMillis(), row.millis(), row.gflops(), row.relErrVsOracle()));
                }
            }
        }
        if (json) {
            out.println(toJson(shape, ragged, options, types, reps, rows.length, results));
        } else {
            printTable(shape, ragged, results);
        }
        List<DemoRow> bad = results.stream().filter(r -> !r.withinTolerance()).toList();
        if (!bad.isEmpty()) {
            for (DemoRow r : bad) {
                err.printf("sparsa demo: %s %s %s: relErrVsOracle %.3e exceeds the %s tolerance %.0e%n", r.backend(),
                        r.dtype(), r.pattern(), r.relErrVsOracle(), r.dtype(), tolerance(DType.parse(r.dtype())));
            }
            return 1;
        }
        return 0;
    }

    private static final JitActivity JIT = JitActivity.ofThisJvm();

    /**
     * Runs a dense and a causal random block-sparse plan (full and partial blocks) alternately until
     * at least {@code nanos} have passed, the dense runs stopped getting faster (the median of the
     * last three within 20 % of the three before) and the JIT is not compiling ({@link JitActivity}),
     * or 20 × {@code nanos} (at least 10 s) have passed. Returns how many runs it took.
     */
    private static int warmUp(AttentionBackend backend, Tensor[] qkv, Options options, long nanos) {
        PlanContext ctx = PlanContext.of(AttentionShape.of(qkv[0], qkv[1], qkv[2]), options);
        SparsePlan[] plans = {Dense.INSTANCE.plan(ctx), Patterns.randomBlockSparse(0.25, 1).plan(ctx)};
        long cap = Math.max(20 * nanos, 10_000_000_000L);
        List<Long> dense = new ArrayList<>();
        int runs = 0;
        long t0 = System.nanoTime();
        try (PreparedPlan densePlan = backend.prepare(plans[0]); PreparedPlan blocks = backend.prepare(plans[1])) {
            while (true) {
                long t = System.nanoTime();
                Attention.forwardWithLse(densePlan, qkv[0], qkv[1], qkv[2], options.run());
                dense.add(System.nanoTime() - t);
                Attention.forwardWithLse(blocks, qkv[0], qkv[1], qkv[2], options.run());
                runs += 2;
                long elapsed = System.nanoTime() - t0;
                if (elapsed >= cap || (elapsed >= nanos && settled(dense) && !JIT.busy())) {
                    return runs;
                }
            }
        }
    }

    /** True when the last three times' median is within 20 % of the median of the three before them. */
    static boolean settled(List<Long> times) {
        int n = times.size();
        if (n < 6) {
            return false;
        }
        return median3(times, n - 3) >= 0.8 * median3(times, n - 6);
    }

    private static long median3(List<Long> t, int from) {
        long a = t.get(from);
        long b = t.get(from + 1);
        long c = t.get(from + 2);
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    }

    /** The backend named by {@code --backend}, or a refusal that names the option and the backends there are. */
    private static AttentionBackend backend(String name) {
        try {
            return Backends.get(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--backend: no backend named '" + name + "'; found "
                    + Backends.all().stream().map(AttentionBackend::name).toList());
        }
    }

    /** A dtype from {@code --dtypes}, or a refusal that names the option (also {@code ./sparsa decode}'s). */
    static DType dtype(String name) {
        try {
            return DType.parse(name.trim());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--dtypes: unknown '" + name + "', expected f32, f16, bf16 or e4m3");
        }
    }

    /** Refuses values the demo cannot run, naming the option, before anything is allocated. */
    static void validate(int batch, int heads, int kvHeads, int n, int d, int reps, long warmupNanos) {
        requireAtLeast("-b/--batch", batch, 1);
        requireAtLeast("-H/--heads", heads, 1);
        requireAtLeast("--kv-heads", kvHeads, 1);
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("--kv-heads: the query heads (" + heads + ") must be a multiple of the"
                    + " key/value heads (" + kvHeads + ")");
        }
        requireAtLeast("-n/--seq", n, 1);
        if (d < 16 || d > 256 || d % 8 != 0) {
            throw new IllegalArgumentException("-d/--dim: must be a multiple of 8 in [16, 256], got " + d);
        }
        requireAtLeast("--repeat", reps, 1);
        requireAtLeast("--warmup-ms", warmupNanos, 0);
    }

    /** Refuses {@code value < min}, naming the option. */
    private static void requireAtLeast(String option, long value, long min) {
        if (value < min) {
            throw new IllegalArgumentException(option + ": must be >= " + min + ", got " + value);
        }
    }

    /**
     * Heap the demo needs for this shape, in bytes: Q, K and V in f32 and in each 16-bit dtype, two
     * f32 outputs (the run's and the dense row's kept for comparison), the estimators' working set
     * (key panels and one group of scores per thread) and a fixed 64 MiB for the JVM and the plans.
     */
    static long heapNeeded(AttentionShape s, List<DType> types) {
        long qElems = (long) s.batch() * s.qHeads() * s.queryLength() * s.headDim();
        long kvElems = 2L * s.batch() * s.kvHeads() * s.keyLength() * s.headDim();
        long inputs = 4 * (qElems + kvElems);
        for (DType t : types) {
            inputs += t == DType.F32 ? 0 : 2 * (qElems + kvElems);
        }
        long outputs = 2 * 4L * s.batch() * s.qHeads() * s.queryLength() * s.valueDim();
        long threads = Runtime.getRuntime().availableProcessors();
        long estimators = 4L * s.keyLength() * (2L * s.headDim() + 64 * threads);
        return inputs + outputs + estimators + (64L << 20);
    }

    /** Refuses a problem that would not fit the heap, before allocating any of it. */
    static void requireHeap(AttentionShape s, List<DType> types, long maxHeap) {
        long need = heapNeeded(s, types);
        if (need > maxHeap) {
            throw new IllegalArgumentException(String.format("-n/--seq: B=%d H=%d N=%d D=%d needs about %.1f GiB of heap,"
                    + " the JVM has %.1f GiB; lower -n, -H, -b or -d, or raise -Xmx (JDK_JAVA_OPTIONS=-Xmx16g, for"
                    + " example)", s.batch(), s.qHeads(),
                    s.queryLength(), s.headDim(), need / (double) (1L << 30), maxHeap / (double) (1L << 30)));
        }
    }

    /** The inputs in {@code dtype}: the generated problem, or the sequences packed token after token. */
    private static Inputs inputs(List<StructuredProblem.Generated> f32, RaggedBatch ragged, AttentionShape shape, DType dtype) {
        if (ragged == null) {
            StructuredProblem.Generated p = f32.get(0).as(dtype);
            return new Inputs(p.q(), p.k(), p.v(), null);
        }
        int total = ragged.totalQueries();
        Tensor q = Tensor.allocate(dtype, Layout.BSHD, 1, shape.qHeads(), total, shape.headDim());
        Tensor k = Tensor.allocate(dtype, Layout.BSHD, 1, shape.kvHeads(), total, shape.headDim());
        Tensor v = Tensor.allocate(dtype, Layout.BSHD, 1, shape.kvHeads(), total, shape.valueDim());
        for (int i = 0; i < ragged.sequences(); i++) {
            if (f32.get(i) == null) {
                continue;
            }
            StructuredProblem.Generated g = f32.get(i).as(dtype);
            Tensor.copy(g.q(), ragged.queries(q, i));
            Tensor.copy(g.k(), ragged.keys(k, i));
            Tensor.copy(g.v(), ragged.keys(v, i));
        }
        return new Inputs(q, k, v, ragged);
    }

    private DenseOracle denseOracle(Inputs in, Options options, int[] rows) {
        if (in.ragged() == null) {
            return new DenseOracle(ReferenceAttention.dense(in.q(), in.k(), in.v(), options, null, rows), null);
        }
        RaggedBatch b = in.ragged();
        List<ReferenceResult> per = new ArrayList<>();
        for (int i = 0; i < b.sequences(); i++) {
            per.add(b.queryLength(i) == 0 ? null : ReferenceAttention.dense(b.queries(in.q(), i), b.keys(in.k(), i),
                    b.keys(in.v(), i), options, null, sampleRows(b.queryLength(i), sampleRows)));
        }
        return new DenseOracle(null, per);
    }

    /**
     * What runs for {@code pattern} in {@code ctx} under the options' dispatch, planning the pattern
     * unless the dispatch decides dense before planning. The time of planning and deciding goes into
     * {@code planMillis[0]}.
     */
    private static DispatchDecision decide(AttentionBackend backend, Pattern pattern, PlanContext ctx, Tensor q, Tensor k,
                                           Options options, double[] planMillis) {
        long tp = System.nanoTime();
        Supplier<SparsePlan> dense = () -> Dense.INSTANCE.plan(ctx);
        DispatchDecision d = Dispatcher.beforePlanning(options.dispatch(), pattern, ctx, backend.costModel(), q.dtype(), dense);
        if (d == null) {
            SparsePlan plan = pattern.plan(ctx, q, k);
            d = Dispatcher.afterPlanning(options.dispatch(), plan, Dispatcher.planningMillis(pattern, ctx),
                    backend.costModel(), q.dtype(), dense);
        }
        planMillis[0] += (System.nanoTime() - tp) / 1e6;
        return d;
    }

    /** The last result of a row's calls and the median time of its timed ones. */
    private record Timed(AttentionResult last, double medianMillis) {
    }

    /**
     * One untimed call (the plan's first run; the kernel itself was warmed up per backend and dtype
     * before the first row), then {@code reps} timed calls.
     */
    private static Timed time(Supplier<AttentionResult> call, int reps) {
        AttentionResult r = call.get();
        double[] times = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            r = call.get();
            times[i] = (System.nanoTime() - t) / 1e6;
        }
        Arrays.sort(times);
        return new Timed(r, times[reps / 2]);
    }

    private DemoRow runOne(AttentionBackend backend, Entry e, Inputs in, AttentionShape shape, Options options, DType dtype,
                           int[] rows, ReferenceResult dense, int reps) {
        double[] planMillis = {0};
        DispatchDecision decision = decide(backend, e.pattern, PlanContext.of(shape, options), in.q(), in.k(), options,
                planMillis);
        SparsePlan plan = decision.plan();
        Timed timed;
        try (PreparedPlan prepared = backend.prepare(plan)) {
            timed = time(() -> Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run()), reps);
        }
        AttentionResult r = timed.last();
        double millis = timed.medianMillis();
        ReferenceResult oracle = ReferenceAttention.plan(plan, in.q(), in.k(), in.v(), options, rows);
        double errOracle = oracle.maxRelativeError(r.output());
        double errDense = dense.maxRelativeError(r.output());
        double recall = ReferenceResult.meanRecall(oracle, dense);
        double gflops = plan.flopsVisited() / (millis * 1e6);
        return new DemoRow(backend.name(), e.family, e.name, dtype.toString(), decision.ran().toString(), plan.density(),
                plan.pairsAdmitted(), plan.pairsVisited(), planMillis[0], millis, gflops, Double.NaN, Double.NaN,
                errOracle, errDense, recall, errOracle <= tolerance(dtype));
    }

    /** One pattern over a ragged batch: planned and dispatched per sequence, run as one call. */
    private DemoRow runRagged(AttentionBackend backend, Entry e, Inputs in, Options options, DType dtype,
                              List<ReferenceResult> dense, int reps) {
        RaggedBatch b = in.ragged();
        AttentionShape whole = b.shapeOf(in.q(), in.k(), in.v());
        double[] planMillis = {0};
        List<SparsePlan> plans = new ArrayList<>();
        Map<String, Integer> ran = new TreeMap<>();
        for (int i = 0; i < b.sequences(); i++) {
            PlanContext ctx = PlanContext.of(b.sequenceShape(i, whole), options);
            if (b.queryLength(i) == 0) {
                plans.add(SparsePlan.empty(ctx));
                continue;
            }
            DispatchDecision d = decide(backend, e.pattern, ctx, b.queries(in.q(), i), b.keys(in.k(), i), options, planMillis);
            plans.add(d.plan());
            ran.merge(d.ran().toString(), 1, Integer::sum);
        }
        RaggedPlan plan = RaggedPlan.of(b, plans);
        Timed timed;
        try (PreparedRaggedPlan prepared = backend.prepare(plan, backend.defaultDevice())) {
            timed = time(() -> Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run()), reps);
        }
        AttentionResult r = timed.last();
        double millis = timed.medianMillis();
        double errOracle = 0;
        double errDense = 0;
        double recallSum = 0;
        int recallSeqs = 0;
        for (int i = 0; i < b.sequences(); i++) {
            if (b.queryLength(i) == 0) {
                continue;
            }
            Tensor out = b.queries(r.output(), i);
            ReferenceResult oracle = ReferenceAttention.plan(plan.plan(i), b.queries(in.q(), i), b.keys(in.k(), i),
                    b.keys(in.v(), i), options, dense.get(i).rows());
            errOracle = Math.max(errOracle, oracle.maxRelativeError(out));
            errDense = Math.max(errDense, dense.get(i).maxRelativeError(out));
            recallSum += ReferenceResult.meanRecall(oracle, dense.get(i));
            recallSeqs++;
        }
        String dispatched = ran.size() == 1 ? ran.keySet().iterator().next()
                : String.join(" ", ran.entrySet().stream().map(x -> x.getKey() + ":" + x.getValue()).toList());
        double gflops = plan.flopsVisited() / (millis * 1e6);
        return new DemoRow(backend.name(), e.family, e.name, dtype.toString(), dispatched, plan.density(),
                plan.pairsAdmitted(), plan.pairsVisited(), planMillis[0], millis, gflops, Double.NaN, Double.NaN,
                errOracle, errDense, recallSum / recallSeqs, errOracle <= tolerance(dtype));
    }

    /** The numerics contract's relative-error tolerance for an input dtype. */
    static double tolerance(DType t) {
        return Tolerance.output(t);
    }

    private record Entry(String family, String name, Pattern pattern) {
    }

    private List<Entry> patterns() {
        List<Entry> list = new ArrayList<>();
        list.add(new Entry("dense", "dense", Dense.INSTANCE));
        if (patternFilters != null) {
            for (String f : patternFilters) {
                List<CatalogueEntry> hits = PatternCatalogue.examples().stream().filter(c -> matches(c, f)).toList();
                if (hits.isEmpty()) {
                    throw new IllegalArgumentException("--pattern: '" + f + "' matches no pattern; sparsa demo"
                            + " --list-patterns lists them");
                }
                for (CatalogueEntry c : hits) {
                    if (list.stream().noneMatch(e -> e.pattern == c.pattern())) {
                        list.add(new Entry(c.family(), c.pattern().name(), c.pattern()));
                    }
                }
            }
            return list;
        }
        for (double density : densities) {
            if (!(density > 0 && density <= 1)) {
                throw new IllegalArgumentException("--densities: each must be in (0, 1], got " + density);
            }
            Pattern p = Patterns.randomBlockSparse(density, seed);
            list.add(new Entry("block-sparse", p.name(), p));
        }
        if (!noFamilies) {
            for (CatalogueEntry c : PatternCatalogue.examples()) {
                list.add(new Entry(c.family(), c.pattern().name(), c.pattern()));
            }
        }
        return list;
    }

    /** True when {@code text} occurs (any case) in the entry's family, description or pattern name. */
    static boolean matches(CatalogueEntry c, String text) {
        String t = text.toLowerCase(java.util.Locale.ROOT);
        return c.family().toLowerCase(java.util.Locale.ROOT).contains(t)
                || c.description().toLowerCase(java.util.Locale.ROOT).contains(t)
                || c.pattern().name().toLowerCase(java.util.Locale.ROOT).contains(t);
    }

    private void printPatternList() {
        String fmt = "%-15s %-5s %-48s %s%n";
        out.printf(fmt, "family", "reads", "name", "description");
        for (CatalogueEntry c : PatternCatalogue.examples()) {
            out.printf(fmt, c.family(), c.pattern().dataDependent() ? "Q,K" : "-", c.pattern().name(), c.description());
        }
    }

    /** Evenly spread rows plus the last 8 (where the needle's queries are). */
    static int[] sampleRows(int n, int count) {
        if (n <= count) {
            return IntStream.range(0, n).toArray();
        }
        int tail = Math.min(8, count / 2);
        int spread = count - tail;
        return IntStream.concat(IntStream.range(0, spread).map(i -> (int) ((long) i * (n - tail) / spread)),
                IntStream.range(n - tail, n)).distinct().sorted().toArray();
    }

    private void printTable(AttentionShape s, RaggedBatch ragged, List<DemoRow> rows) {
        out.printf("Sparsa demo: %s H=%d D=%d %s, dispatch %s (relErr columns over sampled rows; speed-up vs dense on the "
                        + "same backend and dtype: kernels, and plan + kernel)%n",
                ragged == null ? "B=" + s.batch() + " N=" + s.queryLength() : "ragged " + ragged, s.qHeads(), s.headDim(),
                nonCausal ? "non-causal" : "causal", Dispatch.parse(dispatch));
        String fmt = "%-5s %-5s %-14s %-40s %-14s %8s %10s %9s %9s %8s %8s %10s %10s %7s%n";
        out.printf(fmt, "back", "dtype", "family", "pattern", "ran", "density", "ms", "plan ms", "GFLOP/s", "speedup",
                "end2end", "errOracle", "errDense", "recall");
        for (DemoRow r : rows) {
            out.printf(fmt, r.backend(), r.dtype(), r.family(), clip(r.pattern(), 40), clip(r.dispatch(), 14),
                    String.format("%.4f", r.density()), String.format("%.2f", r.millis()), String.format("%.2f", r.planMillis()),
                    String.format("%.1f", r.gflops()), String.format("%.2fx", r.speedup()),
                    String.format("%.2fx", r.speedupEndToEnd()), String.format("%.2e", r.relErrVsOracle()),
                    String.format("%.2e", r.relErrVsDense()), String.format("%.4f", r.recall()));
        }
        out.println();
        out.println(LEGEND);
    }
    /** What the table's columns mean (printed under it). */
    static final String LEGEND = String.join(System.lineSeparator(),
            "columns:",
            "  ran        what ran under --dispatch: the pattern's plan (SPARSE), DENSE, or the plan's block-expanded form",
            "  density    admitted (query, key) pairs / admissible pairs (all pairs, or the causal ones)",
            "  ms         median wall time of one forward call (after the warm-up; --repeat runs)",
            "  GFLOP/s    2 * pairsVisited * (headDim + valueDim) / time: on the pairs the kernel computes",
            "  speedup    dense time / this time, same backend and dtype (the dense row is 1.00x)",
            "  plan ms    time to build the plan (estimators read Q and K) and to choose what runs",
            "  end2end    dense (plan + kernel) time / this row's plan + kernel time",
            "  errOracle  max relative error vs the fp64 oracle of the same plan: the kernel's exactness",
            "             (the numerics contract allows 1e-5 for f32, 2e-3 for f16, 1e-2 for bf16, 5e-2 for e4m3)",
            "  errDense   max relative error vs fp64 dense attention: what the pattern leaves out",
            "  recall     mean over the sampled rows of exp(lseSparse - lseDense): the attention mass kept");

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    private String toJson(AttentionShape s, RaggedBatch ragged, Options o, List<DType> types, int reps, int sampled,
                          List<DemoRow> rows) throws IOException {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeFieldName("machine");
            writeMap(g, MachineInfo.collect());
            g.writeFieldName("problem");
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("generator", "structured: local band, periodic slashes, sinks and vertical columns, one needle");
            p.put("seed", seed);
            p.put("batch", ragged == null ? s.batch() : ragged.sequences());
            if (ragged != null) {
                p.put("layout", "packed ragged batch: tokens x heads x dim (BSHD of batch 1), each sequence alone");
                p.put("lengths", java.util.stream.IntStream.range(0, ragged.sequences()).mapToObj(ragged::queryLength).toList());
            }
            p.put("heads", s.qHeads());
            p.put("kvHeads", s.kvHeads());
            p.put("seqLen", s.queryLength());
            p.put("headDim", s.headDim());
            p.put("causal", o.causal());
            p.put("dispatch", o.dispatch().toString());
            p.put("dtypes", types.stream().map(DType::toString).toList());
            p.put("repeat", reps);
            p.put("sampledRowsPerSlice", sampled);
            p.put("flopsFormula", "2 * pairsVisited * (headDim + valueDim)");
            writeMap(g, p);
            g.writeArrayFieldStart("rows");
            for (DemoRow r : rows) {
                g.writeStartObject();
                g.writeStringField("backend", r.backend());
                g.writeStringField("family", r.family());
                g.writeStringField("pattern", r.pattern());
                g.writeStringField("dtype", r.dtype());
                g.writeStringField("dispatch", r.dispatch());
                g.writeNumberField("density", r.density());
                g.writeNumberField("pairsAdmitted", r.pairsAdmitted());
                g.writeNumberField("pairsVisited", r.pairsVisited());
                g.writeNumberField("planMillis", r.planMillis());
                g.writeNumberField("millis", r.millis());
                g.writeNumberField("gflops", r.gflops());
                g.writeNumberField("speedup", r.speedup());
                g.writeNumberField("speedupEndToEnd", r.speedupEndToEnd());
                g.writeNumberField("relErrVsOracle", r.relErrVsOracle());
                g.writeNumberField("relErrVsDense", r.relErrVsDense());
                g.writeNumberField("recall", r.recall());
                g.writeBooleanField("withinTolerance", r.withinTolerance());
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        return w.toString();
    }

    @SuppressWarnings("unchecked")
    static void writeMap(JsonGenerator g, Map<String, Object> m) throws IOException {
        g.writeStartObject();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            g.writeFieldName(e.getKey());
            Object v = e.getValue();
            if (v instanceof Map<?, ?> sub) {
                writeMap(g, (Map<String, Object>) sub);
            } else if (v instanceof List<?> list) {
                g.writeStartArray();
                for (Object x : list) {
                    if (x instanceof Number num) {
                        g.writeNumber(num.toString());
                    } else {
                        g.writeString(String.valueOf(x));
                    }
                }
                g.writeEndArray();
            } else if (v instanceof Number num) {
                g.writeNumber(num.toString());
            } else if (v instanceof Boolean bool) {
                g.writeBoolean(bool);
            } else {
                g.writeString(String.valueOf(v));
            }
        }
        g.writeEndObject();
    }
}
