package dev.sparsa.cli;

import static dev.sparsa.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code sparsa fuzz}: its three kinds of case end to end, and bad flags. */
class FuzzCommandTest {

    @Test
    void eachKindRunsItsCasesAndSummarisesThemOnStdout() {
        for (String kind : List.of("", "--decode", "--ragged")) {
            List<String> args = new java.util.ArrayList<>(List.of("fuzz", "--cases", "25", "--seed", "9"));
            if (!kind.isEmpty()) {
                args.add(1, kind);
            }
            String[] r = run(args.toArray(String[]::new));
            String name = kind.isEmpty() ? "" : " " + kind.substring(2);
            assertEquals("0", r[0], r[1] + r[2]);
            assertTrue(r[1].startsWith("fuzz" + name + ": 25 cases (seed 9, backend cpu"), r[1]);
            assertTrue(r[1].contains(" 0 failed"), r[1]);
            assertTrue(r[2].contains("25/25 cases"), "progress on stderr: " + r[2]);
        }
    }

    @Test
    void badFlagsGiveOneLineAndExitTwo() {
        for (String[] args : List.of(new String[] {"fuzz", "--decode", "--ragged"}, new String[] {"fuzz", "--cases", "0"},
                new String[] {"fuzz", "--backend", "tpu"}, new String[] {"fuzz", "--max-dim", "12"})) {
            String[] r = run(args);
            assertEquals("2", r[0], String.join(" ", args) + ": " + r[2]);
            assertEquals(1, r[2].strip().lines().count(), String.join(" ", args) + ": " + r[2]);
            assertEquals("", r[1]);
        }
    }
}
