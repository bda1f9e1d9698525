package dev.sparsa.cuda;

/**
 * The reading of the benchmarks' command-line flags: the value after a flag, an integer or a number of
 * seconds read from it (without the white space around it, as {@link String#strip()} drops it), and the
 * one-line {@link IllegalArgumentException} a bad one gets: {@code --iters: needs a value}, the flag, a
 * colon, then what is wrong (the form of the Python benchmarks' argparse messages too). Range checks stay
 * with the callers, which word them.
 *
 * <p>Not part of the attention API: it exists for the benchmarks.
 */
public final class Flags {
    private Flags() {
    }

    /** The exception for a bad use of {@code flag}: the message {@code flag + ": " + what}. */
    public static IllegalArgumentException bad(String flag, String what) {
        return new IllegalArgumentException(flag + ": " + what);
    }

    /** The value after flag {@code args[i]}. Throws IllegalArgumentException ("needs a value") when there is none. */
    public static String value(String[] args, int i) {
        if (i + 1 >= args.length) {
            throw bad(args[i], "needs a value");
        }
        return args[i + 1];
    }

    /**
     * The integer in {@code value} (any, in int's range). Throws IllegalArgumentException ("wants an integer, got
     * 'value'") when there is none.
     */
    public static int integer(String flag, String value) {
        try {
            return Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw bad(flag, "wants an integer, got '" + value + "'");
        }
    }

    /**
     * The number in {@code value}, as {@link Double#parseDouble} reads it (NaN and infinities included). Throws
     * IllegalArgumentException ("wants a number of seconds, got 'value'") when there is none.
     */
    public static double seconds(String flag, String value) {
        try {
            return Double.parseDouble(value.strip());
        } catch (NumberFormatException e) {
            throw bad(flag, "wants a number of seconds, got '" + value + "'");
        }
    }
}
