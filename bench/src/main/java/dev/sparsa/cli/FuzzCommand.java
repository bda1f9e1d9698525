package dev.sparsa.cli;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.cli.fuzz.DecodeFuzzCase;
import dev.sparsa.cli.fuzz.DecodeFuzzRunner;
import dev.sparsa.cli.fuzz.FuzzCase;
import dev.sparsa.cli.fuzz.FuzzRunner;
import dev.sparsa.cli.fuzz.RaggedFuzzCase;
import dev.sparsa.cli.fuzz.RaggedFuzzRunner;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.tensor.Device;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.function.IntFunction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa fuzz --cases N --seed S}: random shapes, dtypes, layouts, patterns and parameters
 * (edges included), each checked against the fp64 oracle and, where short, the pattern's own
 * definition ({@link FuzzRunner}). Progress on stderr, the summary and every failing case (with the
 * seed that replays it alone) on stdout; exit status 1 when a case failed.
 */
@Command(name = "fuzz", mixinStandardHelpOptions = true,
        description = "Check random problems (shapes, dtypes, layouts, patterns, parameters, non-finite inputs) against "
                + "the fp64 oracle and the patterns' definitions.")
final class FuzzCommand implements Callable<Integer> {

    @Option(names = "--cases", description = "How many cases (default ${DEFAULT-VALUE}).", defaultValue = "1000")
    long cases;

    @Option(names = "--seed", description = "Seed of the run (default ${DEFAULT-VALUE}).", defaultValue = "1")
    long seed;

    @Option(names = "--case-seed", description = "Run only the case of this seed (as printed with a failure).")
    Long caseSeed;

    @Option(names = "--backend", description = "cpu or cuda (default ${DEFAULT-VALUE}); cases a backend does not run are"
            + " counted as skipped; with cuda, tilings and head dims are drawn from those the CUDA kernels cover"
            + " (--max-dim does not apply).", defaultValue = "cpu")
    String backend;

    @Option(names = "--max-length", description = "Longest query and key lengths drawn, about (default ${DEFAULT-VALUE}).",
            defaultValue = "100")
    int maxLength;

    @Option(names = "--max-dim", description = "Largest head dim drawn (default ${DEFAULT-VALUE}).", defaultValue = "256")
    int maxDim;

    @Option(names = "--decode", description = "Fuzz decode against KV caches (contiguous and paged, ragged lengths, "
            + "every decode pattern, split rules) instead of prefill; --max-length bounds the caches.")
    boolean decode;

    @Option(names = "--ragged", description = "Fuzz ragged batches (packed and padded, empty sequences, static and "
            + "data-dependent patterns) through the drop-in call: each sequence's rows against the same call on its own "
            + "tensors, bit for bit.")
    boolean ragged;

    @Option(names = "--show", description = "Print at most this many failing cases (default ${DEFAULT-VALUE}).",
            defaultValue = "50")
    int show;

    private final PrintStream stdout;
    private final PrintStream err;

    FuzzCommand(PrintStream stdout, PrintStream err) {
        this.stdout = stdout;
        this.err = err;
    }

    /** The seed of case {@code i} of a run: each case replays alone from it. */
    static long caseSeed(long runSeed, long i) {
        return new SplittableRandom(runSeed * 0x9E3779B97F4A7C15L + i).nextLong();
    }

    @Override
    public Integer call() {
        if (cases < 1) {
            throw new IllegalArgumentException("--cases: must be >= 1, got " + cases);
        }
        if (maxLength < 1 || maxDim < 8 || maxDim % 8 != 0) {
            throw new IllegalArgumentException("--max-length, --max-dim: need a length >= 1 and a dim that is a multiple of 8,"
                    + " got " + maxLength + " and " + maxDim);
        }
        if (decode && ragged) {
            throw new IllegalArgumentException("--decode, --ragged: choose one");
        }
        FuzzRunner runner = decode || ragged ? null : runner(backend);
        DecodeFuzzRunner decodeRunner = decode ? decodeRunner(backend) : null;
        RaggedFuzzRunner raggedRunner = ragged ? raggedRunner(backend) : null;
        String kind = decode ? " decode" : ragged ? " ragged" : "";
        long n = caseSeed != null ? 1 : cases;
        Map<FuzzRunner.Verdict, Long> counts = new EnumMap<>(FuzzRunner.Verdict.class);
        for (FuzzRunner.Verdict v : FuzzRunner.Verdict.values()) {
            counts.put(v, 0L);
        }
        List<String> failures = new ArrayList<>();
        Map<String, Long> refusals = new java.util.TreeMap<>();
        long started = System.nanoTime();
        long lastReport = started;
        err.println("sparsa fuzz: " + n + kind + " case(s), seed " + seed + ", backend " + backend
                + ", lengths up to about "
                + maxLength + ", head dims up to " + maxDim);
        for (long i = 0; i < n; i++) {
            long cs = caseSeed != null ? caseSeed : caseSeed(seed, i);
            Object c;
            FuzzRunner.Outcome o;
            if (decode) {
                DecodeFuzzCase dc = DecodeFuzzCase.random(new SplittableRandom(cs), maxLength, maxDim, backend.equals("cuda"));
                c = dc;
                o = decodeRunner.run(dc);
            } else if (ragged) {
                RaggedFuzzCase rc = RaggedFuzzCase.random(new SplittableRandom(cs), maxLength, maxDim, backend.equals("cuda"));
                c = rc;
                o = raggedRunner.run(rc);
            } else {
                FuzzCase fc = FuzzCase.random(new SplittableRandom(cs), maxLength, maxDim, backend.equals("cuda"));
                c = fc;
                o = runner.run(fc);
            }
            counts.merge(o.verdict(), 1L, Long::sum);
            if (o.verdict() == FuzzRunner.Verdict.REFUSED) {
                refusals.merge(o.detail().substring(0, Math.max(0, o.detail().indexOf(':'))), 1L, Long::sum);
            }
            if (o.verdict() == FuzzRunner.Verdict.FAILED) {
                String line = "FAIL " + (decode ? "--decode " : ragged ? "--ragged " : "") + "--case-seed " + cs
                        + " --max-length " + maxLength + " --max-dim " + maxDim + " " + c + ": "
                        + o.detail();
                if (failures.size() < show) {
                    failures.add(line);
                }
                err.println(line);
            }
            long now = System.nanoTime();
            if (now - lastReport > 10_000_000_000L || i + 1 == n) {
                lastReport = now;
                err.printf("sparsa fuzz: %d/%d cases, %d failed, %.0f s%n", i + 1, n, counts.get(FuzzRunner.Verdict.FAILED),
                        (now - started) / 1e9);
            }
        }
        stdout.printf("fuzz%s: %d cases (seed %d, backend %s, --max-length %d --max-dim %d): %d passed, %d refused by a"
                        + " pattern (documented), %d skipped by the backend, %d failed, %.0f s%n", kind, n,
                seed, backend, maxLength,
                maxDim, counts.get(FuzzRunner.Verdict.PASSED), counts.get(FuzzRunner.Verdict.REFUSED),
                counts.get(FuzzRunner.Verdict.SKIPPED), counts.get(FuzzRunner.Verdict.FAILED),
                (System.nanoTime() - started) / 1e9);
        if (!refusals.isEmpty()) {
            stdout.println("refused, by argument: " + refusals);
        }
        failures.forEach(stdout::println);
        return counts.get(FuzzRunner.Verdict.FAILED) == 0 ? 0 : 1;
    }

    private static DecodeFuzzRunner decodeRunner(String backend) {
        return switch (backend) {
            case "cpu" -> new DecodeFuzzRunner(cpuWithThreads(), true);
            case "cuda" -> {
                AttentionBackend cuda = cuda();
                yield new DecodeFuzzRunner(t -> cuda, false);
            }
            default -> throw new IllegalArgumentException("--backend: cpu or cuda, got " + backend);
        };
    }

    private static RaggedFuzzRunner raggedRunner(String backend) {
        return switch (backend) {
            case "cpu" -> new RaggedFuzzRunner(Device.CPU);
            case "cuda" -> new RaggedFuzzRunner(cuda().defaultDevice());
            default -> throw new IllegalArgumentException("--backend: cpu or cuda, got " + backend);
        };
    }

    private static FuzzRunner runner(String backend) {
        return switch (backend) {
            case "cpu" -> new FuzzRunner(cpuWithThreads(), true);
            case "cuda" -> {
                AttentionBackend cuda = cuda();
                yield new FuzzRunner(t -> cuda, false);
            }
            default -> throw new IllegalArgumentException("--backend: cpu or cuda, got " + backend);
        };
    }

    /** CPU backends by thread count (1 to 3), made once each. */
    private static IntFunction<AttentionBackend> cpuWithThreads() {
        CpuBackend[] byThreads = new CpuBackend[4];
        return t -> {
            synchronized (byThreads) {
                if (byThreads[t] == null) {
                    byThreads[t] = new CpuBackend(t);
                }
                return byThreads[t];
            }
        };
    }

    private static AttentionBackend cuda() {
        AttentionBackend cuda = Backends.get("cuda");
        if (!cuda.availability().available()) {
            throw new IllegalArgumentException("--backend: cuda is not available here: " + cuda.availability().reason());
        }
        return cuda;
    }
}
