package dev.sparsa.cuda;

/**
 * The reading of the benchmarks' command-line flags: the value after a flag, an integer or a number of seconds
 * read from it, and the one-line {@link IllegalArgumentException} naming the flag that a bad one gets (its message
 * is the flag, {@link #separator()}, then what is wrong). Range checks stay with the callers, which word them.
 *
 * <p>Two styles of message: {@link #PLAIN}, {@code --iters needs a value}, for the GPU benchmarks ({@link
 * LaunchTiming}'s flag methods); {@link #COLON}, {@code --n: needs a value}, for {@code
 * dev.sparsa.bench.CpuDenseVsPeak}. A number is read without the characters around it that {@link String#trim()}
 * drops ({@link #PLAIN}) or that {@link String#strip()} drops ({@link #COLON}).
 *
 * <p>Not part of the attention API: it exists for the benchmarks.
 */
public enum Flags {
    /** {@code --iters needs a value}; numbers read after {@link String#trim()}. */
    PLAIN(" ") {
        @Override
        String number(String value) {
            return value.trim();
        }
    },
    /** {@code --n: needs a value}; numbers read after {@link String#strip()}. */
    COLON(": ") {
        @Override
        String number(String value) {
            return value.strip();
        }
    };

    private final String separator;

    Flags(String separator) {
        this.separator = separator;
    }

    /** What stands between a flag's name and the rest of a message about it. */
    public String separator() {
        return separator;
    }

    /** The text of a number in {@code value}: without the white space around it, as this style reads it. */
    abstract String number(String value);

    /** The exception for a bad use of {@code flag}: the message {@code flag}, {@link #separator()}, {@code what}. */
    public IllegalArgumentException bad(String flag, String what) {
        return new IllegalArgumentException(flag + separator + what);
    }

    /** The value after flag {@code args[i]}. Throws IllegalArgumentException ("needs a value") when there is none. */
    public String value(String[] args, int i) {
        if (i + 1 >= args.length) {
            throw bad(args[i], "needs a value");
        }
        return args[i + 1];
    }

    /**
     * The integer in {@code value} (any, in int's range). Throws IllegalArgumentException ("wants an integer, got
     * 'value'") when there is none.
     */
    public int integer(String flag, String value) {
        try {
            return Integer.parseInt(number(value));
        } catch (NumberFormatException e) {
            throw bad(flag, "wants an integer, got '" + value + "'");
        }
    }

    /**
     * The number in {@code value}, as {@link Double#parseDouble} reads it (NaN and infinities included). Throws
     * IllegalArgumentException ("wants a number of seconds, got 'value'") when there is none.
     */
    public double seconds(String flag, String value) {
        try {
            return Double.parseDouble(number(value));
        } catch (NumberFormatException e) {
            throw bad(flag, "wants a number of seconds, got '" + value + "'");
        }
    }
}
