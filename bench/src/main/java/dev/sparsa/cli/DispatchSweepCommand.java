package dev.sparsa.cli;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.DispatchDecision;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tools.StructuredProblem;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa dispatch-sweep}: the drop-in call ({@code Attention.forward}) under each dispatch
 * mode, in steady state (static plans cached, data-dependent patterns planned on every call, as a
 * user's loop does), over random block-sparse patterns from 2 % to 100 % of the blocks and every
 * catalogue pattern. Per row the three modes alternate within each round, the rounds going through
 * all six orders, and every timed call starts after a collection (so that an estimator's planning
 * garbage is not charged to the mode that follows it); the best round of each mode (a shared machine only ever adds time) gives {@code auto / min(dense,
 * sparse)}, the dispatch target's ratio (≤ 1.10); the same ratio on the CPU time of all the JVM's
 * threads (what the call computed, which other processes on a shared machine do not change) is the
 * steadier check that the choice was right. A table on stdout, progress on stderr.
 */
@Command(name = "dispatch-sweep", mixinStandardHelpOptions = true,
        description = "Time the drop-in call under --dispatch dense, sparse and auto over a density sweep and the catalogue.")
final class DispatchSweepCommand implements Callable<Integer> {

    @Option(names = {"-H", "--heads"}, description = "Query heads (default ${DEFAULT-VALUE}).", defaultValue = "8")
    int heads;

    @Option(names = {"-n", "--seq"}, description = "Sequence length (default ${DEFAULT-VALUE}).", defaultValue = "4096")
    int seq;

    @Option(names = {"-d", "--dim"}, description = "Head dimension (default ${DEFAULT-VALUE}).", defaultValue = "128")
    int dim;

    @Option(names = "--dtype", description = "Input dtype (default ${DEFAULT-VALUE}).", defaultValue = "f32")
    String dtype;

    @Option(names = "--densities", split = ",", description = "Random block densities (default ${DEFAULT-VALUE}).",
            defaultValue = "0.02,0.05,0.1,0.2,0.3,0.5,0.7,0.85,1.0")
    List<Double> densities;

    @Option(names = "--rounds", description = "Timed rounds per row after a warm-up (default ${DEFAULT-VALUE}).",
            defaultValue = "6")
    int rounds;

    @Option(names = "--no-catalogue", description = "Only the random block-sparse rows.")
    boolean noCatalogue;

    @Option(names = "--backend", description = "Run on this backend (default: the preferred one).")
    String backendName;

    /** Every order of the three modes, one per round in turn, so that no mode always follows another. */
    private static final int[][] ORDERS = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};

    private final PrintStream out;
    private final PrintStream err;

    DispatchSweepCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    /**
     * One row: the three modes' best wall times and best CPU times (all threads) over the rounds,
     * and what auto ran.
     */
    record Row(String pattern, double dense, double sparse, double auto, double denseCpu, double sparseCpu,
               double autoCpu, DispatchDecision decision) {
        /** auto over the faster of dense and sparse, best rounds. */
        double ratio() {
            return auto / Math.min(dense, sparse);
        }

        /** The same on CPU time. */
        double cpuRatio() {
            return autoCpu / Math.min(denseCpu, sparseCpu);
        }
    }

    /** CPU nanoseconds of every live thread of this JVM (the kernel's workers, the caller, GC). */
    private static long cpuNanos() {
        long sum = 0;
        for (long t : THREADS.getAllThreadIds()) {
            long c = THREADS.getThreadCpuTime(t);
            sum += Math.max(0, c);
        }
        return sum;
    }

    /**
     * Milliseconds of CPU time {@code call} took over all threads, or NaN when a thread started or
     * ended meanwhile (an estimator's own pool: its time cannot be counted from live threads).
     */
    private static double cpuMillis(Runnable call) {
        long started = THREADS.getTotalStartedThreadCount();
        int live = THREADS.getThreadCount();
        long c0 = cpuNanos();
        call.run();
        long c1 = cpuNanos();
        boolean same = THREADS.getTotalStartedThreadCount() == started && THREADS.getThreadCount() == live;
        return same ? (c1 - c0) / 1e6 : Double.NaN;
    }

    @Override
    public Integer call() {
        if (rounds < 1 || heads < 1 || seq < 1 || dim < 1) {
            throw new IllegalArgumentException("--rounds, --heads, --seq, --dim: must be >= 1");
        }
        DType type = DType.parse(dtype);
        AttentionShape shape = AttentionShape.of(1, heads, seq, seq, dim);
        AttentionBackend backend = backendName == null ? Backends.preferred(null, shape, type, null) : Backends.get(backendName);
        Options base = Options.causalMask().withDevice(backend.defaultDevice());
        StructuredProblem.Generated p = StructuredProblem.generate(shape, 42).as(type);
        List<Pattern> patterns = new ArrayList<>();
        for (double d : densities) {
            if (!(d > 0 && d <= 1)) {
                throw new IllegalArgumentException("--densities: each must be in (0, 1], got " + d);
            }
            patterns.add(Patterns.randomBlockSparse(d, 42));
        }
        if (!noCatalogue) {
            for (CatalogueEntry e : PatternCatalogue.examples()) {
                patterns.add(e.pattern());
            }
        }
        err.printf("dispatch sweep: %s %s, B=1 H=%d N=%d D=%d causal, %d patterns, %d rounds; cost model: %s%n",
                backend.name(), type, heads, seq, dim, patterns.size(), rounds, backend.costModel().description());
        Dispatch[] modes = {Dispatch.DENSE, Dispatch.SPARSE, Dispatch.AUTO};
        List<Row> rows = new ArrayList<>();
        for (Pattern pattern : patterns) {
            double[][] t = new double[3][rounds];
            double[][] c = new double[3][rounds];
            DispatchDecision decision = null;
            for (Dispatch m : modes) { // warm-up: plans the static patterns, compiles
                call(p, pattern, base.withDispatch(m));
            }
            for (int r = 0; r < rounds; r++) {
                for (int j = 0; j < 3; j++) {
                    int m = ORDERS[r % ORDERS.length][j];
                    AttentionResult[] res = new AttentionResult[1];
                    Options o = base.withDispatch(modes[m]);
                    System.gc(); // the previous call's garbage (an estimator's planning) is not charged to this one
                    long t0 = System.nanoTime();
                    c[m][r] = cpuMillis(() -> res[0] = call(p, pattern, o));
                    t[m][r] = (System.nanoTime() - t0) / 1e6;
                    if (modes[m] == Dispatch.AUTO) {
                        decision = res[0].decision();
                    }
                }
            }
            Row row = new Row(pattern.name(), best(t[0]), best(t[1]), best(t[2]), best(c[0]), best(c[1]), best(c[2]),
                    decision);
            rows.add(row);
            err.printf("  %-60s dense %8.1f  sparse %8.1f  auto %8.1f ms (%s)  auto/min %.2f (cpu %.2f)%n",
                    clip(row.pattern(), 60), row.dense(), row.sparse(), row.auto(), row.decision().ran(), row.ratio(),
                    row.cpuRatio());
        }
        out.printf("Dispatch sweep: %s %s, B=1 H=%d N=%d D=%d causal; best of %d rounds, modes alternating; ms per "
                + "drop-in call (wall; cpu: all threads' CPU time)%n", backend.name(), type, heads, seq, dim, rounds);
        String fmt = "%-62s %8s %8s %8s %-14s %9s %9s %9s %9s %9s %9s %8s %8s%n";
        out.printf(fmt, "pattern", "dense", "sparse", "auto", "auto ran", "est.spars", "est.expd", "est.dense", "cpu dense",
                "cpu spars", "cpu auto", "auto/min", "cpu");
        double worst = 0;
        double worstCpu = 0;
        for (Row r : rows) {
            worst = Math.max(worst, r.ratio());
            if (!Double.isNaN(r.cpuRatio())) {
                worstCpu = Math.max(worstCpu, r.cpuRatio());
            }
            DispatchDecision d = r.decision();
            out.printf(fmt, clip(r.pattern(), 62), f(r.dense()), f(r.sparse()), f(r.auto()), d.ran(), f(d.sparseMillis()),
                    f(d.expandedMillis()), f(d.denseMillis()), f(r.denseCpu()), f(r.sparseCpu()), f(r.autoCpu()),
                    String.format("%.2f", r.ratio()), Double.isNaN(r.cpuRatio()) ? "-" : String.format("%.2f", r.cpuRatio()));
        }
        out.printf("worst auto / min(dense, sparse): wall %.2f, cpu %.2f (target <= 1.10; cpu \"-\": threads started or "
                + "ended during the call)%n", worst, worstCpu);
        return 0;
    }

    private static String f(double x) {
        return Double.isNaN(x) ? "-" : String.format("%.1f", x);
    }

    private static AttentionResult call(StructuredProblem.Generated p, Pattern pattern, Options o) {
        return Attention.forwardWithLse(p.q(), p.k(), p.v(), pattern, o);
    }

    /** The least of the valid (non-NaN) values, NaN when there is none. */
    private static double best(double[] x) {
        return Arrays.stream(x).filter(v -> !Double.isNaN(v)).min().orElse(Double.NaN);
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }
}
