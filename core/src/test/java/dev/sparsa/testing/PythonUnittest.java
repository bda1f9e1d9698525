package dev.sparsa.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the Python unittests of a benchmark scripts folder with {@code python3 -B -m unittest ARGS} in that
 * folder, from a JUnit test: fails with the unittest output when they fail, or when they have not finished
 * within two minutes (the process is then killed); skipped (an assumption) where {@code python3} cannot be
 * started.
 */
public final class PythonUnittest {
    /** How long the unittests may run. */
    private static final long LIMIT_SECONDS = 120;

    private PythonUnittest() {
    }

    /**
     * @param folder the folder the tests run in (their imports are relative to it)
     * @param args what follows {@code -m unittest}, e.g. a module name or {@code discover -p test_*.py}
     */
    public static void assertPasses(Path folder, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("python3", "-B", "-m", "unittest"));
        command.addAll(List.of(args));
        // the output goes to a file, not a pipe: a process that hangs never closes a pipe, and reading one
        // would wait past any time limit
        Path log = Files.createTempFile("python-unittest", ".log");
        try {
            Process p;
            try {
                p = new ProcessBuilder(command).directory(folder.toFile()).redirectErrorStream(true)
                        .redirectOutput(log.toFile()).start();
            } catch (IOException e) {
                assumeTrue(false, "no python3: " + e.getMessage());
                return;
            }
            if (!p.waitFor(LIMIT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                fail(String.join(" ", command) + " in " + folder + " did not finish within " + LIMIT_SECONDS
                        + " s and was killed; its output:\n" + Files.readString(log, StandardCharsets.UTF_8));
            }
            assertEquals(0, p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }
}
