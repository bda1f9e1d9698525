package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** CpuDenseVsPeak's command line and FLOP count; nothing is benchmarked. */
class CpuDenseVsPeakTest {

    @Test
    void defaultsAreTwoAndSixteenThreadsOnTheDocumentedShape() {
        CpuDenseVsPeak.Args a = CpuDenseVsPeak.Args.parse(new String[0]);
        assertEquals(List.of(2, 16), a.threads());
        assertEquals(4096, a.n());
        assertEquals(2, a.warmupIterations());
        assertEquals(2.0, a.warmupSeconds());
        assertEquals(3, a.iterations());
        assertEquals(2.0, a.iterationSeconds());
        assertEquals(1, a.forks());
        assertNull(a.json());
    }

    @Test
    void flagsAreRead() {
        CpuDenseVsPeak.Args a = CpuDenseVsPeak.Args.parse(new String[] {"--threads", "16,1,4", "--n", "1000",
            "--warmup-iterations", "0", "--warmup-s", "0.25", "--iterations", "5", "--iteration-s", "1.5", "--forks", "0",
            "--json", "/tmp/rows.json"});
        assertEquals(List.of(16, 1, 4), a.threads());
        assertEquals(1000, a.n());
        assertEquals(0, a.warmupIterations());
        assertEquals(0.25, a.warmupSeconds());
        assertEquals(5, a.iterations());
        assertEquals(1.5, a.iterationSeconds());
        assertEquals(0, a.forks());
        assertEquals(Path.of("/tmp/rows.json"), a.json());
    }

    @Test
    void peakFmaIsWarmedUpForAtLeastOneSecond() {
        CpuDenseVsPeak.Args quick = CpuDenseVsPeak.Args.parse(new String[] {"--warmup-iterations", "0", "--warmup-s", "0.2",
            "--iterations", "2", "--iteration-s", "0.3"});
        CpuDenseVsPeak.Args peak = CpuDenseVsPeak.peakWarmup(quick);
        assertEquals(1, peak.warmupIterations());
        assertEquals(1.0, peak.warmupSeconds());
        assertEquals(2, peak.iterations());
        assertEquals(0.3, peak.iterationSeconds());
        CpuDenseVsPeak.Args longer = CpuDenseVsPeak.Args.parse(new String[] {"--warmup-iterations", "3", "--warmup-s", "2.5"});
        assertEquals(longer, CpuDenseVsPeak.peakWarmup(longer));
    }

    @Test
    void badArgumentsExitTwoWithOneLineNamingTheFlag(@TempDir Path dir) {
        String unwritable = dir.resolve("missing").resolve("rows.json").toString();
        for (String[] bad : List.of(new String[] {"--json", unwritable}, new String[] {"--bogus"}, new String[] {"--threads"}, new String[] {"--threads", "0"},
                new String[] {"--threads", "2,,16"}, new String[] {"--threads", "2,2"}, new String[] {"--threads", "two"},
                new String[] {"--threads", ""}, new String[] {"--n", "0"}, new String[] {"--n", "4k"},
                new String[] {"--warmup-iterations", "-1"}, new String[] {"--warmup-s", "0"},
                new String[] {"--warmup-s", "soon"}, new String[] {"--iterations", "0"}, new String[] {"--iteration-s", "NaN"},
                new String[] {"--forks", "2"}, new String[] {"--json", ""}, new String[] {"--json"})) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            PrintStream savedErr = System.err;
            PrintStream savedOut = System.out;
            int status;
            try {
                System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
                System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
                status = CpuDenseVsPeak.run(bad);
            } finally {
                System.setErr(savedErr);
                System.setOut(savedOut);
            }
            String text = err.toString(StandardCharsets.UTF_8);
            String what = String.join(" ", bad);
            assertEquals(2, status, what);
            assertEquals(1, text.strip().lines().count(), text);
            assertTrue(text.startsWith("CpuDenseVsPeak: "), text);
            assertTrue(text.contains(bad[0]), text);
            assertFalse(text.contains("Exception"), text);
            assertEquals("", out.toString(StandardCharsets.UTF_8), what);
        }
    }

    /** The error line of each kind of bad value, word for word, and numbers read with the spaces around them. */
    @Test
    void badValuesSayWhatIsWrongWordForWord() {
        String[][] cases = {
            {"--threads", null, "--threads: needs a value"},
            {"--n", "0", "--n: must be in [1, 2147483647], got 0"},
            {"--n", "4k", "--n: wants an integer, got '4k'"},
            {"--threads", "2,2", "--threads: 2 is given twice"},
            {"--threads", "1,4097", "--threads: must be in [1, 4096], got 4097"},
            {"--forks", "2", "--forks: must be in [0, 1], got 2"},
            {"--warmup-s", "0", "--warmup-s: must be in [0.001, 3600] seconds, got '0'"},
            {"--iteration-s", "soon", "--iteration-s: wants a number of seconds, got 'soon'"},
            {"--json", "", "--json: wants a file path, got an empty one"},
            {"--bogus", null, "unknown argument --bogus"},
        };
        for (String[] c : cases) {
            String[] argv = c[1] == null ? new String[] {c[0]} : new String[] {c[0], c[1]};
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CpuDenseVsPeak.Args.parse(argv));
            assertEquals(c[2], e.getMessage(), String.join(" ", argv));
        }
        CpuDenseVsPeak.Args a = CpuDenseVsPeak.Args.parse(new String[] {"--n", " 96 ", "--threads", " 3, 5", "--warmup-s",
            " 0.5 "});
        assertEquals(96, a.n());
        assertEquals(List.of(3, 5), a.threads());
        assertEquals(0.5, a.warmupSeconds());
    }

    @Test
    void helpPrintsTheUsageOnStandardOutputAndRunsNothing() {
        for (String flag : List.of("-h", "--help")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            PrintStream savedOut = System.out;
            int status;
            try {
                System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
                status = CpuDenseVsPeak.run(new String[] {flag});
            } finally {
                System.setOut(savedOut);
            }
            assertEquals(0, status, flag);
            assertEquals(CpuDenseVsPeak.USAGE, out.toString(StandardCharsets.UTF_8).strip(), flag);
        }
    }

    /** Counted independently: pair by pair, a key is visited when its 64-key block is not above the row's 64-row tile's last row. */
    @Test
    void gflopPerCallIsFourVisitedPairsTimesDimOnWholeDiagonalBlocks() {
        for (int n : new int[] {1, 63, 64, 65, 200, 512}) {
            long all = (long) n * n;
            long visitedCausal = 0;
            for (int row = 0; row < n; row++) {
                int tileLastRow = Math.min(n - 1, (row / 64) * 64 + 63);
                for (int key = 0; key < n; key++) {
                    if (key / 64 <= tileLastRow / 64) {
                        visitedCausal++;
                    }
                }
            }
            double perPair = 4.0 * CpuDenseVsPeak.DIM * CpuDenseVsPeak.HEADS * 1e-9;
            assertEquals(all * perPair, CpuDenseVsPeak.denseGflopPerCall(n, false), 1e-15, "n " + n);
            assertEquals(visitedCausal * perPair, CpuDenseVsPeak.denseGflopPerCall(n, true), 1e-15, "n " + n);
        }
    }

    /**
     * The PyTorch half's FLOP count ({@code bench/cpu/torch_cpu_sdpa.py --gflop-per-call}, no torch needed) is the
     * dense plan's, so that the two halves' GFLOP/s divide into a ratio of speeds. Skipped without python3.
     */
    @Test
    void pythonHalfCountsTheSameFlops() throws Exception {
        Path script = Path.of("cpu", "torch_cpu_sdpa.py");
        assertTrue(Files.isRegularFile(script), script.toAbsolutePath().toString());
        for (int n : new int[] {1, 65, 130, 1000, 4096}) {
            ProcessBuilder pb = new ProcessBuilder("python3", script.toString(), "--gflop-per-call", "--n",
                    Integer.toString(n));
            pb.redirectErrorStream(true);
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                Assumptions.abort("python3 cannot be started: " + e.getMessage());
                return;
            }
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "python3 did not finish");
            assertEquals(0, p.exitValue(), text);
            List<String> lines = text.strip().lines().toList();
            assertEquals(2, lines.size(), text);
            for (String line : lines) {
                String[] f = line.split("\\s+");
                assertEquals("causal", f[0], line);
                assertEquals("gflop_per_call", f[2], line);
                double java = CpuDenseVsPeak.denseGflopPerCall(n, Boolean.parseBoolean(f[1]));
                assertEquals(java, Double.parseDouble(f[3]), java * 1e-12, "n " + n + ": " + line);
            }
        }
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, CpuDenseVsPeak.median(new double[] {3, 1, 2}));
        assertEquals(2.5, CpuDenseVsPeak.median(new double[] {4, 1, 3, 2}));
        assertTrue(Double.isNaN(CpuDenseVsPeak.median(new double[0])));
    }
}
