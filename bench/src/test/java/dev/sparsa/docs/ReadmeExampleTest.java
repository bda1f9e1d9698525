package dev.sparsa.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's example, exactly as it appears there: the README opens with the dependency block,
 * and its first Java block is a complete class that compiles against dev.sparsa:sparsa alone (core,
 * patterns, the CPU backend) and runs, in a fresh JVM, without {@code --add-modules
 * jdk.incubator.vector} (one warning naming the flag), with it (no warning, the same plans), and on
 * the module path.
 */
class ReadmeExampleTest {
    static final Path ROOT = Path.of("").toAbsolutePath().getParent();
    static final Path README = ROOT.resolve("README.md");
    private static final Pattern FENCE = Pattern.compile("```(\\w+)\\n(.*?)\\n```", Pattern.DOTALL);
    private static final String MAIN = "SparseAttentionExample";

    @TempDir
    static Path work;
    static Path classes;
    static List<String> library;

    /** The fenced blocks of the README, in order: {language, text}. */
    static List<String[]> blocks() throws IOException {
        Matcher m = FENCE.matcher(Files.readString(README));
        List<String[]> out = new ArrayList<>();
        while (m.find()) {
            out.add(new String[] {m.group(1), m.group(2)});
        }
        return out;
    }

    /**
     * The library's class path entries of this JVM: sparsa-core, sparsa-patterns, sparsa-kernels-cpu and
     * dev.sparsa:sparsa, as folders of the reactor or as jars; nothing else (no CUDA backend, no tools).
     */
    static List<String> libraryEntries() {
        Pattern lib = Pattern.compile(".*/(core|patterns|kernels-cpu|src/sparsa)/target/classes/?"
                + "|.*/(sparsa-core|sparsa-patterns|sparsa-kernels-cpu|sparsa)-\\d[^/]*(?<!-tests)\\.jar");
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(e -> lib.matcher(e.replace(File.separatorChar, '/')).matches()).toList();
    }

    @BeforeAll
    static void compileTheExample() throws IOException {
        List<String[]> blocks = blocks();
        assertEquals("xml", blocks.get(0)[0], "the README opens with the dependency block");
        assertTrue(blocks.get(0)[1].contains("<artifactId>sparsa-bom</artifactId>")
                && blocks.get(0)[1].contains("<artifactId>sparsa</artifactId>"), blocks.get(0)[1]);
        String java = blocks.stream().filter(b -> b[0].equals("java")).findFirst().orElseThrow()[1];
        assertTrue(java.contains("public class " + MAIN + " {"), "a complete class named " + MAIN);
        library = libraryEntries();
        assertEquals(4, library.size(), "core, patterns, kernels-cpu and sparsa on the class path: " + library);
        classes = JavaExamples.compile(work, MAIN, java, library, "the README's example");
    }

    /** Runs the example in a fresh JVM; returns {exit code, stdout, stderr}. */
    static String[] run(String... jvmArgs) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(Arrays.asList(jvmArgs));
        args.add(MAIN);
        return JavaExamples.run(work, args);
    }

    private static String classPath() {
        return classes + File.pathSeparator + String.join(File.pathSeparator, library);
    }

    /** The pattern rows the example prints, up to the recall (the density fixes the plan). */
    static List<String> plans(String stdout) {
        List<String> rows = stdout.lines().filter(l -> l.contains(" density ")).map(l -> l.substring(0, l.indexOf("recall")))
                .toList();
        assertEquals(2, rows.size(), stdout);
        for (String l : stdout.lines().filter(l -> l.contains(" density ")).toList()) {
            double recall = Double.parseDouble(l.substring(l.indexOf("recall") + 6).trim());
            assertTrue(recall > 0 && recall <= 1.0005, l);
        }
        assertEquals(4, stdout.lines().filter(l -> l.startsWith("layer ")).count(), stdout);
        return rows;
    }

    private static long sparsaWarnings(String stderr) {
        return stderr.lines().filter(l -> l.startsWith("WARNING: Sparsa runs without the Vector API")).count();
    }

    @Test
    void runsWithAndWithoutTheVectorModuleAndOnTheModulePath() throws Exception {
        String[] plain = run("-cp", classPath());
        assertEquals("0", plain[0], plain[2]);
        assertEquals(1, sparsaWarnings(plain[2]), "one warning: " + plain[2]);
        String warning = plain[2].lines().filter(l -> l.startsWith("WARNING: Sparsa")).findFirst().orElseThrow();
        assertTrue(warning.contains("--add-modules jdk.incubator.vector") && warning.contains("slower"), warning);
        assertTrue(plain[1].contains("topKPerBlock"), "a data-dependent pattern ran: " + plain[1]);

        String[] vector = run("--add-modules", "jdk.incubator.vector", "-cp", classPath());
        assertEquals("0", vector[0], vector[2]);
        assertEquals(0, sparsaWarnings(vector[2]), vector[2]);
        assertEquals(plans(plain[1]), plans(vector[1]), "the estimators select the same keys either way");

        String[] modules = run("--add-modules", "jdk.incubator.vector", "--module-path", String.join(File.pathSeparator, library),
                "--add-modules", "dev.sparsa", "-cp", classes.toString());
        assertEquals("0", modules[0], modules[2]);
        assertEquals(0, sparsaWarnings(modules[2]), modules[2]);
        assertFalse(modules[2].contains("scalar fallback"), modules[2]);
        assertEquals(plans(vector[1]), plans(modules[1]));
    }
}
