package dev.sparsa.cli;

import dev.sparsa.tools.MaskRenderer;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code sparsa masks --out DIR}: renders every pattern family's mask as PNG pictures. */
@Command(name = "masks", mixinStandardHelpOptions = true,
        description = "Render every pattern family's mask on a small example as PNG (block layout and token level).")
final class MasksCommand implements Callable<Integer> {

    @Option(names = "--out", required = true, description = "Folder to write the PNG files into (created if missing).")
    Path out;

    private final PrintStream stdout;
    private final PrintStream err;

    MasksCommand(PrintStream stdout, PrintStream err) {
        this.stdout = stdout;
        this.err = err;
    }

    @Override
    public Integer call() throws Exception {
        err.println("sparsa masks: rendering into " + out.toAbsolutePath());
        List<Path> files = MaskRenderer.renderCatalogue(out);
        for (Path f : files) {
            stdout.println(f);
        }
        err.println("sparsa masks: wrote " + files.size() + " pictures");
        return 0;
    }
}
