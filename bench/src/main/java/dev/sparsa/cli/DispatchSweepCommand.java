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
import dev.sparsa.patterns.render.StructuredProblem;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
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
 * catalogue pattern. Per row the three modes alternate within each round (their order rotates);
 * the best round of each mode (a shared machine only ever adds time) gives {@code auto / min(dense,
 * sparse)}, the dispatch target's ratio (≤ 1.10), and the medians give the same ratio again. A table
 * on stdout, progress on stderr.
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
            defaultValue = "5")
    int rounds;

    @Option(names = "--no-catalogue", description = "Only the random block-sparse rows.")
    boolean noCatalogue;

    @Option(names = "--backend", description = "Run on this backend (default: the preferred one).")
    String backendName;

    private final PrintStream out;
    private final PrintStream err;

    DispatchSweepCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /**
     * One row: the three modes' best and median wall times over the rounds, and what auto ran.
     */
    record Row(String pattern, double dense, double sparse, double auto, double denseMedian, double sparseMedian,
               double autoMedian, DispatchDecision decision) {
        /** auto over the faster of dense and sparse, best rounds. */
        double ratio() {
            return auto / Math.min(dense, sparse);
        }

        /** The same on the medians. */
        double medianRatio() {
            return autoMedian / Math.min(denseMedian, sparseMedian);
        }
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
            DispatchDecision decision = null;
            for (Dispatch m : modes) { // warm-up: plans the static patterns, compiles
                call(p, pattern, base.withDispatch(m));
            }
            for (int r = 0; r < rounds; r++) {
                for (int j = 0; j < 3; j++) {
                    int m = (j + r) % 3;
                    long t0 = System.nanoTime();
                    AttentionResult res = call(p, pattern, base.withDispatch(modes[m]));
                    t[m][r] = (System.nanoTime() - t0) / 1e6;
                    if (modes[m] == Dispatch.AUTO) {
                        decision = res.decision();
                    }
                }
            }
            Row row = new Row(pattern.name(), best(t[0]), best(t[1]), best(t[2]), median(t[0]), median(t[1]),
                    median(t[2]), decision);
            rows.add(row);
            err.printf("  %-60s dense %8.1f  sparse %8.1f  auto %8.1f ms (%s)  auto/min %.2f (medians %.2f)%n",
                    clip(row.pattern(), 60), row.dense(), row.sparse(), row.auto(), row.decision().ran(), row.ratio(),
                    row.medianRatio());
        }
        out.printf("Dispatch sweep: %s %s, B=1 H=%d N=%d D=%d causal; best of %d rounds, modes alternating; ms per "
                + "drop-in call (wall)%n", backend.name(), type, heads, seq, dim, rounds);
        String fmt = "%-62s %8s %8s %8s %-14s %9s %9s %9s %8s %8s%n";
        out.printf(fmt, "pattern", "dense", "sparse", "auto", "auto ran", "est.spars", "est.expd", "est.dense", "auto/min",
                "medians");
        double worst = 0;
        double worstMedian = 0;
        for (Row r : rows) {
            worst = Math.max(worst, r.ratio());
            worstMedian = Math.max(worstMedian, r.medianRatio());
            DispatchDecision d = r.decision();
            out.printf(fmt, clip(r.pattern(), 62), f(r.dense()), f(r.sparse()), f(r.auto()), d.ran(), f(d.sparseMillis()),
                    f(d.expandedMillis()), f(d.denseMillis()), String.format("%.2f", r.ratio()),
                    String.format("%.2f", r.medianRatio()));
        }
        out.printf("worst auto / min(dense, sparse): best rounds %.2f, medians %.2f (target <= 1.10)%n", worst, worstMedian);
        return 0;
    }

    private static String f(double x) {
        return Double.isNaN(x) ? "-" : String.format("%.1f", x);
    }

    private static AttentionResult call(StructuredProblem.Generated p, Pattern pattern, Options o) {
        return Attention.forwardWithLse(p.q(), p.k(), p.v(), pattern, o);
    }

    private static double best(double[] x) {
        return Arrays.stream(x).min().orElse(Double.NaN);
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }
}
