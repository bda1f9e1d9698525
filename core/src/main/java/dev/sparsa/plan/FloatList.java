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
