package dev.sparsa.plan;

import java.util.Arrays;

/** A growable {@code int[]} for plan builders (no boxing). */
final class IntList {
    private int[] a = new int[16];
    private int n;

    static IntList of(int first) {
        IntList l = new IntList();
        l.add(first);
        return l;
    }

    void add(int v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, n * 2);
        }
        a[n++] = v;
    }

    /** Appends {@code src[from, to)}. */
    void addAll(int[] src, int from, int to) {
        int m = to - from;
        if (n + m > a.length) {
            a = Arrays.copyOf(a, Math.max(n + m, a.length * 2));
        }
        System.arraycopy(src, from, a, n, m);
        n += m;
    }

    /** Makes room for {@code more} appends without regrowing. */
    void reserve(int more) {
        if ((long) n + more > a.length) {
            a = Arrays.copyOf(a, (int) Math.min(Integer.MAX_VALUE - 8, (long) n + more));
        }
    }

    /** Appends every element of another list. */
    void addAll(IntList other) {
        addAll(other.a, 0, other.n);
    }

    int get(int i) {
        return a[i];
    }

    /** The backing array: elements {@code [0, size())} are the list's; valid until the next append. */
    int[] array() {
        return a;
    }

    /** Empties the list, keeping its capacity; returns it. */
    IntList cleared() {
        n = 0;
        return this;
    }

    int size() {
        return n;
    }

    int[] toArray() {
        return Arrays.copyOf(a, n);
    }

    int[] sortedDistinct() {
        int[] s = toArray();
        Arrays.sort(s);
        int m = 0;
        for (int i = 0; i < s.length; i++) {
            if (m == 0 || s[m - 1] != s[i]) {
                s[m++] = s[i];
            }
        }
        return Arrays.copyOf(s, m);
    }
}
