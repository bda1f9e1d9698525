package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.testing.PythonUnittest;
import java.nio.file.Files;
import java.nio.file.Path;
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
        PythonUnittest.assertPasses(bench, "test_bench_stats");
    }
}
