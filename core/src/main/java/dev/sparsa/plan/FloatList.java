package dev.sparsa.plan;

import java.util.Arrays;

/** A growable {@code float[]} for plan builders (no boxing). */
final class FloatList {
    private float[] a = new float[16];
    private int n;
    // slots at or past this index were never written, so they hold zeros (slots in [n, written) may
    // hold values from before the last clear)
    private int written;

    void add(float v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, n * 2);
        }
        a[n++] = v;
        written = Math.max(written, n);
    }

    /** Appends {@code m} zeros: only the slots written before need clearing. */
    void addZeros(int m) {
        if (n + m > a.length) {
            a = Arrays.copyOf(a, Math.max(n + m, a.length * 2));
        }
        if (n < written) {
            Arrays.fill(a, n, Math.min(n + m, written), 0f);
        }
        n += m;
    }

    /** Appends every element of another list. */
    void addAll(FloatList other) {
        if (n + other.n > a.length) {
            a = Arrays.copyOf(a, Math.max(n + other.n, a.length * 2));
        }
        System.arraycopy(other.a, 0, a, n, other.n);
        n += other.n;
        written = Math.max(written, n);
    }

    float get(int i) {
        return a[i];
    }

    /** Empties the list, keeping its capacity; returns it. */
    FloatList cleared() {
        n = 0;
        return this;
    }

    int size() {
        return n;
    }

    float[] toArray() {
        return Arrays.copyOf(a, n);
    }
}
