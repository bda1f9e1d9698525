package dev.sparsa.audit;

import dev.sparsa.audit.model.MiniLm;
import dev.sparsa.io.Npy;
import dev.sparsa.io.Safetensors;
import dev.sparsa.io.SafetensorsFile;
import dev.sparsa.patterns.compose.PatternSpec;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sparsa audit}: which attention a model can skip, measured head by head on its own Q, K, V
 * (from {@code .npy} or {@code .safetensors} files, or from a real model run on a text). Results go
 * to stdout (a table, or one JSON object with {@code --json}), progress to stderr; bad input is one
 * line on stderr and exit code 2 (through the command line's handler of {@link IllegalArgumentException}).
 */
@Command(name = "audit", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Audit attention head by head: every candidate pattern on each head's own Q/K/V, against dense;",
                "the cheapest candidate meeting the recall target is chosen per head; retrieval heads are flagged.",
                "Writes DIR/report.html and DIR/config.json (load it with Patterns.fromConfig)."})
public final class AuditCommand implements Callable<Integer> {

    @Option(names = "--q", paramLabel = "FILE", description = "Queries, .npy: [B=1, H, S, D] (bhsd), [H, S, D] or [S, D].")
    Path qFile;

    @Option(names = "--k", paramLabel = "FILE", description = "Keys, .npy, same layout (fewer heads for GQA).")
    Path kFile;

    @Option(names = "--v", paramLabel = "FILE", description = "Values, .npy (default: the keys, which leaves only the output error unmeasured).")
    Path vFile;

    @Option(names = "--in", paramLabel = "FILE", description = "One .safetensors holding Q, K and V (see --names).")
    Path safetensors;

    @Option(names = "--names", paramLabel = "Q,K,V", description = "Tensor names in --in (default: ${DEFAULT-VALUE}).",
            defaultValue = "q,k,v")
    String names;

    @Option(names = "--layout", paramLabel = "bhsd|bshd", description = "Axis order of the arrays (default: ${DEFAULT-VALUE}).",
            defaultValue = "bhsd")
    String layout;

    @Option(names = "--causal", description = "Causal attention (decoders). Default: bidirectional.")
    boolean causal;

    @Option(names = "--recall", paramLabel = "R", description = "Recall a chosen pattern must reach (default: ${DEFAULT-VALUE}).",
            defaultValue = "0.95")
    double recall;

    @Option(names = "--patterns", paramLabel = "LIST", description = {"Candidates: families (sliding-window, block-sparse, "
            + "vertical-slash, top-k, strided, lsh: a budget sweep each) and specs like aShape(window=64,sinks=4),",
            "separated by ';' or ','. Default: every family."})
    String patterns;

    @Option(names = "--model", paramLabel = "NAME", description = "Audit a real model instead of files: " + MiniLm.NAME + ".")
    String model;

    @Option(names = "--text", paramLabel = "FILE", description = "With --model: the text to encode (its first 512 tokens).")
    Path text;

    @Option(names = "--out", paramLabel = "DIR", description = "Write report.html and config.json here (created if missing).")
    Path out;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of the table.")
    boolean json;

    private final PrintStream stdout;
    private final PrintStream err;

    public AuditCommand(PrintStream stdout, PrintStream err) {
        this.stdout = stdout;
        this.err = err;
    }

    @Override
    public Integer call() throws IOException {
        long t0 = System.nanoTime();
        AuditReport report = model != null ? auditModel(t0) : auditFiles(t0);
        if (out != null) {
            try {
                Files.createDirectories(out);
                Files.writeString(out.resolve("config.json"), ConfigJson.of(report));
                HtmlReport.write(report, out.resolve("report.html"));
            } catch (IOException e) {
                throw new IllegalArgumentException("--out " + out + ": cannot write (" + e.getMessage() + ")");
            }
            err.println("sparsa audit: wrote " + out.resolve("report.html") + " and " + out.resolve("config.json"));
        }
        if (json) {
            AuditJson.write(report, stdout);
        } else {
            printTable(report);
        }
        return 0;
    }

    private AuditReport auditFiles(long t0) throws IOException {
        if (text != null) {
            throw new IllegalArgumentException("--text: only with --model");
        }
        Layout l = switch (layout.toLowerCase(Locale.ROOT)) {
            case "bhsd" -> Layout.BHSD;
            case "bshd" -> Layout.BSHD;
            default -> throw new IllegalArgumentException("--layout: expected bhsd or bshd, got '" + layout + "'");
        };
        Tensor q;
        Tensor k;
        Tensor v;
        Map<String, String> source = new LinkedHashMap<>();
        if (safetensors != null) {
            if (qFile != null || kFile != null || vFile != null) {
                throw new IllegalArgumentException("--in: give either --in with --names or --q/--k/--v, not both");
            }
            String[] n = names.split(",");
            if (n.length < 2 || n.length > 3) {
                throw new IllegalArgumentException("--names: expected q,k or q,k,v, got '" + names + "'");
            }
            SafetensorsFile f = Safetensors.read(existing(safetensors, "--in"));
            q = f.tensor(n[0].strip(), l);
            k = f.tensor(n[1].strip(), l);
            v = n.length == 3 ? f.tensor(n[2].strip(), l) : k;
            source.put("file", safetensors.toString());
            source.put("names", names);
        } else {
            if (qFile == null || kFile == null) {
                throw new IllegalArgumentException("audit: give --q FILE --k FILE [--v FILE], or --in FILE.safetensors, "
                        + "or --model " + MiniLm.NAME + " --text FILE");
            }
            q = Npy.readTensor(existing(qFile, "--q"), l);
            k = Npy.readTensor(existing(kFile, "--k"), l);
            v = vFile != null ? Npy.readTensor(existing(vFile, "--v"), l) : k;
            source.put("q", qFile.toString());
            source.put("k", kFile.toString());
            source.put("v", vFile != null ? vFile.toString() : "(the keys)");
        }
        source.put("layout", l.toString().toLowerCase(Locale.ROOT));
        for (Tensor t : new Tensor[] {q, k, v}) {
            if (t.dtype().isScaled()) {
                // a file holds e4m3 codes without their scales: auditing codes would weigh the wrong scores
                throw new IllegalArgumentException("q, k, v: e4m3 arrays hold codes without their scales; save the "
                        + "dequantised values (f32 or bf16) to audit them");
            }
        }
        try {
            AttentionShape.of(q, k, v);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("q, k, v: " + e.getMessage());
        }
        List<PatternSpec> specs = candidates(k.seqLen());
        List<Auditor.LayerInput> layers = List.of(new Auditor.LayerInput(0, q, k, v));
        err.printf("sparsa audit: %d heads x %d tokens x %d dims (%s), %d candidates%n", q.heads(), q.seqLen(), q.dim(),
                q.dtype(), specs.size());
        Auditor.Outcome o = new Auditor(Options.defaults().withCausal(causal), recall, err).audit(layers, specs);
        return AuditReport.of(source, causal, recall, layers, specs, o.heads(), o.chosenPlans(), null,
                (System.nanoTime() - t0) / 1e9);
    }

    private AuditReport auditModel(long t0) throws IOException {
        if (!MiniLm.NAME.equals(model)) {
            throw new IllegalArgumentException("--model: unknown model '" + model + "' (known: " + MiniLm.NAME + ")");
        }
        if (text == null) {
            throw new IllegalArgumentException("--model: needs --text FILE");
        }
        if (qFile != null || kFile != null || vFile != null || safetensors != null || causal) {
            throw new IllegalArgumentException("--model: takes its Q/K/V from the model (no --q/--k/--v/--in/--causal)");
        }
        String content;
        try {
            content = Files.readString(existing(text, "--text"), StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IllegalArgumentException("--text " + text + ": not UTF-8 text");
        }
        MiniLm m = MiniLm.load();
        int tokens = m.tokenize(content).length;
        List<PatternSpec> specs = candidates(tokens);
        ModelAudit.Result r = ModelAudit.run(m, content, specs, recall, err);
        Map<String, String> source = new LinkedHashMap<>();
        source.put("model", MiniLm.NAME);
        source.put("text", text.toString());
        return AuditReport.of(source, false, recall, r.layers(), specs, r.heads(), r.plans(), r.model(),
                (System.nanoTime() - t0) / 1e9);
    }

    private List<PatternSpec> candidates(int n) {
        return patterns == null ? CandidateSets.defaults(n, causal) : CandidateSets.parse(patterns, n, causal);
    }

    private static Path existing(Path p, String option) throws IOException {
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException(option + " " + p + ": " + (Files.exists(p) ? "not a regular file" : "no such file"));
        }
        if (!Files.isReadable(p)) {
            throw new IllegalArgumentException(option + " " + p + ": not readable");
        }
        return p;
    }

    private void printTable(AuditReport r) {
        stdout.printf("%-5s %-4s %-40s %8s %8s %9s %9s%n", "layer", "head", "chosen", "density", "recall", "speedup", "retrieval");
        for (HeadResult h : r.results()) {
            CandidateResult c = h.choice();
            stdout.printf("%-5d %-4d %-40s %8.3f %8.4f %8.2fx %9s%n", h.layer(), h.head(), c.spec(), c.density(), c.recall(),
                    c.kernelSpeedup(), h.retrieval() ? "yes" : "");
        }
        stdout.printf("%d heads: mean chosen density %.3f, %d meet recall %.2f, %d retrieval heads; %.1f s%n",
                r.results().size(), r.chosenDensity(), r.headsMeetingTarget(), r.recallTarget(), r.retrievalHeads(),
                r.seconds());
        if (r.model() != null) {
            stdout.printf("%s on %d tokens: dense cosine to ONNX Runtime %.6f; per-head choice cosine to dense %.5f at density %.3f%n",
                    r.model().name(), r.model().tokens(), r.model().denseCosine(), r.model().configCosine(),
                    r.model().configDensity());
            for (ModelResult.PatternCosine p : r.model().patterns()) {
                stdout.printf("  %-40s cosine %.5f  recall %.4f  density %.3f%n", p.spec(), p.cosine(), p.meanRecall(),
                        p.meanDensity());
            }
        }
    }
}
