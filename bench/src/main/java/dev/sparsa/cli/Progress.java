package dev.sparsa.cli;

import java.io.PrintStream;

/**
 * Progress on stderr for steps that may take more than a second: a line when a step starts and its
 * duration when it ends, so stdout stays clean for {@code --json}.
 */
final class Progress {
    private final PrintStream err;
    private final int total;
    private int done;
    private final long started = System.nanoTime();

    Progress(PrintStream err, int total) {
        this.err = err;
        this.total = total;
    }

    /** Announces step {@code what}; returns its start time. */
    long begin(String what) {
        err.printf("[%3d/%d %6.1fs] %s ...%n", done + 1, total, (System.nanoTime() - started) / 1e9, what);
        err.flush();
        return System.nanoTime();
    }

    void end(long t0, String summary) {
        done++;
        err.printf("              %s (%.2fs)%n", summary, (System.nanoTime() - t0) / 1e9);
        err.flush();
    }

    /** Counts {@code steps} steps as done without running them (a backend that refuses a dtype). */
    void skip(int steps) {
        done += steps;
    }

    void note(String line) {
        err.println(line);
        err.flush();
    }
}
