package dev.sparsa.cli;

import static dev.sparsa.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.tensor.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {

    @Test
    void jsonGoesToStdoutAloneAndHoldsEveryRowField() throws Exception {
        String[] r = run("demo", "--json", "-H", "2", "-n", "192", "-d", "32", "--dtypes", "f32,f16",
                "--densities", "0.3", "--no-families", "--sample-rows", "16");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("sparsa demo"), "progress belongs on stderr");
        List<Map<String, Object>> rows = rows(r[1]);
        assertEquals(4, rows.size(), "dense + one density, two dtypes");
        for (Map<String, Object> row : rows) {
            for (String f : List.of("backend", "pattern", "dtype", "dispatch", "density", "pairsVisited", "planMillis", "millis",
                    "gflops", "speedup", "speedupEndToEnd", "relErrVsOracle", "relErrVsDense", "recall")) {
                assertTrue(row.containsKey(f), "row lacks " + f + ": " + row);
            }
            double tol = Tolerance.output(DType.parse((String) row.get("dtype")));
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= tol, row.toString());
            double density = ((Number) row.get("density")).doubleValue();
            assertTrue(density > 0 && density <= 1, row.toString());
        }
        Map<String, Object> dense = rows.get(0);
        assertEquals("dense", dense.get("pattern"));
        assertEquals(1.0, ((Number) dense.get("recall")).doubleValue(), 1e-9);
        assertEquals(1.0, ((Number) dense.get("speedup")).doubleValue(), 0);
        assertEquals(1.0, ((Number) dense.get("speedupEndToEnd")).doubleValue(), 0);
        Map<Object, Map<String, Object>> denseByType = new HashMap<>();
        rows.stream().filter(x -> "dense".equals(x.get("pattern"))).forEach(x -> denseByType.put(x.get("dtype"), x));
        for (Map<String, Object> row : rows) {
            assertEquals("sparse", row.get("dispatch"), "the demo runs each pattern's plan unless told otherwise");
            double millis = ((Number) row.get("millis")).doubleValue();
            double plan = ((Number) row.get("planMillis")).doubleValue();
            Map<String, Object> d = denseByType.get(row.get("dtype"));
            double denseTotal = ((Number) d.get("millis")).doubleValue() + ((Number) d.get("planMillis")).doubleValue();
            assertEquals(denseTotal / (plan + millis), ((Number) row.get("speedupEndToEnd")).doubleValue(), 1e-9);
        }
    }

    @Test
    void aRaggedBatchRunsEverySequenceWithinTheOracleTolerance() throws Exception {
        String[] r = run("demo", "--json", "-H", "2", "--kv-heads", "1", "-d", "32", "--lengths", "100,0,257,1",
                "--dtypes", "f32", "--densities", "0.3", "--sample-rows", "16", "--dispatch", "auto");
        assertEquals("0", r[0], r[2]);
        List<Map<String, Object>> rows = rows(r[1]);
        assertTrue(rows.size() > 20, "dense, one density and the catalogue: " + rows.size());
        for (Map<String, Object> row : rows) {
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= 1e-5, row.toString());
            assertTrue(String.valueOf(row.get("dispatch")).matches("(sparse|dense|block-expanded)(:\\d+)?( .*)?"),
                    row.toString());
        }
        assertTrue(r[1].contains("\"lengths\""), "the problem names the lengths");
    }

    @Test
    void everyDispatchModeRunsAndDenseRunsDenseForEveryPattern() throws Exception {
        String[] r = run("demo", "--json", "-H", "2", "-n", "160", "-d", "32", "--dtypes", "bf16", "--densities", "0.3",
                "--sample-rows", "8", "--dispatch", "dense");
        assertEquals("0", r[0], r[2]);
        for (Map<String, Object> row : rows(r[1])) {
            assertEquals("dense", row.get("dispatch"), row.toString());
            assertEquals(1.0, ((Number) row.get("recall")).doubleValue(), 1e-6, row.toString());
        }
    }

    @Test
    void badArgumentsExitWithTwoAndNameTheOption() {
        String[] r = run("demo", "--densities", "1.5", "-n", "64", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("--densities"), r[2]);
        r = run("demo", "--backend", "nope", "-n", "64", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("backend"), r[2]);
        r = run("demo", "--dispatch", "sometimes", "-n", "64", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("dispatch: expected auto, sparse or dense, got 'sometimes'"), r[2]);
        r = run("demo", "--lengths", "10,-3", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("lengths: sequence 1 has negative length -3"), r[2]);
        r = run("demo", "--lengths", "10,20", "-n", "64", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("--lengths") && r[2].contains("--seq"), r[2]);
        r = run("demo", "--lengths", "0,0", "-d", "16", "-H", "1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("--lengths: at least one sequence"), r[2]);
    }

    /** Bad input ends in exit code 2 and exactly one line on stderr that names the option. */
    private static void refused(String option, String... args) {
        String[] r = run(args);
        assertEquals("2", r[0], String.join(" ", args) + " -> " + r[2]);
        assertEquals(1, r[2].lines().count(), "one line: " + r[2]);
        assertTrue(r[2].startsWith("sparsa: ") && r[2].contains(option), r[2]);
        assertEquals("", r[1], "nothing on stdout");
    }

    @Test
    void e4m3RowsRunOnTheCpuWithinTheF32Bound() throws Exception {
        // the demo's outputs are f32, so the CPU's e4m3 rows meet the f32 bound (their values are code × scale)
        String[] r = run("demo", "--json", "-H", "2", "-n", "160", "-d", "32", "--dtypes", "e4m3", "--backend", "cpu",
                "--densities", "0.3", "--no-families", "--sample-rows", "8", "--warmup-ms", "0");
        assertEquals("0", r[0], r[2]);
        List<Map<String, Object>> rows = rows(r[1]);
        assertEquals(2, rows.size(), r[1]);
        for (Map<String, Object> row : rows) {
            assertEquals("e4m3", row.get("dtype"));
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= Tolerance.output(DType.F32), row.toString());
        }
    }

    @Test
    void valuesOutOfRangeAreRefusedInOneLine() {
        refused("-n/--seq", "demo", "-n", "0");
        refused("-n/--seq", "demo", "-n", "-5");
        refused("heap", "demo", "-n", "1000000000");
        refused("-d/--dim", "demo", "-d", "12", "-n", "64");
        refused("-H/--heads", "demo", "-H", "0");
        refused("--kv-heads", "demo", "-H", "4", "--kv-heads", "3");
        refused("--repeat", "demo", "--repeat", "0");
        refused("--sample-rows", "demo", "--sample-rows", "0");
        refused("--dtypes", "demo", "--dtypes", "f8", "-n", "64", "-d", "16");
        refused("--pattern", "demo", "--pattern", "no-such-pattern", "-n", "64", "-d", "16", "-H", "1");
        refused("--seq", "demo", "-n", "many");
        refused("--nope", "demo", "--nope");
    }

    @Test
    void theHeapEstimateGrowsWithTheProblemAndRefusesBeforeAllocating() {
        var small = dev.sparsa.spec.AttentionShape.of(1, 8, 4096, 4096, 128);
        var large = dev.sparsa.spec.AttentionShape.of(1, 8, 1_000_000_000, 1_000_000_000, 128);
        long need = DemoCommand.heapNeeded(small, List.of(DType.F32, DType.BF16));
        assertTrue(need > 4L * 3 * 8 * 4096 * 128 && need < (1L << 30), "about 100 MiB, got " + need);
        assertTrue(DemoCommand.heapNeeded(large, List.of(DType.F32)) > (1L << 40), "terabytes");
        DemoCommand.requireHeap(small, List.of(DType.F32), 8L << 30);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> DemoCommand.requireHeap(small, List.of(DType.F32), 32L << 20));
        assertTrue(e.getMessage().startsWith("-n/--seq:") && e.getMessage().contains("-Xmx"), e.getMessage());
    }

    @Test
    void theWarmUpEndsWhenTheDenseRunsStopGettingFaster() {
        assertTrue(!DemoCommand.settled(List.of(9L, 8L, 7L, 6L, 5L)), "fewer than six runs");
        assertTrue(!DemoCommand.settled(List.of(900L, 800L, 700L, 300L, 200L, 250L)), "still getting faster");
        assertTrue(DemoCommand.settled(List.of(900L, 210L, 200L, 205L, 220L, 190L)), "the JIT is done");
        assertTrue(DemoCommand.settled(List.of(200L, 210L, 190L, 400L, 205L, 600L)), "noise, not a trend");
    }

    @Test
    void unwritableOutputIsRefusedInOneLine(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        refused("--out", "masks", "--out", file.resolve("pictures").toString());
        refused("--out", "masks", "--out", file.toString());
    }

    @Test
    void helpListsEveryCommand() {
        for (String[] args : new String[][] {{"help"}, {"--help"}}) {
            String[] r = run(args);
            assertEquals("0", r[0], r[2]);
            for (String c : List.of("demo", "masks", "help", "./sparsa test", "docs/cli.md")) {
                assertTrue(r[1].contains(c), c + " in " + r[1]);
            }
        }
        String[] r = run("help", "demo");
        assertEquals("0", r[0]);
        for (String o : List.of("--quick", "--json", "--pattern", "--list-patterns", "--warmup-ms", "-n, --seq")) {
            assertTrue(r[1].contains(o), o + " in " + r[1]);
        }
    }

    @Test
    void listPatternsNamesEveryCatalogueEntry() {
        String[] r = run("demo", "--list-patterns");
        assertEquals("0", r[0], r[2]);
        for (var c : dev.sparsa.patterns.PatternCatalogue.examples()) {
            assertTrue(r[1].contains(c.description()), c.description());
        }
        assertEquals(dev.sparsa.patterns.PatternCatalogue.examples().size() + 1, r[1].lines().count(), "a header and one line each");
    }

    @Test
    void patternSelectsCatalogueRowsAndTheTableHasALegend() throws Exception {
        String[] r = run("demo", "--json", "--pattern", "quest", "--pattern", "reformer", "-H", "1", "-n", "128", "-d", "16",
                "--dtypes", "f32", "--sample-rows", "8", "--warmup-ms", "0");
        assertEquals("0", r[0], r[2]);
        List<Map<String, Object>> rows = rows(r[1]);
        assertEquals(List.of("dense", "top-k", "lsh"), rows.stream().map(x -> x.get("family")).toList());
        assertTrue(r[2].contains("warm-up on cpu f32: "), r[2]);
        String[] table = run("demo", "--pattern", "tri-shape", "-H", "1", "-n", "128", "-d", "16", "--dtypes", "f32",
                "--sample-rows", "8", "--warmup-ms", "0");
        assertEquals("0", table[0], table[2]);
        assertTrue(table[1].contains(DemoCommand.LEGEND), table[1]);
        assertEquals(2 + 2 + 1 + DemoCommand.LEGEND.lines().count(), table[1].lines().count(), "title, header, 2 rows, blank, legend");
    }

    @Test
    void masksWritesPictures(@TempDir Path dir) throws Exception {
        String[] r = run("masks", "--out", dir.toString());
        assertEquals("0", r[0], r[2]);
        long pngs;
        try (var files = Files.list(dir)) {
            pngs = files.filter(f -> f.toString().endsWith(".png")).count();
        }
        assertTrue(pngs >= 6, "one picture per family at least, got " + pngs);
        assertEquals(pngs, r[1].lines().count(), "stdout lists the files");
    }

    @Test
    void sampledRowsIncludeTheTail() {
        int[] rows = DemoCommand.sampleRows(4096, 32);
        assertEquals(32, rows.length);
        assertEquals(4095, rows[rows.length - 1]);
        assertEquals(0, rows[0]);
        assertEquals(5, DemoCommand.sampleRows(5, 32).length);
    }

    /** Reads the "rows" array of the demo's JSON into maps (scalars only). */
    static List<Map<String, Object>> rows(String json) throws Exception {
        List<Map<String, Object>> rows = new ArrayList<>();
        try (JsonParser p = new JsonFactory().createParser(json)) {
            assertEquals(JsonToken.START_OBJECT, p.nextToken());
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                if (!name.equals("rows")) {
                    p.skipChildren();
                    continue;
                }
                while (p.nextToken() == JsonToken.START_OBJECT) {
                    Map<String, Object> row = new HashMap<>();
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String f = p.currentName();
                        JsonToken t = p.nextToken();
                        row.put(f, switch (t) {
                            case VALUE_STRING -> p.getText();
                            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> p.getNumberValue();
                            case VALUE_TRUE, VALUE_FALSE -> p.getBooleanValue();
                            default -> p.getText();
                        });
                    }
                    rows.add(row);
                }
            }
            assertEquals(null, p.nextToken(), "nothing after the JSON object");
        }
        return rows;
    }
}
