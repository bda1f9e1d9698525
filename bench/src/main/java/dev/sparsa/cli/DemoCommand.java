package dev.sparsa.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.tools.StructuredProblem;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa demo}: dense against block-sparse at several densities and one row per pattern
 * family, on every available backend and dtype, over a generated long-context-like problem; a
 * table on stdout, or the JSON of DESIGN §8 with {@code --json}. Progress goes to stderr.
 * Exits 1 when a kernel misses the numerics contract's tolerance against the fp64 oracle.
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

    private final PrintStream out;
    private final PrintStream err;

    DemoCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
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
        AttentionShape shape = new AttentionShape(batch, h, kvh, n, n, d, d);
        Options options = Options.defaults().withCausal(!nonCausal).withOutputDType(DType.F32);
        List<DType> types = dtypes.stream().map(DType::parse).toList();
        List<AttentionBackend> backends = backendName == null ? Backends.available() : List.of(Backends.get(backendName));
        for (AttentionBackend b : backends) {
            if (!b.availability().available()) {
                throw new IllegalArgumentException("--backend: " + b.name() + " is not available: " + b.availability().reason());
            }
        }
        List<Entry> patterns = patterns();
        int[] rows = sampleRows(n, sampleRows);
        err.printf("sparsa demo: B=%d H=%d (kv %d) N=%d D=%d %s, dtypes %s, backends %s, %d patterns, %d sampled rows per slice%n",
                batch, h, kvh, n, d, nonCausal ? "non-causal" : "causal", types,
                backends.stream().map(AttentionBackend::name).toList(), patterns.size(), rows.length);
        Progress progress = new Progress(err, backends.size() * types.size() * patterns.size());
        long t0 = System.nanoTime();
        StructuredProblem.Generated f32Problem = StructuredProblem.generate(shape, seed);
        progress.note(String.format("generated the problem in %.2fs (needle key %d, %d vertical columns)",
                (System.nanoTime() - t0) / 1e9, f32Problem.needleKey(), f32Problem.verticalKeys().length));
        List<DemoRow> results = new ArrayList<>();
        for (DType dtype : types) {
            StructuredProblem.Generated p = f32Problem.as(dtype);
            long tr = System.nanoTime();
            ReferenceResult dense = ReferenceAttention.dense(p.q(), p.k(), p.v(), options, null, rows);
            progress.note(String.format("fp64 dense oracle on %d rows x %d slices (%s): %.2fs", rows.length,
                    shape.slices(), dtype, (System.nanoTime() - tr) / 1e9));
            for (AttentionBackend backend : backends) {
                double denseMillis = Double.NaN;
                for (Entry e : patterns) {
                    long step = progress.begin(backend.name() + " " + dtype + " " + e.name);
                    DemoRow row = runOne(backend, e, p, shape, options, dtype, rows, dense, reps, denseMillis);
                    if (e.pattern == Dense.INSTANCE) {
                        denseMillis = row.millis();
                        row = withSpeedup(row, 1.0);
                    }
                    results.add(row);
                    progress.end(step, String.format("density %.3f, %.1f ms, %.1f GFLOP/s, err %.2e", row.density(),
                            row.millis(), row.gflops(), row.relErrVsOracle()));
                }
            }
        }
        if (json) {
            out.println(toJson(shape, options, types, reps, rows.length, results));
        } else {
            printTable(shape, results);
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

    private DemoRow runOne(AttentionBackend backend, Entry e, StructuredProblem.Generated p, AttentionShape shape,
                           Options options, DType dtype, int[] rows, ReferenceResult dense, int reps, double denseMillis) {
        long tp = System.nanoTime();
        SparsePlan plan = e.pattern.plan(PlanContext.of(shape, options), p.q(), p.k());
        double planMillis = (System.nanoTime() - tp) / 1e6;
        // warm-up: the first row of each backend and dtype (dense) also warms the JIT for the rest
        int warmups = e.pattern == Dense.INSTANCE ? 3 : 1;
        AttentionResult r = null;
        double[] times = new double[reps];
        try (PreparedPlan prepared = backend.prepare(plan)) {
            for (int i = 0; i < warmups; i++) {
                r = Attention.forwardWithLse(prepared, p.q(), p.k(), p.v(), options.run());
            }
            for (int i = 0; i < reps; i++) {
                long t = System.nanoTime();
                r = Attention.forwardWithLse(prepared, p.q(), p.k(), p.v(), options.run());
                times[i] = (System.nanoTime() - t) / 1e6;
            }
        }
        Arrays.sort(times);
        double millis = times[reps / 2];
        ReferenceResult oracle = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), options, rows);
        double errOracle = oracle.maxRelativeError(r.output());
        double errDense = dense.maxRelativeError(r.output());
        double recall = ReferenceResult.meanRecall(oracle, dense);
        double gflops = plan.flopsVisited() / (millis * 1e6);
        double speedup = Double.isNaN(denseMillis) ? Double.NaN : denseMillis / millis;
        return new DemoRow(backend.name(), e.family, e.name, dtype.toString(), plan.density(), plan.pairsAdmitted(),
                plan.pairsVisited(), planMillis, millis, gflops, speedup, errOracle, errDense, recall,
                errOracle <= tolerance(dtype));
    }

    private static DemoRow withSpeedup(DemoRow r, double s) {
        return new DemoRow(r.backend(), r.family(), r.pattern(), r.dtype(), r.density(), r.pairsAdmitted(),
                r.pairsVisited(), r.planMillis(), r.millis(), r.gflops(), s, r.relErrVsOracle(), r.relErrVsDense(),
                r.recall(), r.withinTolerance());
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

    private void printTable(AttentionShape s, List<DemoRow> rows) {
        out.printf("Sparsa demo: B=%d H=%d N=%d D=%d %s (relErr columns over sampled rows; speed-up vs dense on the same backend and dtype)%n",
                s.batch(), s.qHeads(), s.queryLength(), s.headDim(), nonCausal ? "non-causal" : "causal");
        String fmt = "%-5s %-5s %-14s %-40s %8s %10s %9s %8s %9s %10s %10s %7s%n";
        out.printf(fmt, "back", "dtype", "family", "pattern", "density", "ms", "GFLOP/s", "speedup", "plan ms",
                "errOracle", "errDense", "recall");
        for (DemoRow r : rows) {
            out.printf(fmt, r.backend(), r.dtype(), r.family(), clip(r.pattern(), 40), String.format("%.4f", r.density()),
                    String.format("%.2f", r.millis()), String.format("%.1f", r.gflops()), String.format("%.2fx", r.speedup()),
                    String.format("%.2f", r.planMillis()), String.format("%.2e", r.relErrVsOracle()),
                    String.format("%.2e", r.relErrVsDense()), String.format("%.4f", r.recall()));
        }
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    private String toJson(AttentionShape s, Options o, List<DType> types, int reps, int sampled, List<DemoRow> rows)
            throws IOException {
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
            p.put("batch", s.batch());
            p.put("heads", s.qHeads());
            p.put("kvHeads", s.kvHeads());
            p.put("seqLen", s.queryLength());
            p.put("headDim", s.headDim());
            p.put("causal", o.causal());
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
                g.writeNumberField("density", r.density());
                g.writeNumberField("pairsAdmitted", r.pairsAdmitted());
                g.writeNumberField("pairsVisited", r.pairsVisited());
                g.writeNumberField("planMillis", r.planMillis());
                g.writeNumberField("millis", r.millis());
                g.writeNumberField("gflops", r.gflops());
                g.writeNumberField("speedup", r.speedup());
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
                    g.writeString(String.valueOf(x));
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
