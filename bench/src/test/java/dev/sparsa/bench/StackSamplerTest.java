package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class StackSamplerTest {
    private static volatile double sink;

    /** Busy for {@code millis} in a method of its own, so that samples land in it. */
    private static void spinInAKnownMethod(long millis) {
        long end = System.nanoTime() + millis * 1_000_000L;
        double x = 1;
        while (System.nanoTime() < end) {
            x = x * 1.0000001 + 1e-9;
        }
        sink = x;
    }

    @Test
    void samplesLandInTheMethodTheThreadIsBusyIn() {
        StackSampler s = new StackSampler(Thread.currentThread(), 200, "");
        try (s) {
            spinInAKnownMethod(300);
        }
        assertTrue(s.samples() > 20, "samples: " + s.samples());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        s.write(new PrintStream(bytes, true, StandardCharsets.UTF_8), List.of("dev.sparsa"));
        String report = bytes.toString(StandardCharsets.UTF_8);
        // the inclusive table counts the busy method in (nearly) every sample
        String line = report.lines().filter(l -> l.endsWith("StackSamplerTest.spinInAKnownMethod")).findFirst()
                .orElseThrow(() -> new AssertionError("no line for the busy method in\n" + report));
        int count = Integer.parseInt(line.trim().split("\\s+")[0]);
        assertTrue(count >= 0.8 * s.samples(), line + " of " + s.samples());
        assertTrue(report.contains("== self") && report.contains("== stacks"), report);
    }

    @Test
    void aFilterNoFrameMatchesCountsNothing() {
        StackSampler s = new StackSampler(Thread.currentThread(), 200, "no.such.Frame");
        try (s) {
            spinInAKnownMethod(100);
        }
        assertEquals(0, s.samples());
    }

    @Test
    void badArgumentsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StackSampler(Thread.currentThread(), 10, ""));
        assertThrows(IllegalArgumentException.class, () -> new StackSampler(null, 500, ""));
        assertThrows(IllegalArgumentException.class, () -> StackSampler.main(new String[0]));
    }
}
