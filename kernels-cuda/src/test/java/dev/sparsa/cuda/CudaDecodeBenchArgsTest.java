package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** CudaDecodeBench's command line: defaults, and a bad flag answered by one line and exit status 2 (no GPU). */
class CudaDecodeBenchArgsTest {

    @Test
    void defaultsRepeatTwiceWithAFlushAndAHalfSecondWarmUp() {
        CudaDecodeBench.Args a = CudaDecodeBench.Args.parse(new String[0]);
        assertEquals(2, a.repeats());
        assertEquals(new LaunchTiming.Settings(50, 5, 0.5, true), a.timing());
        assertArrayEquals(new int[] {1, 16}, a.batches());
        assertArrayEquals(new int[] {8192, 32768, 131072}, a.lengths());
        assertEquals(List.of("rule"), a.splitNames());
        assertEquals(CudaDecodeBench.ROWS, a.rows());
        assertEquals(dev.sparsa.tensor.DType.BF16, a.cache());
    }

    @Test
    void flagsAreRead() {
        CudaDecodeBench.Args a = CudaDecodeBench.Args.parse(new String[] {"--batch", "4", "--n", "4096", "--iters", "9",
            "--warmup", "0", "--warmup-s", "1.5", "--repeats", "3", "--l2-flush", "off", "--split", "rule,none,512",
            "--quest", "8,32", "--page", "32", "--rows", "step,quest", "--cache", "e4m3"});
        assertArrayEquals(new int[] {4}, a.batches());
        assertArrayEquals(new int[] {4096}, a.lengths());
        assertEquals(new LaunchTiming.Settings(9, 0, 1.5, false), a.timing());
        assertEquals(3, a.repeats());
        assertEquals(3, a.splits().size());
        assertArrayEquals(new int[] {8, 32}, a.questDivisors());
        assertEquals(32, a.page());
        assertEquals(List.of("step", "quest"), a.rows());
        assertEquals(dev.sparsa.tensor.DType.E4M3, a.cache());
    }

    @Test
    void badFlagsExitTwoWithOneLine() {
        for (String[] bad : List.of(new String[] {"--bogus"}, new String[] {"--iters"}, new String[] {"--iters", "0"},
                new String[] {"--repeats", "x"}, new String[] {"--l2-flush", "sometimes"},
                new String[] {"--n", "100", "--page", "16"}, new String[] {"--split", "rule:1"},
                new String[] {"--batch", "0"}, new String[] {"--rows", "step,steps"}, new String[] {"--cache", "f8"})) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream saved = System.err;
            int status;
            try {
                System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
                status = CudaDecodeBench.run(bad);
            } finally {
                System.setErr(saved);
            }
            String text = err.toString(StandardCharsets.UTF_8);
            assertEquals(2, status, String.join(" ", bad));
            assertEquals(1, text.strip().lines().count(), text);
            assertTrue(text.startsWith("CudaDecodeBench: "), text);
            assertTrue(text.contains(bad[0]), text);
            assertFalse(text.contains("Exception"), text);
        }
    }
}
