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
import dev.sparsa.patterns.render.StructuredProblem;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
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
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa demo}: dense against block-sparse at several densities and one row per pattern
 * family, on every available backend and dtype, over a generated long-context-like problem; a
 * table on stdout, or the JSON of DESIGN §8 with {@code --json}. Progress goes to stderr.
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

    @Option(names = "--repeat", description = "Timed repetitions per row after a warm-up; the median is reported (default 3; 1 with --quick).")
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

    private final PrintStream out;
    private final PrintStream err;

    DemoCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** The demo's inputs in one dtype: one batch of equal lengths, or a packed ragged batch. */
    private record Inputs(Tensor q, Tensor k, Tensor v, RaggedBatch ragged) {
    }

    /** The fp64 dense oracle on the sampled rows: one result, or one per sequence (null where it has none). */
    private record DenseOracle(ReferenceResult whole, List<ReferenceResult> perSequence) {
    }

    @Override
    public Integer call() throws IOException {
        int h = heads != null ? heads : quick ? 2 : 8;
        int n = seq != null ? seq : quick ? 512 : 4096;
        int d = dim != null ? dim : quick ? 64 : 128;
        int kvh = kvHeads != null ? kvHeads : h;
        int reps = repeat != null ? repeat : quick ? 1 : 3;
        if (reps < 1 || sampleRows < 1) {
            throw new IllegalArgumentException("--repeat and --sample-rows: must be >= 1, got " + reps + " and " + sampleRows);
        }
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
        List<DType> types = dtypes.stream().map(DType::parse).toList();
        List<AttentionBackend> backends = backendName == null ? Backends.available() : List.of(Backends.get(backendName));
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
        java.util.function.Supplier<SparsePlan> dense = () -> Dense.INSTANCE.plan(ctx);
        DispatchDecision d = Dispatcher.beforePlanning(options.dispatch(), pattern, ctx, backend.costModel(), q.dtype(), dense);
        if (d == null) {
            SparsePlan plan = pattern.plan(ctx, q, k);
            d = Dispatcher.afterPlanning(options.dispatch(), plan, Dispatcher.planningMillis(pattern, ctx),
                    backend.costModel(), q.dtype(), dense);
        }
        planMillis[0] += (System.nanoTime() - tp) / 1e6;
        return d;
    }

    private DemoRow runOne(AttentionBackend backend, Entry e, Inputs in, AttentionShape shape, Options options, DType dtype,
                           int[] rows, ReferenceResult dense, int reps) {
        double[] planMillis = {0};
        DispatchDecision decision = decide(backend, e.pattern, PlanContext.of(shape, options), in.q(), in.k(), options,
                planMillis);
        SparsePlan plan = decision.plan();
        // warm-up: the first row of each backend and dtype (dense) also warms the JIT for the rest
        int warmups = e.pattern == Dense.INSTANCE ? 3 : 1;
        AttentionResult r = null;
        double[] times = new double[reps];
        try (PreparedPlan prepared = backend.prepare(plan)) {
            for (int i = 0; i < warmups; i++) {
                r = Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run());
            }
            for (int i = 0; i < reps; i++) {
                long t = System.nanoTime();
                r = Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run());
                times[i] = (System.nanoTime() - t) / 1e6;
            }
        }
        Arrays.sort(times);
        double millis = times[reps / 2];
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
        int warmups = e.pattern == Dense.INSTANCE ? 3 : 1;
        AttentionResult r = null;
        double[] times = new double[reps];
        try (PreparedRaggedPlan prepared = backend.prepare(plan, backend.defaultDevice())) {
            for (int i = 0; i < warmups; i++) {
                r = Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run());
            }
            for (int i = 0; i < reps; i++) {
                long t = System.nanoTime();
                r = Attention.forwardWithLse(prepared, in.q(), in.k(), in.v(), options.run());
                times[i] = (System.nanoTime() - t) / 1e6;
            }
        }
        Arrays.sort(times);
        double millis = times[reps / 2];
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
        return switch (t) {
            case F32 -> 1e-5;
            case F16 -> 2e-3;
            case BF16 -> 1e-2;
        };
    }

    private record Entry(String family, String name, Pattern pattern) {
    }

    private List<Entry> patterns() {
        List<Entry> list = new ArrayList<>();
        list.add(new Entry("dense", "dense", Dense.INSTANCE));
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
    }

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
    private static void writeMap(JsonGenerator g, Map<String, Object> m) throws IOException {
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
