package dev.sparsa.bench;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.testing.PythonUnittest;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The CPU benchmark scripts' own tests ({@code bench/cpu/test_*.py}: the paired-process summary, the
 * PyTorch comparison's pure parts; no torch needed) run with the build where {@code python3} is on the
 * path; skipped where it is not.
 */
class CpuBenchScriptsTest {

    @Test
    void pythonScriptTestsPass() throws Exception {
        Path cpu = Path.of("cpu").toAbsolutePath();
        assumeTrue(Files.exists(cpu.resolve("test_process_pairs.py")), "run from the bench module");
        PythonUnittest.assertPasses(cpu, "discover", "-s", ".", "-p", "test_*.py");
    }
}
