package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Flags: the value after a flag, integers and seconds read from it, and the messages of bad ones. */
class FlagsTest {

    @Test
    void theValueAfterTheFlag() {
        assertEquals("5", Flags.value(new String[] {"--iters", "5", "--n", "7"}, 0));
        assertEquals("7", Flags.value(new String[] {"--iters", "5", "--n", "7"}, 2));
        assertMessage("--n: needs a value", () -> Flags.value(new String[] {"--iters", "5", "--n"}, 2));
    }

    @Test
    void integersInIntsRangeWithTheWhiteSpaceAroundThem() {
        for (int v : new int[] {Integer.MIN_VALUE, -3, 0, 1, 4096, Integer.MAX_VALUE}) {
            assertEquals(v, Flags.integer("--n", Integer.toString(v)));
            assertEquals(v, Flags.integer("--n", " " + v + "\t"));
        }
        assertEquals(5, Flags.integer("--n", "\u20035"));
        assertMessage("--n: wants an integer, got '4k'", () -> Flags.integer("--n", "4k"));
        assertMessage("--n: wants an integer, got '2147483648'", () -> Flags.integer("--n", "2147483648"));
        assertMessage("--n: wants an integer, got ''", () -> Flags.integer("--n", ""));
    }

    @Test
    void secondsAsParseDoubleReadsThem() {
        assertEquals(0.5, Flags.seconds("--warmup-s", " 0.5 "));
        assertEquals(2e-3, Flags.seconds("--warmup-s", "2e-3"));
        assertEquals(Double.POSITIVE_INFINITY, Flags.seconds("--warmup-s", "Infinity"));
        assertMessage("--warmup-s: wants a number of seconds, got 'soon'", () -> Flags.seconds("--warmup-s", "soon"));
    }

    @Test
    void badJoinsTheFlagAndWhatIsWrong() {
        assertEquals("--forks: must be at least 0, got -1", Flags.bad("--forks", "must be at least 0, got -1").getMessage());
    }

    static void assertMessage(String message, org.junit.jupiter.api.function.Executable e) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, e).getMessage());
    }
}
