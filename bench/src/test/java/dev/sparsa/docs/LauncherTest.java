package dev.sparsa.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The launcher's Java flags ({@code ./sparsa flags}): the Vector API module and native access always,
 * transparent huge pages exactly where Linux hands them out on request and {@code SPARSA_HUGE_PAGES}
 * is not {@code off}, and a one-line refusal of any other value of that variable. Neither command
 * builds anything.
 */
class LauncherTest {
    private static final Path LAUNCHER = ReadmeExampleTest.ROOT.resolve("sparsa");
    private static final Path THP = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
    private static final String HUGE = "-XX:+UseTransparentHugePages";

    private record Result(int status, List<String> out, List<String> err) {
    }

    private static Result launch(String hugePages, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("bash", LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(ReadmeExampleTest.ROOT.toFile());
        Map<String, String> env = pb.environment();
        env.put("JAVA_HOME", System.getProperty("java.home"));
        if (hugePages == null) {
            env.remove("SPARSA_HUGE_PAGES");
        } else {
            env.put("SPARSA_HUGE_PAGES", hugePages);
        }
        Path out = Files.createTempFile("launcher", ".out");
        Path err = Files.createTempFile("launcher", ".err");
        try {
            Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the launcher did not finish within 60 s");
            return new Result(p.exitValue(), Files.readAllLines(out, StandardCharsets.UTF_8),
                    Files.readAllLines(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** Whether this machine's kernel hands out transparent huge pages on request (or always). */
    private static boolean kernelOffersHugePages() throws IOException {
        return Files.isReadable(THP) && Pattern.compile("\\[(always|madvise)\\]").matcher(Files.readString(THP)).find();
    }

    @Test
    void flagsNameTheVectorModuleAndNativeAccessAndHugePagesWhereTheKernelOffersThem() throws Exception {
        boolean offered = kernelOffersHugePages();
        for (String setting : new String[] {null, "on"}) {
            Result r = launch(setting, "flags");
            assertEquals(0, r.status(), () -> "stderr: " + r.err());
            assertEquals(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"),
                    r.out().subList(0, 3));
            assertEquals(offered, r.out().contains(HUGE), "huge pages offered by the kernel: " + offered);
            assertEquals(offered ? 4 : 3, r.out().size(), r.out()::toString);
        }
    }

    @Test
    void hugePagesOffLeavesTheFlagOut() throws Exception {
        Result r = launch("off", "flags");
        assertEquals(0, r.status(), () -> "stderr: " + r.err());
        assertEquals(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"), r.out());
    }

    @Test
    void anyOtherHugePagesValueIsRefusedInOneLine() throws Exception {
        Result r = launch("yes", "flags");
        assertEquals(2, r.status());
        assertEquals(List.of(), r.out());
        assertEquals(List.of("sparsa: SPARSA_HUGE_PAGES must be on or off, not 'yes'"), r.err());
    }
}
