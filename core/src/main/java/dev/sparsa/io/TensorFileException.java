package dev.sparsa.io;

import java.nio.file.Path;

/**
 * A tensor file that cannot be read as asked: a bad header, a truncated file, an unsupported element
 * type or memory order, a missing tensor name. The message names the file and says what is wrong in
 * one line. An {@link IllegalArgumentException}, so command lines report it as bad input.
 */
public final class TensorFileException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;

    /** A problem with {@code file}, described by {@code problem} (one line, no trailing period). */
    public TensorFileException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    /** The file the problem is in. */
    public Path file() {
        return file;
    }
}
