package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The PyTorch harnesses' own tests ({@code bench/test_bench_stats.py}: statistics and flag checks, no GPU and
 * no torch needed) run with the build where {@code python3} is on the path; skipped where it is not.
 */
class BenchScriptsTest {

    @Test
    void pythonHarnessTestsPass() throws Exception {
        Path bench = Path.of("bench").toAbsolutePath();
        assumeTrue(Files.exists(bench.resolve("test_bench_stats.py")), "run from kernels-cuda");
        Process p;
        try {
            p = new ProcessBuilder("python3", "-m", "unittest", "test_bench_stats").directory(bench.toFile())
                    .redirectErrorStream(true).start();
        } catch (java.io.IOException e) {
            assumeTrue(false, "no python3: " + e.getMessage());
            return;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(p.waitFor(120, TimeUnit.SECONDS), "python3 did not finish");
        assertEquals(0, p.exitValue(), out);
    }
}
