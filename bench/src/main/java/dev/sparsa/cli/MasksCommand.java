package dev.sparsa.cli;

import dev.sparsa.audit.MaskFigure;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code sparsa masks --out DIR}: renders every pattern family's mask as PNG pictures. */
@Command(name = "masks", mixinStandardHelpOptions = true,
        description = "Render every pattern family's mask on a small example as PNG (block layout and token level), with title, axes and legend.")
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
    public Integer call() {
        requireWritable(out);
        err.println("sparsa masks: rendering into " + out.toAbsolutePath());
        List<Path> files;
        try {
            files = MaskFigure.renderCatalogue(out);
        } catch (UncheckedIOException e) {
            throw new IllegalArgumentException("--out: cannot write the pictures into " + out + ": " + e.getCause().getMessage());
        }
        for (Path f : files) {
            stdout.println(f);
        }
        err.println("sparsa masks: wrote " + files.size() + " pictures");
        return 0;
    }

    /** Creates {@code dir} if missing; refuses, naming {@code --out}, a folder that cannot be written. */
    static void requireWritable(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException | UnsupportedOperationException e) {
            throw new IllegalArgumentException("--out: cannot create the folder " + dir + " (" + e + ")");
        }
        if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
            throw new IllegalArgumentException("--out: " + dir + " is not a writable folder");
        }
    }
}
