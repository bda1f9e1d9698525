package dev.sparsa.cli;

import java.io.PrintStream;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/**
 * The {@code sparsa} command line: the project's main job. Results go to stdout, progress and logs
 * to stderr, so {@code --json} output can be piped. Started by the {@code ./sparsa} launcher.
 */
@Command(name = "sparsa", mixinStandardHelpOptions = true, version = "sparsa 0.1.0",
        description = "Sparse attention for the JVM: demos and tools.")
public final class SparsaCli {

    private SparsaCli() {
    }

    /** Builds the command tree writing to the given streams. */
    static CommandLine commandLine(PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new SparsaCli());
        cl.addSubcommand("demo", new DemoCommand(out, err));
        cl.addSubcommand("masks", new MasksCommand(out, err));
        cl.addSubcommand("dispatch-sweep", new DispatchSweepCommand(out, err));
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(err, true));
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            if (ex instanceof IllegalArgumentException) {
                err.println("sparsa: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl;
    }

    public static void main(String[] args) {
        System.exit(commandLine(System.out, System.err).execute(args));
    }
}
