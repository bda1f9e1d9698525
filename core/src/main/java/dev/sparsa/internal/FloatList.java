package dev.sparsa.internal;

import java.util.Arrays;

/**
 * A growable {@code float[]} (no boxing), the float twin of {@link IntList}. Not thread-safe.
 */
public final class FloatList {
    private float[] a = new float[16];
    private int n;
    // slots at or past this index were never written, so they hold zeros (slots in [n, written) may
    // hold values from before the last clear)
    private int written;

    public void add(float v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, n * 2);
        }
        a[n++] = v;
        written = Math.max(written, n);
    }

    /** Appends {@code m} zeros: only the slots written before need clearing. */
    public void addZeros(int m) {
        if (n + m > a.length) {
            a = Arrays.copyOf(a, Math.max(n + m, a.length * 2));
        }
        if (n < written) {
            Arrays.fill(a, n, Math.min(n + m, written), 0f);
        }
        n += m;
    }

    /** Appends a whole block and returns the index of its first element (a pool of blocks). */
    public int append(float[] block) {
        int at = n;
        if (n + block.length > a.length) {
            a = Arrays.copyOf(a, Math.max(n + block.length, a.length * 2));
        }
        System.arraycopy(block, 0, a, n, block.length);
        n += block.length;
        written = Math.max(written, n);
        return at;
    }

    /** The backing array: elements {@code [0, size())} are the list's; valid until the next append. */
    public float[] array() {
        return a;
    }

    /** Appends every element of another list. */
    public void addAll(FloatList other) {
        if (n + other.n > a.length) {
            a = Arrays.copyOf(a, Math.max(n + other.n, a.length * 2));
        }
        System.arraycopy(other.a, 0, a, n, other.n);
        n += other.n;
        written = Math.max(written, n);
    }

    public float get(int i) {
        return a[i];
    }

    /** Empties the list, keeping its capacity; returns it. */
    public FloatList cleared() {
        n = 0;
        return this;
    }

    public int size() {
        return n;
    }

    public float[] toArray() {
        return Arrays.copyOf(a, n);
    }
}
