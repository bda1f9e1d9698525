package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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
        Process p;
        try {
            p = new ProcessBuilder("python3", "-B", "-m", "unittest", "discover", "-s", ".", "-p", "test_*.py")
                    .directory(cpu.toFile()).redirectErrorStream(true).start();
        } catch (java.io.IOException e) {
            assumeTrue(false, "no python3: " + e.getMessage());
            return;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(p.waitFor(120, TimeUnit.SECONDS), "python3 did not finish");
        assertEquals(0, p.exitValue(), out);
    }
}
