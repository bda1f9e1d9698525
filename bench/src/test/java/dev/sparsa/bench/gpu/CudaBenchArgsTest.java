package dev.sparsa.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.cuda.LaunchTiming;
import dev.sparsa.tensor.DType;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** CudaBench's command line: defaults, and a bad flag answered by one line and exit status 2 (no GPU). */
class CudaBenchArgsTest {

    @Test
    void defaultsRepeatTwiceWithAFlushAndAHalfSecondWarmUp() {
        CudaBench.Args a = CudaBench.Args.parse(new String[0]);
        assertEquals(2, a.repeats());
        assertEquals(new LaunchTiming.Settings(30, 5, 0.5, true), a.timing());
        assertArrayEquals(new int[] {8192, 32768}, a.ns());
        assertEquals(CudaBench.Args.PATTERNS, a.patterns());
        assertNull(a.masks());
        assertEquals(128, a.headDim());
        assertEquals(DType.BF16, a.dtype());
    }

    @Test
    void flagsAreRead() {
        CudaBench.Args a = CudaBench.Args.parse(new String[] {"--n", "8192", "--iters", "20", "--warmup", "2",
            "--warmup-s", "1", "--repeats", "3", "--l2-flush", "off", "--masks", "/tmp/m", "--patterns", "causal,dense", "--d", "64"});
        assertArrayEquals(new int[] {8192}, a.ns());
        assertEquals(new LaunchTiming.Settings(20, 2, 1.0, false), a.timing());
        assertEquals(3, a.repeats());
        assertEquals(Path.of("/tmp/m"), a.masks());
        assertEquals(List.of("causal", "dense"), a.patterns());
        assertEquals(64, a.headDim());
        assertEquals(DType.E4M3, CudaBench.Args.parse(new String[] {"--dtype", "e4m3"}).dtype());
    }

    @Test
    void badFlagsExitTwoWithOneLine() throws Exception {
        for (String[] bad : List.of(new String[] {"--bogus"}, new String[] {"--n"}, new String[] {"--n", "1000"},
                new String[] {"--iters", "0"}, new String[] {"--warmup-s", "soon"}, new String[] {"--repeats", "0"},
                new String[] {"--l2-flush", "1"}, new String[] {"--patterns", "dense,nope"}, new String[] {"--d", "96"},
                new String[] {"--dtype", "f16"}, new String[] {"--dtype", "e4m3", "--d", "64"})) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream saved = System.err;
            int status;
            try {
                System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
                status = CudaBench.run(bad);
            } finally {
                System.setErr(saved);
            }
            String text = err.toString(StandardCharsets.UTF_8);
            assertEquals(2, status, String.join(" ", bad));
            assertEquals(1, text.strip().lines().count(), text);
            assertTrue(text.startsWith("CudaBench: "), text);
            assertTrue(text.contains(bad[0]), text);
            assertFalse(text.contains("Exception"), text);
        }
    }
}
