package dev.sparsa.patterns.support;

/** Argument checks that throw {@link IllegalArgumentException} naming the parameter and its value. */
public final class Checks {
    /** {@code ceil(n / size)} without overflow, for a size that may exceed {@code n} by far. */
    public static int groups(int n, int size) {
        return (int) ((n + (long) size - 1) / size);
    }

    /** The end {@code min(n, (g + 1)·size)} of group {@code g}, without overflow. */
    public static int groupEnd(int g, int size, int n) {
        return (int) Math.min(n, ((long) g + 1) * size);
    }

    private Checks() {
    }

    /** @throws IllegalArgumentException unless {@code value >= min} */
    public static int atLeast(String name, int value, int min) {
        if (value < min) {
            throw new IllegalArgumentException(name + ": must be >= " + min + ", got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException unless {@code lo <= value <= hi} */
    public static double inRange(String name, double value, double lo, double hi) {
        if (!(value >= lo && value <= hi)) {
            throw new IllegalArgumentException(name + ": must be in [" + lo + ", " + hi + "], got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException if {@code value} is null */
    public static <T> T notNull(String name, T value) {
        if (value == null) {
            throw new IllegalArgumentException(name + ": must not be null");
        }
        return value;
    }
}
