package dev.sparsa.cli;

import static dev.sparsa.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.sparsa.bench.CacheEviction;
import dev.sparsa.bench.DecodeProblem;
import dev.sparsa.bench.StepAllocation;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class DecodeCommandTest {

    @Test
    void jsonHoldsTheMachineCopyBandwidthAndEveryRowField() throws Exception {
        String[] r = run("decode", "--json", "-H", "4", "--kv-heads", "2", "-n", "700", "-d", "32", "--rows", "2",
                "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "4", "--budgets", "0.25,0.1");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("sparsa decode") && r[2].contains("copy bandwidth"), "progress belongs on stderr");
        assertTrue(r[2].contains("% of the last copy)"), "the host backend's rows as a share of the copy: " + r[2]);
        assertTrue(copyGBps(r[1]) > 0);
        List<Map<String, Object>> rows = DemoCommandTest.rows(r[1]);
        // dense contiguous, dense paged, Quest x 2, top-k x 2, sinks + window; for f32 and bf16
        assertEquals(14, rows.size());
        for (Map<String, Object> row : rows) {
            for (String f : List.of("backend", "pattern", "kvLayout", "dtype", "batch", "kvLength", "budget", "millis",
                    "bytesTouched", "gbPerSec", "speedup", "relErrVsOracle", "recall", "allocatedBytesPerStep")) {
                assertTrue(row.containsKey(f), "row lacks " + f + ": " + row);
            }
            // HotSpot counts allocated bytes, so every row has a count
            assertTrue(((Number) row.get("allocatedBytesPerStep")).longValue() >= 0, row.toString());
            double tol = "f32".equals(row.get("dtype")) ? 1e-5 : 1e-2;
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= tol, row.toString());
            assertTrue(List.of("contiguous", "paged").contains(row.get("kvLayout")), row.toString());
            double recall = ((Number) row.get("recall")).doubleValue();
            assertTrue(recall > 0 && recall <= 1 + 1e-9, row.toString());
            assertTrue(((Number) row.get("bytesTouched")).longValue() > 0, row.toString());
        }
        assertEquals("dense", rows.get(0).get("pattern"));
        assertEquals("contiguous", rows.get(0).get("kvLayout"));
        assertEquals("paged", rows.get(1).get("kvLayout"));
        assertEquals(1.0, ((Number) rows.get(0).get("recall")).doubleValue(), 1e-9);
        assertEquals(1.0, ((Number) rows.get(1).get("speedup")).doubleValue(), 0);
        assertEquals(175, ((Number) rows.get(2).get("budget")).intValue());
    }

    @Test
    void aStepThatAllocatesMoreThanItReadsIsFlaggedOnStderrAndCountedInItsRow() throws Exception {
        // a count that grows by 50 MB between any two reads: every timed step "allocates" 50 MB, far more than
        // the few hundred KB these rows read
        long[] count = {0};
        StepAllocation fake = StepAllocation.of(() -> count[0] += 50_000_000L);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        DecodeCommand command = new DecodeCommand(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), fake);
        int code = new CommandLine(command).execute("--json", "--backend", "cpu", "-H", "2", "--kv-heads", "1", "-n", "300",
                "-d", "16", "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2", "--dtypes", "f32", "--budgets", "0.5");
        String stderr = err.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, stderr);
        assertTrue(stderr.contains("sparsa decode: warning: cpu f32 contiguous dense allocated 50.0 MB a step while reading"),
                stderr);
        assertEquals(5, stderr.lines().filter(l -> l.startsWith("sparsa decode: warning: ")).count(),
                "one warning per row: " + stderr);
        for (Map<String, Object> row : DemoCommandTest.rows(out.toString(StandardCharsets.UTF_8))) {
            assertEquals(50_000_000L, ((Number) row.get("allocatedBytesPerStep")).longValue(), row.toString());
        }
    }

    @Test
    void coldReadsTheHostCachesAwayBeforeEachTimedStepAndSaysSo() throws Exception {
        String[] common = {"decode", "--json", "--backend", "cpu", "-H", "2", "--kv-heads", "1", "-n", "300", "-d", "16",
                "--repeat", "2", "--warmup-ms", "0", "--copy-mib", "2", "--dtypes", "f32", "--budgets", "0.5"};
        String[] warm = run(common);
        assertEquals("0", warm[0], warm[2]);
        assertTrue(warm[1].contains("\"hostCaches\" : \"warm: timed steps run back to back\""), warm[1]);
        String[] cold = run(java.util.stream.Stream.concat(java.util.Arrays.stream(common), java.util.stream.Stream.of("--cold"))
                .toArray(String[]::new));
        assertEquals("0", cold[0], cold[2]);
        // by default twice the largest cache the OS reports, at least 64 MiB
        assertTrue(cold[1].contains("\"hostCaches\" : \"cold: " + CacheEviction.defaultMib() + " MiB read on the host"
                + " before each timed step and selection\""), cold[1]);
        assertTrue(CacheEviction.defaultMib() >= CacheEviction.MIN_MIB);
        List<Map<String, Object>> rows = DemoCommandTest.rows(cold[1]);
        assertEquals(5, rows.size(), cold[1]);
        for (Map<String, Object> row : rows) {
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= 1e-5, row.toString());
        }
        String[] table = run("decode", "--cold", "--cold-mib", "8", "--backend", "cpu", "-H", "2", "--kv-heads", "1",
                "-n", "300", "-d", "16", "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2", "--dtypes", "f32",
                "--budgets", "0.5");
        assertEquals("0", table[0], table[2]);
        assertTrue(table[1].lines().findFirst().orElse("").endsWith("host caches cold (8 MiB read before each timed"
                + " step)"), table[1]);
    }

    @Test
    void theTableGivesHostRowsAShareOfTheCopy() {
        String[] r = run("decode", "--backend", "cpu", "-H", "2", "--kv-heads", "1", "-n", "300", "-d", "16",
                "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2", "--dtypes", "f32", "--budgets", "0.5");
        assertEquals("0", r[0], r[2]);
        List<String> rows = r[1].lines().filter(l -> l.startsWith("cpu ")).toList();
        assertEquals(5, rows.size(), r[1]); // dense contiguous and paged, Quest, top-k, sinks + window
        for (String row : rows) {
            // back, layout, dtype, pattern (one token), budget, ms, select ms, GB/s, %copy, ...
            String[] f = row.trim().split("\\s+");
            assertTrue(f[8].endsWith("%"), row);
            // the selection's time: none for dense rows, a time for the others
            if (f[3].equals("dense")) {
                assertEquals("-", f[6], row);
            } else {
                assertTrue(Double.parseDouble(f[6]) >= 0, row);
            }
        }
    }

    @Test
    void aProblemNoBackendRunsIsRefusedBeforeAnythingRunsWithEachReason() {
        String[] r = run("decode", "--backend", "cpu", "-H", "2", "--kv-heads", "1", "-n", "64", "-d", "12",
                "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "1", "--dtypes", "f32,bf16");
        assertEquals("2", r[0], r[2]);
        assertEquals("sparsa: no backend runs this problem (cpu: headDim: the cpu backend runs multiples of 8 from 8 to"
                + " 256, got 12)", r[2].strip().lines().reduce((a, b) -> b).orElse(""), r[2]);
        assertEquals("", r[1], "nothing on stdout");
        assertTrue(!r[2].contains("copy bandwidth"), "refused before the copy ran: " + r[2]);
    }

    @Test
    void badFlagsGiveOneLineAndExitTwo() {
        for (String[] args : List.of(new String[] {"decode", "--rows", "65"}, new String[] {"decode", "--page-size", "12"},
                new String[] {"decode", "--budgets", "0"}, new String[] {"decode", "-H", "6", "--kv-heads", "4"},
                new String[] {"decode", "--no-such-flag"}, new String[] {"decode", "--rows", "many"},
                new String[] {"decode", "-n", "1000000000"}, new String[] {"decode", "--dtypes", "f8"},
                new String[] {"decode", "--cold", "--cold-mib", "0"}, new String[] {"decode", "--page-layout", "bhsd"})) {
            String[] r = run(args);
            assertEquals("2", r[0], String.join(" ", args) + ": " + r[2]);
            assertEquals(1, r[2].strip().lines().count(), String.join(" ", args) + ": " + r[2]);
            assertEquals("", r[1]);
        }
    }

    @Test
    void e4m3CachesDecodeOnTheCpuWithinTheF32Bound() throws Exception {
        // the rows' outputs are f32 and the CPU decodes the caches' values exactly: the f32 bound holds
        String[] r = run("decode", "--json", "-H", "4", "--kv-heads", "2", "-n", "300", "-d", "32", "--repeat", "1",
                "--warmup-ms", "0", "--copy-mib", "4", "--budgets", "0.25", "--dtypes", "e4m3", "--backend", "cpu");
        assertEquals("0", r[0], r[2]);
        List<Map<String, Object>> rows = DemoCommandTest.rows(r[1]);
        assertEquals(5, rows.size(), r[1]);
        for (Map<String, Object> row : rows) {
            assertEquals("e4m3", row.get("dtype"));
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= 1e-5, row.toString());
        }
        long bytes = ((Number) rows.get(0).get("bytesTouched")).longValue();
        // one byte per cached key and value element and per Q element, four per f32 output element
        assertEquals(2L * 300 * 2 * 32 + 4 * 32 + 4 * 32 * 4, bytes);
    }

    @Test
    void scatteredPagesHoldTheSameSequencesAndEveryRowStaysWithinTheOracle() throws Exception {
        for (DType dtype : List.of(DType.F32, DType.BF16, DType.E4M3)) {
            for (Layout order : Layout.values()) {
                int[] lengths = {300, 41};
                float[] ks = {DecodeProblem.E4M3_KEY_SCALE};
                float[] vs = {DecodeProblem.E4M3_VALUE_SCALE};
                PagedKvCache paged = dtype.isScaled() ? PagedKvCache.allocateE4m3(order, 2, 2, 16, 16, 16, 40, true,
                        new float[] {ks[0], ks[0]}, new float[] {vs[0], vs[0]})
                        : PagedKvCache.allocate(dtype, order, 2, 2, 16, 16, 16, 40, true);
                new DecodeProblem(2, 4, 2, 300, 16, 1, 5).fill(paged);
                paged.truncate(1, lengths[1]);
                PagedKvCache scattered = DecodeCommand.scattered(paged, 5);
                assertEquals(Optional.of(order), scattered.pageLayout(), dtype + " " + order);
                int inOrder = 0;
                int pairs = 0;
                for (int b = 0; b < 2; b++) {
                    assertEquals(lengths[b], scattered.length(b));
                    assertArrayEquals(paged.keys(b).toFloatArray(), scattered.keys(b).toFloatArray(),
                            dtype + " keys of " + b);
                    assertArrayEquals(paged.values(b).toFloatArray(), scattered.values(b).toFloatArray(),
                            dtype + " values of " + b);
                    int[] table = scattered.blockTable(b);
                    for (int i = 1; i < table.length; i++) {
                        inOrder += table[i] == table[i - 1] + 1 ? 1 : 0;
                        pairs++;
                    }
                    for (int page : table) {
                        assertTrue(scattered.allocator().inUse(page), "page " + page + " taken from the allocator");
                    }
                }
                // 19 and 3 pages among 40: a random order keeps few neighbours
                assertTrue(inOrder < pairs / 2, inOrder + " of " + pairs + " neighbours in order");
                assertArrayEquals(boundsOf(paged), boundsOf(scattered),
                        dtype + " " + order + ": the bounds of each sequence's pages, in table order");
            }
        }
        String[] r = run("decode", "--json", "--backend", "cpu", "--scatter-pages", "-H", "4", "--kv-heads", "2", "-n",
                "300", "-d", "16", "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2", "--budgets", "0.25");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("\"pageOrder\" : \"scattered: the pool's pages handed out in a random order\""),
                r[1]);
        for (Map<String, Object> row : DemoCommandTest.rows(r[1])) {
            assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= 1e-5, row.toString());
        }
    }

    @Test
    void nhdPagesKeepEveryRowWithinTheOracle() throws Exception {
        String[] r = run("decode", "--json", "--backend", "cpu", "--page-layout", "nhd", "-b", "3", "-H", "4",
                "--kv-heads", "2", "-n", "300", "-d", "16", "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2",
                "--budgets", "0.25", "--dtypes", "f32,bf16");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("\"pageLayout\" : \"nhd: "), r[1]);
        String[] text = run("decode", "--backend", "cpu", "--page-layout", "nhd", "--scatter-pages", "-H", "4",
                "--kv-heads", "2", "-n", "100", "-d", "16", "--repeat", "1", "--warmup-ms", "0", "--copy-mib", "2",
                "--budgets", "0.25", "--dtypes", "f32");
        assertEquals("0", text[0], text[2]);
        assertTrue(text[1].startsWith("Sparsa decode: B=1 H=4 (kv 2) N=100 D=16 rows=1, page 16 (NHD, pages scattered);"),
                text[1]);
        List<Map<String, Object>> rows = DemoCommandTest.rows(r[1]);
        assertEquals(10, rows.size(), r[1]);
        for (Map<String, Object> row : rows) {
            assertEquals(Boolean.TRUE, row.get("withinTolerance"), row.toString());
            if (row.get("dtype").equals("f32")) {
                assertTrue(((Number) row.get("relErrVsOracle")).doubleValue() <= 1e-5, row.toString());
            }
        }
    }

    /** Every sequence's page bounds in block-table order. */
    private static float[] boundsOf(PagedKvCache c) {
        float[] all = c.pageBounds().toFloatArray();
        int per = (int) c.pageBounds().stride(0);
        int pages = 0;
        for (int b = 0; b < c.batch(); b++) {
            pages += c.blockTable(b).length;
        }
        float[] out = new float[pages * per];
        int at = 0;
        for (int b = 0; b < c.batch(); b++) {
            for (int page : c.blockTable(b)) {
                System.arraycopy(all, page * per, out, at, per);
                at += per;
            }
        }
        return out;
    }

    private static double copyGBps(String json) throws Exception {
        try (JsonParser p = new JsonFactory().createParser(json)) {
            for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
                if (t == JsonToken.FIELD_NAME && p.currentName().equals("copyGBps")) {
                    p.nextToken();
                    return p.getDoubleValue();
                }
            }
        }
        return Double.NaN;
    }
}
