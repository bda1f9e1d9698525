package dev.sparsa.cli;

import dev.sparsa.audit.AuditCommand;
import java.io.PrintStream;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code sparsa} command line: the project's main job. Results go to stdout, progress and logs
 * to stderr, so {@code --json} output can be piped. Started by the {@code ./sparsa} launcher.
 *
 * <p>Exit codes: 0 success; 1 a kernel missed the numerics contract's tolerance; 2 bad input (an
 * unknown option, a value out of range, an output that cannot be written, a problem larger than the
 * heap), reported as one line on stderr.
 */
@Command(name = "sparsa", mixinStandardHelpOptions = true, version = "sparsa 0.1.0",
        description = "Sparse attention for the JVM: demos and tools.",
        subcommands = CommandLine.HelpCommand.class,
        footer = {"", "The launcher also runs:",
                "  ./sparsa test [--gpu]   the build with every test (--gpu: GPU tests too)",
                "  ./sparsa bench [ARGS]   the JMH benchmarks",
                "  ./sparsa run CLASS      a main class of the benchmarks jar",
                "  ./sparsa build          compile and package, no tests",
                "Exit codes: 0 ok, 1 a kernel missed its tolerance, 2 bad input.",
                "Documentation: docs/cli.md"})
public final class SparsaCli {

    private SparsaCli() {
    }

    /** Builds the command tree writing to the given streams. */
    static CommandLine commandLine(PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new SparsaCli());
        cl.addSubcommand("demo", new DemoCommand(out, err));
        cl.addSubcommand("masks", new MasksCommand(out, err));
        cl.addSubcommand("decode", new DecodeCommand(out, err));
        cl.addSubcommand("dispatch-sweep", new DispatchSweepCommand(out, err));
        cl.addSubcommand("fuzz", new FuzzCommand(out, err));
        cl.addSubcommand("audit", new AuditCommand(out, err));
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine c = ex.getCommandLine();
            err.println("sparsa: " + ex.getMessage() + " (see: sparsa help " + helpPath(c) + ")");
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            if (ex instanceof IllegalArgumentException) {
                err.println("sparsa: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl;
    }

    /** The subcommand path of {@code c} below the root ({@code "demo"}), or empty for the root. */
    private static String helpPath(CommandLine c) {
        String name = c.getCommandName();
        return c.getParent() == null ? "" : name;
    }

    /**
     * Runs the command line and exits with its code.
     *
     * @param args the arguments, e.g. {@code demo --quick}
     */
    public static void main(String[] args) {
        int code;
        try {
            code = commandLine(System.out, System.err).execute(args);
        } catch (OutOfMemoryError e) {
            // the demo estimates its heap before allocating; this is the net under that estimate
            System.err.println("sparsa: out of heap memory (" + e.getMessage() + "); lower -n, -H, -b or -d, or raise -Xmx");
            code = 2;
        }
        System.exit(code);
    }
}
