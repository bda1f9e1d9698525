package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Flags' two styles: the value after a flag, integers and seconds read from it, and the messages of bad ones. */
class FlagsTest {

    @Test
    void theValueAfterTheFlag() {
        for (Flags f : Flags.values()) {
            assertEquals("5", f.value(new String[] {"--iters", "5", "--n", "7"}, 0));
            assertEquals("7", f.value(new String[] {"--iters", "5", "--n", "7"}, 2));
        }
        assertMessage("--n needs a value", () -> Flags.PLAIN.value(new String[] {"--iters", "5", "--n"}, 2));
        assertMessage("--n: needs a value", () -> Flags.COLON.value(new String[] {"--iters", "5", "--n"}, 2));
    }

    @Test
    void integersInIntsRangeWithTheSpacesAroundThem() {
        for (Flags f : Flags.values()) {
            for (int v : new int[] {Integer.MIN_VALUE, -3, 0, 1, 4096, Integer.MAX_VALUE}) {
                assertEquals(v, f.integer("--n", Integer.toString(v)));
                assertEquals(v, f.integer("--n", " " + v + "\t"));
            }
        }
        assertMessage("--n wants an integer, got '4k'", () -> Flags.PLAIN.integer("--n", "4k"));
        assertMessage("--n: wants an integer, got '4k'", () -> Flags.COLON.integer("--n", "4k"));
        assertMessage("--n: wants an integer, got '2147483648'", () -> Flags.COLON.integer("--n", "2147483648"));
        assertMessage("--n wants an integer, got ''", () -> Flags.PLAIN.integer("--n", ""));
    }

    @Test
    void seconds() {
        for (Flags f : Flags.values()) {
            assertEquals(0.25, f.seconds("--warmup-s", "0.25"));
            assertEquals(2.0, f.seconds("--warmup-s", " 2 "));
            assertEquals(Double.NaN, f.seconds("--warmup-s", "NaN"));
        }
        assertMessage("--warmup-s wants a number of seconds, got 'soon'",
                () -> Flags.PLAIN.seconds("--warmup-s", "soon"));
        assertMessage("--warmup-s: wants a number of seconds, got 'soon'",
                () -> Flags.COLON.seconds("--warmup-s", "soon"));
    }

    /** PLAIN drops what String.trim drops (characters up to U+0020), COLON what String.strip drops (white space). */
    @Test
    void theSpacesEachStyleDrops() {
        String emSpace = "\u20035";
        String unitSeparatorBefore = "\u001F5";
        String nul = "\u00005";
        assertEquals(5, Flags.COLON.integer("--n", emSpace));
        assertMessage("--n wants an integer, got '" + emSpace + "'", () -> Flags.PLAIN.integer("--n", emSpace));
        assertEquals(5, Flags.PLAIN.integer("--n", unitSeparatorBefore));
        assertEquals(5, Flags.COLON.integer("--n", unitSeparatorBefore));
        assertEquals(5, Flags.PLAIN.integer("--n", nul));
        assertMessage("--n: wants an integer, got '" + nul + "'", () -> Flags.COLON.integer("--n", nul));
    }

    @Test
    void badJoinsTheFlagAndWhatIsWrong() {
        assertEquals("--forks must be at least 0, got -1",
                Flags.PLAIN.bad("--forks", "must be at least 0, got -1").getMessage());
        assertEquals("--forks: is given twice", Flags.COLON.bad("--forks", "is given twice").getMessage());
        assertEquals(" ", Flags.PLAIN.separator());
        assertEquals(": ", Flags.COLON.separator());
    }

    static void assertMessage(String message, org.junit.jupiter.api.function.Executable e) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, e).getMessage());
    }
}
