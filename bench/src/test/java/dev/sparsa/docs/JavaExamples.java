package dev.sparsa.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/** A Java example taken out of a document: compiled as it stands, then run in a fresh JVM. */
final class JavaExamples {
    private JavaExamples() {
    }

    /**
     * Compiles {@code source} as class {@code main} against {@code classPath} into {@code work}/classes
     * (warnings are errors), failing with "{@code what} compiles as it stands" otherwise.
     *
     * @return the folder of the compiled classes
     */
    static Path compile(Path work, String main, String source, List<String> classPath, String what)
            throws IOException {
        Path src = Files.createDirectories(work.resolve("src")).resolve(main + ".java");
        Files.writeString(src, source + "\n");
        Path classes = Files.createDirectories(work.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        int rc = javac.run(null, null, null, "--release", "25", "-Xlint:all", "-Werror", "-cp",
                String.join(File.pathSeparator, classPath), "-d", classes.toString(), src.toString());
        assertEquals(0, rc, what + " compiles as it stands (warnings are errors)");
        return classes;
    }

    /**
     * Runs this JVM's {@code java} with {@code args} in a fresh process, its output in files under
     * {@code work}; fails if it runs past 300 s.
     *
     * @return {exit code, stdout, stderr}
     */
    static String[] run(Path work, List<String> args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(args);
        Path out = Files.createTempFile(work, "out", ".txt");
        Path err = Files.createTempFile(work, "err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "finished in time: " + cmd);
        return new String[] {String.valueOf(p.exitValue()), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8)};
    }
}
