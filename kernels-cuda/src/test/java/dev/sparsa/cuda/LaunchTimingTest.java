package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The statistics and flag parsing of the GPU benchmarks' timing loop; no GPU needed. */
class LaunchTimingTest {

    @Test
    void statsOfAnOddCount() {
        assertEquals(new LaunchTiming.Stats(1, 2, 3), LaunchTiming.Stats.of(new double[] {3, 1, 2}));
    }

    @Test
    void medianOfAnEvenCountIsTheMeanOfTheMiddleTwo() {
        assertEquals(new LaunchTiming.Stats(1, 2.5, 4), LaunchTiming.Stats.of(new double[] {4, 1, 3, 2}));
        assertEquals(new LaunchTiming.Stats(0.75, 0.75, 0.75), LaunchTiming.Stats.of(new double[] {0.75}));
    }

    @Test
    void anOutlierMovesTheMaxNotTheMedian() {
        assertEquals(new LaunchTiming.Stats(1, 1, 90), LaunchTiming.Stats.of(new double[] {1, 90, 1, 1, 1}));
    }

    @Test
    void statsAgreeWithASortedCopyAndLeaveTheSamplesAlone() {
        SplittableRandom r = new SplittableRandom(5);
        for (int n = 1; n < 40; n++) {
            double[] s = r.doubles(n, 0.1, 10).toArray();
            double[] before = s.clone();
            LaunchTiming.Stats st = LaunchTiming.Stats.of(s);
            assertArrayEquals(before, s);
            double[] sorted = s.clone();
            Arrays.sort(sorted);
            assertEquals(sorted[0], st.min());
            assertEquals(sorted[n - 1], st.max());
            // the median: as many samples strictly below as strictly above
            long below = Arrays.stream(s).filter(x -> x < st.median()).count();
            long above = Arrays.stream(s).filter(x -> x > st.median()).count();
            assertEquals(below, above, "n=" + n);
            assertTrue(st.min() <= st.median() && st.median() <= st.max());
        }
    }

    @Test
    void statsRejectNoSamplesAndNonFiniteOnes() {
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.Stats.of(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.Stats.of(new double[] {1, Double.NaN}));
        assertThrows(IllegalArgumentException.class,
                () -> LaunchTiming.Stats.of(new double[] {Double.POSITIVE_INFINITY}));
    }

    @Test
    void spreadIsTheMedianGapOverTheSmallerMedian() {
        assertEquals(3.0, LaunchTiming.spreadPercent(new double[] {1.0, 1.03}), 1e-12);
        assertEquals(3.0, LaunchTiming.spreadPercent(new double[] {1.03, 1.0}), 1e-12);
        assertEquals(25.0, LaunchTiming.spreadPercent(new double[] {2.0, 2.5, 2.1}), 1e-12);
        assertEquals(0.0, LaunchTiming.spreadPercent(new double[] {1.5, 1.5}));
        assertEquals(0.0, LaunchTiming.spreadPercent(new double[] {1.5}));
    }

    @Test
    void spreadRejectsNoMedianAndNonPositiveOnes() {
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.spreadPercent(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.spreadPercent(new double[] {0, 1}));
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.spreadPercent(new double[] {-1, 1}));
        assertThrows(IllegalArgumentException.class, () -> LaunchTiming.spreadPercent(new double[] {Double.NaN}));
    }

    @Test
    void spreadLineHasTheKeyTheMediansAndThePercent() {
        assertEquals("spread 8192 sparsa:dense 1.000/1.020 2.00%",
                LaunchTiming.spreadLine("8192 sparsa:dense", new double[] {1.0, 1.02}, "%.3f"));
    }

    @Test
    void flagValues() {
        assertEquals(7, LaunchTiming.intFlag("--iters", "7", 1));
        assertArrayEquals(new int[] {1, 16}, LaunchTiming.intsFlag("--batch", "1,16", 1));
        assertEquals(0.25, LaunchTiming.secondsFlag("--warmup-s", "0.25"));
        assertTrue(LaunchTiming.switchFlag("--l2-flush", "on"));
        assertFalse(LaunchTiming.switchFlag("--l2-flush", "off"));
        assertEquals("5", LaunchTiming.value(new String[] {"--iters", "5"}, 0));
    }

    @Test
    void badFlagValuesNameTheFlagInOneLine() {
        assertOneLine("--iters", () -> LaunchTiming.intFlag("--iters", "0", 1));
        assertOneLine("--iters", () -> LaunchTiming.intFlag("--iters", "ten", 1));
        assertOneLine("--batch", () -> LaunchTiming.intsFlag("--batch", "1,,2", 1));
        assertOneLine("--warmup-s", () -> LaunchTiming.secondsFlag("--warmup-s", "-0.5"));
        assertOneLine("--warmup-s", () -> LaunchTiming.secondsFlag("--warmup-s", "NaN"));
        assertOneLine("--l2-flush", () -> LaunchTiming.switchFlag("--l2-flush", "yes"));
        assertOneLine("--iters", () -> LaunchTiming.value(new String[] {"--iters"}, 0));
        assertOneLine("--iters", () -> new LaunchTiming.Settings(0, 5, 0.5, true));
        assertOneLine("--warmup-s", () -> new LaunchTiming.Settings(1, 5, Double.POSITIVE_INFINITY, true));
    }

    /** The error message of each kind of bad value, word for word, and numbers read with the spaces around them. */
    @Test
    void badFlagValuesSayWhatIsWrongWordForWord() {
        assertMessage("--iters: needs a value", () -> LaunchTiming.value(new String[] {"--n", "1", "--iters"}, 2));
        assertMessage("--iters: must be at least 1, got 0", () -> LaunchTiming.intFlag("--iters", "0", 1));
        assertMessage("--iters: wants an integer, got 'ten'", () -> LaunchTiming.intFlag("--iters", "ten", 1));
        assertMessage("--batch: wants an integer, got ''", () -> LaunchTiming.intsFlag("--batch", "1,,2", 1));
        assertMessage("--batch: must be at least 1, got 0", () -> LaunchTiming.intsFlag("--batch", "4,0", 1));
        assertMessage("--warmup-s: must be a finite number >= 0, got '-0.5'",
                () -> LaunchTiming.secondsFlag("--warmup-s", "-0.5"));
        assertMessage("--warmup-s: must be a finite number >= 0, got 'Infinity'",
                () -> LaunchTiming.secondsFlag("--warmup-s", "Infinity"));
        assertMessage("--warmup-s: wants a number of seconds, got 'soon'",
                () -> LaunchTiming.secondsFlag("--warmup-s", "soon"));
        assertMessage("--l2-flush: wants on or off, got 'yes'", () -> LaunchTiming.switchFlag("--l2-flush", "yes"));
        assertEquals(12, LaunchTiming.intFlag("--iters", " 12 ", 1));
        assertArrayEquals(new int[] {3, 5}, LaunchTiming.intsFlag("--batch", "3, 5", 1));
        assertEquals(1.5, LaunchTiming.secondsFlag("--warmup-s", " 1.5"));
    }

    static void assertMessage(String message, org.junit.jupiter.api.function.Executable e) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, e).getMessage());
    }

    static void assertOneLine(String flag, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(flag), x.getMessage());
        assertFalse(x.getMessage().contains("\n"), x.getMessage());
    }
}
