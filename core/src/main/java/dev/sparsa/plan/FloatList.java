package dev.sparsa.plan;

import java.util.Arrays;

/** A growable {@code float[]} for plan builders (no boxing). */
final class FloatList {
    private float[] a = new float[16];
    private int n;

    void add(float v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, n * 2);
        }
        a[n++] = v;
    }

    /** Appends {@code m} zeros (the slots past {@code n} may hold values from before {@link #cleared}). */
    void addZeros(int m) {
        if (n + m > a.length) {
            a = Arrays.copyOf(a, Math.max(n + m, a.length * 2));
        }
        Arrays.fill(a, n, n + m, 0f);
        n += m;
    }

    /** Appends every element of another list. */
    void addAll(FloatList other) {
        if (n + other.n > a.length) {
            a = Arrays.copyOf(a, Math.max(n + other.n, a.length * 2));
        }
        System.arraycopy(other.a, 0, a, n, other.n);
        n += other.n;
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
