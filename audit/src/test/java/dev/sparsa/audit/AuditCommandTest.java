package dev.sparsa.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.sparsa.attention.Attention;
import dev.sparsa.io.NdArray;
import dev.sparsa.io.Npy;
import dev.sparsa.io.Safetensors;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.compose.PerLayer;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code sparsa audit} on arrays NumPy wrote (make_qkv.py: head 0 local, head 1 retrieving) and on
 * arrays its own writer wrote: the files it writes, the choice it makes, the recall it reports
 * against an fp64 computation of the softmax mass, and one clear line with exit code 2 for bad input.
 */
class AuditCommandTest {
    @TempDir
    Path dir;

    record Run(int code, String out, String err) {
    }

    static Run audit(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        CommandLine cl = new CommandLine(new AuditCommand(o, e));
        cl.setErr(new java.io.PrintWriter(e, true));
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            if (ex instanceof IllegalArgumentException) {
                e.println("sparsa: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        int code = cl.execute(args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Path fixture(String name) {
        try {
            return Path.of(AuditCommandTest.class.getResource(name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void auditsNumpyArraysWritesReportAndConfigThatReproducesTheRecall() throws IOException {
        Path out = dir.resolve("report");
        Run r = audit("--q", fixture("q.npy").toString(), "--k", fixture("k.npy").toString(), "--v",
                fixture("v.npy").toString(), "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.size(out.resolve("report.html")) > 1000);
        Map<String, Object> json = flatten(r.out());
        assertEquals(2L, json.get("summary.heads"));
        String head0 = (String) json.get("heads[0].chosen");
        assertTrue(!head0.equals("dense()"), "the local head needs less than dense: " + head0);
        assertEquals(false, json.get("heads[0].retrieval"), "head 0 attends locally");
        assertEquals(true, json.get("heads[1].retrieval"), "head 1 attends half a sequence away");

        PerLayer config = Patterns.fromConfig(Files.readString(out.resolve("config.json")));
        assertEquals(1, config.layerCount());
        Tensor q = Npy.readTensor(fixture("q.npy"), Layout.BHSD);
        Tensor k = Npy.readTensor(fixture("k.npy"), Layout.BHSD);
        Tensor v = Npy.readTensor(fixture("v.npy"), Layout.BHSD);
        SparsePlan plan = Attention.plan(q, k, v, config.forLayer(0), Options.defaults());
        for (int h = 0; h < 2; h++) {
            double reported = ((Number) json.get("heads[" + h + "].chosenRecall")).doubleValue();
            assertEquals(softmaxMassKept(plan.layout(0, h), q, k, h), reported, 1e-4, "head " + h);
        }
    }

    @Test
    void everyCandidatesRecallIsTheSoftmaxMassItKeeps() throws IOException {
        Run r = audit("--q", fixture("q.npy").toString(), "--k", fixture("k.npy").toString(), "--json", "--patterns",
                "symmetricWindow(radius=8,sinks=0);blockTopK(blocks=1);sortLsh(bits=3,chunk=32,samples=8);strided(l=16)");
        assertEquals(0, r.code(), r.err());
        Map<String, Object> json = flatten(r.out());
        Tensor q = Npy.readTensor(fixture("q.npy"), Layout.BHSD);
        Tensor k = Npy.readTensor(fixture("k.npy"), Layout.BHSD);
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 5; c++) {
                String at = "heads[" + h + "].candidates[" + c + "].";
                Pattern p = dev.sparsa.patterns.compose.PatternSpec.parse((String) json.get(at + "pattern")).pattern();
                SparsePlan plan = Attention.plan(q, k, k, p, Options.defaults());
                assertEquals(softmaxMassKept(plan.layout(0, h), q, k, h), ((Number) json.get(at + "recall")).doubleValue(),
                        1e-4, at);
            }
        }
    }

    @Test
    void auditsSafetensorsAndArraysItsOwnWriterMadeInEitherLayout() throws IOException {
        Tensor q = Npy.readTensor(fixture("q.npy"), Layout.BHSD);
        Tensor k = Npy.readTensor(fixture("k.npy"), Layout.BHSD);
        Tensor v = Npy.readTensor(fixture("v.npy"), Layout.BHSD);
        Map<String, NdArray> t = new LinkedHashMap<>();
        t.put("query", NdArray.of(q, Layout.BSHD));
        t.put("key", NdArray.of(k, Layout.BSHD));
        t.put("value", NdArray.of(v, Layout.BSHD));
        Path st = dir.resolve("qkv.safetensors");
        Safetensors.write(st, t, Map.of());
        Run a = audit("--in", st.toString(), "--names", "query,key,value", "--layout", "bshd", "--json",
                "--patterns", "sliding-window");
        Npy.write(dir.resolve("q.npy"), q, Layout.BHSD);
        Npy.write(dir.resolve("k.npy"), k, Layout.BHSD);
        Npy.write(dir.resolve("v.npy"), v, Layout.BHSD);
        Run b = audit("--q", dir.resolve("q.npy").toString(), "--k", dir.resolve("k.npy").toString(), "--v",
                dir.resolve("v.npy").toString(), "--json", "--patterns", "sliding-window");
        assertEquals(0, a.code(), a.err());
        assertEquals(0, b.code(), b.err());
        Map<String, Object> ja = flatten(a.out());
        Map<String, Object> jb = flatten(b.out());
        for (int h = 0; h < 2; h++) {
            assertEquals(jb.get("heads[" + h + "].chosen"), ja.get("heads[" + h + "].chosen"));
            assertEquals((Double) jb.get("heads[" + h + "].chosenRecall"), (Double) ja.get("heads[" + h + "].chosenRecall"), 1e-6);
        }
        Run causal = audit("--q", dir.resolve("q.npy").toString(), "--k", dir.resolve("k.npy").toString(), "--causal",
                "--patterns", "sliding-window,top-k", "--json");
        assertEquals(0, causal.code(), causal.err());
        Map<String, Object> jc = flatten(causal.out());
        assertEquals(true, jc.get("settings.causal"));
        assertTrue(((String) jc.get("candidates[1]")).startsWith("aShape("), "a causal window is an A-shape: " + jc.get("candidates[1]"));
        assertTrue(((String) jc.get("settings.retrievalProbe")).startsWith("aShape("));
    }

    @Test
    void badInputIsOneClearLineAndExitTwo() throws IOException {
        String q = fixture("q.npy").toString();
        String k = fixture("k.npy").toString();
        byte[] bytes = Files.readAllBytes(fixture("q.npy"));
        Path cut = dir.resolve("cut.npy");
        Files.write(cut, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        Path text = dir.resolve("not.npy");
        Files.writeString(text, "hello");
        Npy.write(dir.resolve("rank1.npy"), NdArray.ofFloats(new float[16], 16));
        Npy.write(dir.resolve("short.npy"), NdArray.ofFloats(new float[2 * 64 * 16], 1, 2, 64, 16));
        Npy.write(dir.resolve("d8.npy"), NdArray.ofFloats(new float[2 * 128 * 8], 1, 2, 128, 8));
        Npy.write(dir.resolve("fp8.npy"), NdArray.ofE4m3(new byte[2 * 128 * 16], 1, 2, 128, 16));
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {"--q", cut.toString(), "--k", k});
        cases.add(new String[] {"--q", text.toString(), "--k", k});
        cases.add(new String[] {"--q", dir.resolve("missing.npy").toString(), "--k", k});
        cases.add(new String[] {"--q", dir.resolve("rank1.npy").toString(), "--k", k});
        cases.add(new String[] {"--q", q, "--k", dir.resolve("d8.npy").toString()});
        cases.add(new String[] {"--q", q, "--k", k, "--v", dir.resolve("short.npy").toString()});
        cases.add(new String[] {"--q", q, "--k", k, "--layout", "sbhd"});
        cases.add(new String[] {"--q", q, "--k", k, "--patterns", "windows"});
        cases.add(new String[] {"--q", q, "--k", k, "--patterns", "aShape(window=64)"});
        cases.add(new String[] {"--q", q, "--k", k, "--recall", "1.5"});
        cases.add(new String[] {"--q", q});
        cases.add(new String[] {"--model", "gpt-17", "--text", q});
        cases.add(new String[] {"--in", q, "--names", "q,k"});
        cases.add(new String[] {"--q", dir.resolve("fp8.npy").toString(), "--k", dir.resolve("fp8.npy").toString()});
        String[] says = {"truncated", "not a .npy file", "no such file", "rank 2, 3 or 4", "q, k, v:", "q, k, v:",
                "--layout", "unknown family 'windows'", "takes [window, sinks]", "recall", "give --q", "unknown model",
                "not a .safetensors file", "e4m3 arrays hold codes without their scales"};
        for (int i = 0; i < cases.size(); i++) {
            Run r = audit(cases.get(i));
            assertEquals(2, r.code(), String.join(" ", cases.get(i)) + " -> " + r.err());
            String[] lines = r.err().strip().split("\n");
            String last = lines[lines.length - 1];
            assertTrue(last.startsWith("sparsa: ") && last.contains(says[i]), "expected '" + says[i] + "' in: " + r.err());
            assertEquals("", r.out(), "nothing on stdout");
        }
    }

    /** fp64: the share of row r's dense softmax mass on the keys the layout admits, averaged over rows. */
    static double softmaxMassKept(HeadLayout layout, Tensor q, Tensor k, int h) {
        int n = q.seqLen();
        int d = q.dim();
        double scale = 1 / Math.sqrt(d);
        double[][] s = new double[n][k.seqLen()];
        double[] lse = new double[n];
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < k.seqLen(); j++) {
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += (double) q.get(0, h, i, x) * k.get(0, h, j, x);
                }
                s[i][j] = scale * dot;
                max = Math.max(max, s[i][j]);
            }
            double sum = 0;
            for (int j = 0; j < k.seqLen(); j++) {
                sum += Math.exp(s[i][j] - max);
            }
            lse[i] = max + Math.log(sum);
        }
        double[] kept = new double[n];
        for (int t = 0; t < layout.tileCount(); t++) {
            for (int i = 0; i < layout.rowCount(t); i++) {
                int r = layout.row(t, i);
                layout.forEachAdmittedKey(t, r, (key, w) -> kept[r] += Math.exp(s[r][key] - lse[r]));
            }
        }
        double mean = 0;
        for (double x : kept) {
            mean += x;
        }
        return mean / n;
    }

    /** The JSON flattened to paths like {@code heads[1].candidates[0].recall}. */
    static Map<String, Object> flatten(String json) throws IOException {
        Map<String, Object> out = new LinkedHashMap<>();
        try (JsonParser p = new JsonFactory().createParser(json)) {
            p.nextToken();
            walk(p, "", out);
            assertEquals(null, p.nextToken(), "one JSON object and nothing else on stdout");
        }
        return out;
    }

    private static void walk(JsonParser p, String path, Map<String, Object> out) throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                walk(p, path.isEmpty() ? name : path + "." + name, out);
            }
        } else if (t == JsonToken.START_ARRAY) {
            int i = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) {
                walk(p, path + "[" + i++ + "]", out);
            }
        } else if (t == JsonToken.VALUE_STRING) {
            out.put(path, p.getText());
        } else if (t == JsonToken.VALUE_NUMBER_INT) {
            out.put(path, p.getLongValue());
        } else if (t == JsonToken.VALUE_NUMBER_FLOAT) {
            out.put(path, p.getDoubleValue());
        } else if (t == JsonToken.VALUE_TRUE || t == JsonToken.VALUE_FALSE) {
            out.put(path, p.getBooleanValue());
        } else {
            out.put(path, null);
        }
    }
}
