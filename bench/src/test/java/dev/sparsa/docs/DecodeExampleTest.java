package dev.sparsa.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generation loop of {@code docs/decode.md}, exactly as it appears there: the Java block holding
 * {@code public class GenerationLoopExample} compiles against dev.sparsa:sparsa alone (warnings are
 * errors) and runs in a fresh JVM, and what it prints is what the document says it shows: chunked
 * prefill of both prompts, twelve decode steps with a fresh Quest selection every fourth step (the
 * reuse rule of {@code SelectionReuse.forSteps(3)}), Quest keeping nearly all of the attention mass and
 * more than sinks + window with as many keys, and a finished sequence's pages back in the allocator.
 */
class DecodeExampleTest {
    private static final Path DOC = ReadmeExampleTest.ROOT.resolve("docs/decode.md");
    private static final Pattern JAVA_BLOCK = Pattern.compile("```java\\n(.*?)\\n```", Pattern.DOTALL);
    private static final String MAIN = "GenerationLoopExample";
    private static final Pattern STEP = Pattern.compile("step +(\\d+) +lengths \\[(\\d+), (\\d+)]"
            + " +quest \\((fresh|reused), pages of (\\d+) of (\\d+) keys\\): recall ([0-9.]+),"
            + " max \\|quest - dense\\| ([0-9.e+-]+);"
            + " +sinks \\+ window: recall ([0-9.]+)");
    private static final Pattern FINISHED =
            Pattern.compile("sequence 1 finished: (\\d+) free pages before, (\\d+) after");

    @TempDir
    Path work;

    @Test
    void theGenerationLoopCompilesRunsAndShowsWhatTheDocumentSays() throws Exception {
        Matcher m = JAVA_BLOCK.matcher(Files.readString(DOC));
        String source = null;
        while (m.find()) {
            if (m.group(1).contains("public class " + MAIN + " {")) {
                source = m.group(1);
            }
        }
        assertTrue(source != null, "docs/decode.md holds a Java block with public class " + MAIN);
        List<String> library = ReadmeExampleTest.libraryEntries();
        assertEquals(4, library.size(), "core, patterns, kernels-cpu and sparsa on the class path: " + library);
        Path classes = JavaExamples.compile(work, MAIN, source, library, "the document's example");
        String[] run = JavaExamples.run(work, List.of("--add-modules", "jdk.incubator.vector", "-cp",
                classes + File.pathSeparator + String.join(File.pathSeparator, library), MAIN));
        String stdout = run[1];
        assertEquals("0", run[0], run[2]);

        List<String> prefills = stdout.lines().filter(l -> l.startsWith("prefill ")).toList();
        assertEquals(List.of("prefill sequence 0, tokens 0..255: output [1, 8, 256, 64]",
                "prefill sequence 0, tokens 256..511: output [1, 8, 256, 64]",
                "prefill sequence 0, tokens 512..699: output [1, 8, 188, 64]",
                "prefill sequence 1, tokens 0..255: output [1, 8, 256, 64]",
                "prefill sequence 1, tokens 256..259: output [1, 8, 4, 64]"), prefills, stdout);

        List<String> steps = stdout.lines().filter(l -> l.startsWith("step ")).toList();
        assertEquals(12, steps.size(), stdout);
        List<Integer> fresh = new ArrayList<>();
        int lastLength1 = 0;
        for (String line : steps) {
            Matcher s = STEP.matcher(line);
            assertTrue(s.matches(), "a step line as the document shows it: " + line);
            int step = Integer.parseInt(s.group(1));
            assertEquals(701 + step, Integer.parseInt(s.group(2)), line);
            lastLength1 = Integer.parseInt(s.group(3));
            assertEquals(261 + step, lastLength1, line);
            if (s.group(4).equals("fresh")) {
                fresh.add(step);
            }
            int pageKeys = Integer.parseInt(s.group(5));
            assertTrue(pageKeys > 7 * 16 && pageKeys <= 8 * 16, "8 pages, the last one partly filled: " + line);
            double quest = Double.parseDouble(s.group(7));
            double streaming = Double.parseDouble(s.group(9));
            assertTrue(quest >= 0.99 && quest <= 1.0005, "Quest keeps the mass of the tokens looked back at: " + line);
            assertTrue(Double.parseDouble(s.group(8)) < 1e-2, line);
            assertTrue(streaming < quest - 0.1, "sinks + window keeps less: " + line);
        }
        assertEquals(List.of(0, 4, 8), fresh, "a selection serves its step and the next 3: " + steps);

        Matcher f = FINISHED.matcher(stdout);
        assertTrue(f.find(), stdout);
        int freed = Integer.parseInt(f.group(2)) - Integer.parseInt(f.group(1));
        assertEquals((lastLength1 + 15) / 16, freed, "the finished sequence's pages are free again: " + f.group());
    }
}
