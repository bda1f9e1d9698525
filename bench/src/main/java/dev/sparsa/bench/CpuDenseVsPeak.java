package dev.sparsa.bench;

import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.cuda.Flags;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * Sparsa's dense CPU attention next to the machine's FMA ceiling, at several thread counts, in one
 * command: for each thread count T it runs, through the JMH API, {@link PeakFma} with T benchmark
 * threads (its {@code oneThread} body under JMH's thread count T, so its {@code gflops} counter is
 * the sum over T threads) and {@link DenseAttention} f32, causal and non-causal, on a pool of T
 * threads, all with the same warm-up and measurement settings (PeakFma's warm-up at least one
 * iteration of 1 s: until C2 compiles its Vector API loop, the loop runs interpreted at a tiny
 * fraction of its speed). It is the Java half of
 * {@code bench/cpu-vs-pytorch.sh}, whose other half ({@code bench/cpu/torch_cpu_sdpa.py}) times
 * PyTorch's CPU SDPA on the same shape and prints rows in the same format.
 *
 * <p>Standard output: two comment lines, then one line per row, whitespace-separated:
 * {@code impl threads causal min_ms median_ms max_ms gflop_per_call gflops pct_peakfma}. {@code
 * impl} is {@code peakfma} or {@code sparsa}; the times are those of one call, one value per JMH
 * measurement iteration (its mean); {@code gflop_per_call} is the plan's {@code 4·pairsVisited·D}
 * (the {@code gflops} counter's convention); {@code gflops} is the median iteration's GFLOP/s; {@code
 * pct_peakfma} is that as a percentage of the median PeakFma GFLOP/s at the same thread count.
 * PeakFma's rows have {@code -} in the columns that do not apply. {@code --json PATH} also writes
 * the rows as JSON. JMH's own output and progress go to standard error.
 *
 * <p>A bad argument, or a {@code --json} file that cannot be written, prints one line on standard
 * error and exits with status 2 before anything runs; a failed JMH run exits with status 1.
 */
public final class CpuDenseVsPeak {
    static final String NAME = "CpuDenseVsPeak";
    static final String USAGE = "usage: " + NAME + " [--threads 2,16] [--n 4096] [--warmup-iterations 2]"
            + " [--warmup-s 2] [--iterations 3] [--iteration-s 2] [--forks 1] [--json PATH]";
    static final int HEADS = 8;
    static final int DIM = 128;
    /** PeakFma's shortest warm-up iteration, in seconds: see {@link #peakWarmup}. */
    static final double PEAK_MIN_WARMUP_S = 1.0;

    private CpuDenseVsPeak() {
    }

    /**
     * The parsed command line.
     *
     * @param threads thread counts, each at least 1, distinct, in the order given
     * @param n sequence length (queries and keys), at least 1
     * @param warmupIterations JMH warm-up iterations per row, at least 0
     * @param warmupSeconds seconds per warm-up iteration, at least 0.001
     * @param iterations JMH measurement iterations per row, at least 1
     * @param iterationSeconds seconds per measurement iteration, at least 0.001
     * @param forks JMH forks per row: 0 runs in this JVM, 1 in a fresh JVM per row
     * @param json where the JSON copy of the rows goes, or null
     */
    record Args(List<Integer> threads, int n, int warmupIterations, double warmupSeconds, int iterations,
                double iterationSeconds, int forks, Path json) {
        /** Throws IllegalArgumentException, with a one-line message naming the flag, on a bad argument. */
        static Args parse(String[] args) {
            List<Integer> threads = List.of(2, 16);
            int n = 4096;
            int warmupIterations = 2;
            double warmupSeconds = 2;
            int iterations = 3;
            double iterationSeconds = 2;
            int forks = 1;
            Path json = null;
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                switch (flag) {
                    case "--threads" -> threads = threadList(flag, Flags.value(args, i++));
                    case "--n" -> n = intFlag(flag, Flags.value(args, i++), 1, Integer.MAX_VALUE);
                    case "--warmup-iterations" -> warmupIterations = intFlag(flag, Flags.value(args, i++), 0, 1000);
                    case "--warmup-s" -> warmupSeconds = secondsFlag(flag, Flags.value(args, i++));
                    case "--iterations" -> iterations = intFlag(flag, Flags.value(args, i++), 1, 1000);
                    case "--iteration-s" -> iterationSeconds = secondsFlag(flag, Flags.value(args, i++));
                    case "--forks" -> forks = intFlag(flag, Flags.value(args, i++), 0, 1);
                    case "--json" -> {
                        String p = Flags.value(args, i++);
                        if (p.isBlank()) {
                            throw Flags.bad(flag, "wants a file path, got an empty one");
                        }
                        json = Path.of(p);
                    }
                    default -> throw new IllegalArgumentException("unknown argument " + flag);
                }
            }
            return new Args(threads, n, warmupIterations, warmupSeconds, iterations, iterationSeconds, forks, json);
        }

        private static int intFlag(String flag, String s, int min, int max) {
            int v = Flags.integer(flag, s);
            if (v < min || v > max) {
                throw Flags.bad(flag, "must be in [" + min + ", " + max + "], got " + v);
            }
            return v;
        }

        private static double secondsFlag(String flag, String s) {
            double v = Flags.seconds(flag, s);
            if (!(v >= 0.001 && v <= 3600)) {
                throw Flags.bad(flag, "must be in [0.001, 3600] seconds, got '" + s + "'");
            }
            return v;
        }

        private static List<Integer> threadList(String flag, String s) {
            Set<Integer> out = new LinkedHashSet<>();
            for (String part : s.split(",", -1)) {
                int t = intFlag(flag, part, 1, 4096);
                if (!out.add(t)) {
                    throw Flags.bad(flag, t + " is given twice");
                }
            }
            return List.copyOf(out);
        }
    }

    /**
     * GFLOP of one dense f32 call on B=1, H=8, D=128 and {@code n} tokens, as {@link DenseAttention}
     * counts it: the dense plan's {@code flopsVisited()} (4·pairsVisited·D, whole key blocks of the
     * 64×64 tiles on the causal diagonal).
     */
    static double denseGflopPerCall(int n, boolean causal) {
        AttentionShape shape = AttentionShape.of(1, HEADS, n, n, DIM);
        return Dense.INSTANCE.plan(PlanContext.of(shape, Options.defaults().withCausal(causal))).flopsVisited() * 1e-9;
    }

    /** One output row: min/median/max ms per call (NaN for PeakFma), GFLOP/s of the median iteration. */
    record Row(String impl, int threads, Boolean causal, double minMs, double medianMs, double maxMs,
               double gflopPerCall, double gflops, double pctPeak) {

        String line() {
            return String.format(Locale.ROOT, "%-8s %7d %-6s %10s %10s %10s %14s %10.2f %11s", impl, threads,
                    causal == null ? "-" : causal.toString(), num(minMs, "%.2f"), num(medianMs, "%.2f"),
                    num(maxMs, "%.2f"), num(gflopPerCall, "%.6f"), gflops, num(pctPeak, "%.1f"));
        }

        String json() {
            return String.format(Locale.ROOT, "{\"impl\": \"%s\", \"threads\": %d, \"causal\": %s, \"min_ms\": %s,"
                            + " \"median_ms\": %s, \"max_ms\": %s, \"gflop_per_call\": %s, \"gflops\": %s,"
                            + " \"pct_peakfma\": %s}", impl, threads, causal == null ? "null" : causal.toString(),
                    jnum(minMs), jnum(medianMs), jnum(maxMs), jnum(gflopPerCall), jnum(gflops), jnum(pctPeak));
        }

        private static String num(double v, String fmt) {
            return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, fmt, v);
        }

        private static String jnum(double v) {
            return Double.isFinite(v) ? Double.toString(v) : "null";
        }
    }

    static final String HEADER = String.format(Locale.ROOT, "# %-6s %7s %-6s %10s %10s %10s %14s %10s %11s", "impl",
            "threads", "causal", "min_ms", "median_ms", "max_ms", "gflop_per_call", "gflops", "pct_peakfma");

    /** The median of the values (the mean of the middle two for an even count); NaN for none. */
    static double median(double[] xs) {
        if (xs.length == 0) {
            return Double.NaN;
        }
        double[] s = xs.clone();
        Arrays.sort(s);
        int m = s.length / 2;
        return s.length % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
    }

    public static void main(String[] args) {
        int status = run(args);
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Parses {@code args} and runs the benchmarks; returns the exit status: 0; 2 after one line on
     * standard error for a bad argument or a {@code --json} file that cannot be written (nothing
     * runs then); 1 when a JMH run or the JSON file fails.
     */
    static int run(String[] argv) {
        if (argv.length == 1 && (argv[0].equals("-h") || argv[0].equals("--help"))) {
            System.out.println(USAGE);
            return 0;
        }
        Args a;
        try {
            a = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println(NAME + ": " + e.getMessage() + "; " + USAGE);
            return 2;
        }
        if (a.json() != null) {
            try { // found out now rather than after the benchmarks
                Files.writeString(a.json(), "", StandardCharsets.UTF_8);
            } catch (IOException e) {
                String why = e instanceof java.nio.file.NoSuchFileException ? "its folder does not exist"
                        : e instanceof java.nio.file.AccessDeniedException ? "permission denied" : e.getMessage();
                System.err.println(NAME + ": --json: cannot write " + a.json() + " (" + why + ")");
                return 2;
            }
        }
        // the rows go to the real standard output; everything else printed while JMH runs (its
        // report, the forked JVMs' output, the benchmarks' own lines) goes to standard error
        PrintStream out = System.out;
        System.setOut(System.err);
        try {
            return runRows(a, out);
        } finally {
            System.setOut(out);
        }
    }

    private static int runRows(Args a, PrintStream out) {
        out.printf(Locale.ROOT, "# %s: f32, B=1, H=%d, N=%d, D=%d; JMH forks %d, warm-up %d x %.3g s, measurement %d x %.3g s"
                        + " per row (PeakFma's warm-up at least 1 x %.3g s); times and GFLOP/s over the measurement"
                        + " iterations; PeakFma with JMH threads = threads%n",
                NAME, HEADS, a.n(), DIM, a.forks(), a.warmupIterations(), a.warmupSeconds(), a.iterations(),
                a.iterationSeconds(), PEAK_MIN_WARMUP_S);
        // the kernel the CPU backend picks in this JVM (the forks start with its flags), so that a run's
        // rows say which vector width they measured
        out.println("# kernel: " + new CpuBackend().kernelDescription() + "; " + Runtime.getRuntime().availableProcessors()
                + " processors available");
        out.println(HEADER);
        out.flush();
        List<Row> rows = new ArrayList<>();
        try {
            for (int t : a.threads()) {
                System.err.printf(Locale.ROOT, "%s: PeakFma at %d thread(s)%n", NAME, t);
                Collection<RunResult> peak = jmh(peakWarmup(a), "PeakFma.oneThread", t, null);
                double[] peakG = secondary(single(peak), "gflops");
                double peakMedian = median(peakG);
                Row pr = new Row("peakfma", t, null, Double.NaN, Double.NaN, Double.NaN, Double.NaN, peakMedian, 100);
                rows.add(pr);
                out.println(pr.line());
                out.flush();
                for (boolean causal : new boolean[] {true, false}) {
                    System.err.printf(Locale.ROOT, "%s: DenseAttention f32 causal=%s on %d thread(s)%n", NAME, causal, t);
                    RunResult r = single(jmh(a, "DenseAttention.forward", 1, new String[] {"dtype=f32", "causal=" + causal,
                        "n=" + a.n(), "dim=" + DIM, "heads=" + HEADS, "threads=" + t}));
                    double[] callsPerS = primary(r);
                    double[] ms = new double[callsPerS.length];
                    for (int i = 0; i < ms.length; i++) {
                        ms[i] = 1000 / callsPerS[i];
                    }
                    double g = median(secondary(r, "gflops"));
                    Row row = new Row("sparsa", t, causal, Arrays.stream(ms).min().orElse(Double.NaN), median(ms),
                            Arrays.stream(ms).max().orElse(Double.NaN), denseGflopPerCall(a.n(), causal), g,
                            100 * g / peakMedian);
                    rows.add(row);
                    out.println(row.line());
                    out.flush();
                }
            }
        } catch (RunnerException | IllegalStateException e) {
            System.err.println(NAME + ": the JMH run failed: " + e.getMessage());
            return 1;
        }
        if (a.json() != null) {
            try {
                Files.writeString(a.json(), json(a, rows), StandardCharsets.UTF_8);
            } catch (IOException e) {
                System.err.println(NAME + ": cannot write --json " + a.json() + ": " + e.getMessage());
                return 1;
            }
        }
        return 0;
    }

    /**
     * PeakFma's settings: the given ones with a warm-up of at least one iteration of at least
     * {@link #PEAK_MIN_WARMUP_S} seconds. Until C2 has compiled its Vector API loop, the loop runs
     * interpreted at a tiny fraction of its compiled speed, so a shorter warm-up would report no
     * ceiling at all (0.1 GFLOP/s instead of over 100 on a 2-vCPU machine after 0.2 s).
     */
    static Args peakWarmup(Args a) {
        return new Args(a.threads(), a.n(), Math.max(1, a.warmupIterations()), Math.max(PEAK_MIN_WARMUP_S,
                a.warmupSeconds()), a.iterations(), a.iterationSeconds(), a.forks(), a.json());
    }

    static String json(Args a, List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "{\"shape\": {\"dtype\": \"f32\", \"batch\": 1, \"heads\": %d, \"n\": %d,"
                        + " \"dim\": %d}, \"jmh\": {\"forks\": %d, \"warmup_iterations\": %d, \"warmup_s\": %s,"
                        + " \"iterations\": %d, \"iteration_s\": %s}, \"rows\": [", HEADS, a.n(), DIM, a.forks(),
                a.warmupIterations(), a.warmupSeconds(), a.iterations(), a.iterationSeconds()));
        for (int i = 0; i < rows.size(); i++) {
            sb.append(i == 0 ? "\n  " : ",\n  ").append(rows.get(i).json());
        }
        return sb.append("\n]}\n").toString();
    }

    private static Collection<RunResult> jmh(Args a, String benchmark, int jmhThreads, String[] params)
            throws RunnerException {
        ChainedOptionsBuilder b = new OptionsBuilder()
                .include("^" + CpuDenseVsPeak.class.getPackageName().replace(".", "\\.") + "\\."
                        + benchmark.replace(".", "\\.") + "$")
                .forks(a.forks())
                .threads(jmhThreads)
                .warmupIterations(a.warmupIterations())
                .warmupTime(TimeValue.milliseconds(Math.round(a.warmupSeconds() * 1000)))
                .measurementIterations(a.iterations())
                .measurementTime(TimeValue.milliseconds(Math.round(a.iterationSeconds() * 1000)))
                .timeUnit(TimeUnit.SECONDS)
                .shouldFailOnError(true);
        if (params != null) {
            for (String p : params) {
                int eq = p.indexOf('=');
                b.param(p.substring(0, eq), p.substring(eq + 1));
            }
        }
        return new Runner(b.build(), OutputFormatFactory.createFormatInstance(System.err, VerboseMode.NORMAL)).run();
    }

    private static RunResult single(Collection<RunResult> results) {
        if (results.size() != 1) {
            throw new IllegalStateException("expected one JMH result, got " + results.size());
        }
        return results.iterator().next();
    }

    private static List<IterationResult> iterations(RunResult r) {
        List<IterationResult> out = new ArrayList<>();
        for (BenchmarkResult br : r.getBenchmarkResults()) {
            out.addAll(br.getIterationResults());
        }
        if (out.isEmpty()) {
            throw new IllegalStateException("no measurement iterations in " + r.getParams().getBenchmark());
        }
        return out;
    }

    private static double[] primary(RunResult r) {
        return iterations(r).stream().mapToDouble(it -> it.getPrimaryResult().getScore()).toArray();
    }

    private static double[] secondary(RunResult r, String label) {
        List<IterationResult> its = iterations(r);
        double[] out = new double[its.size()];
        for (int i = 0; i < out.length; i++) {
            Result<?> s = its.get(i).getSecondaryResults().get(label);
            if (s == null) {
                throw new IllegalStateException("no '" + label + "' counter in " + r.getParams().getBenchmark());
            }
            out[i] = s.getScore();
        }
        return out;
    }
}
