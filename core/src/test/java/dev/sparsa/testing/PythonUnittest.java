package dev.sparsa.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the Python unittests of a benchmark scripts folder with {@code python3 -B -m unittest ARGS} in that
 * folder, from a JUnit test: fails with the unittest output when they fail; skipped (an assumption)
 * where {@code python3} cannot be started or does not finish within two minutes.
 */
public final class PythonUnittest {
    private PythonUnittest() {
    }

    /**
     * @param folder the folder the tests run in (their imports are relative to it)
     * @param args what follows {@code -m unittest}, e.g. a module name or {@code discover -p test_*.py}
     */
    public static void assertPasses(Path folder, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("python3", "-B", "-m", "unittest"));
        command.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(command).directory(folder.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            assumeTrue(false, "no python3: " + e.getMessage());
            return;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(p.waitFor(120, TimeUnit.SECONDS), "python3 did not finish");
        assertEquals(0, p.exitValue(), out);
    }
}
