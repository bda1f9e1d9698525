package dev.sparsa.internal;

import java.util.Arrays;

/**
 * A growable {@code int[]} (no boxing): the one list and pool type of the plan builders, the pattern
 * encoders and the device upload. Not thread-safe.
 */
public final class IntList {
    private int[] a = new int[16];
    private int n;

    public static IntList of(int first) {
        IntList l = new IntList();
        l.add(first);
        return l;
    }

    public void add(int v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, n * 2);
        }
        a[n++] = v;
    }

    /** Appends {@code src[from, to)}. */
    public void addAll(int[] src, int from, int to) {
        int m = to - from;
        if (n + m > a.length) {
            a = Arrays.copyOf(a, Math.max(n + m, a.length * 2));
        }
        System.arraycopy(src, from, a, n, m);
        n += m;
    }

    /** Appends a whole block and returns the index of its first element (a pool of blocks). */
    public int append(int[] block) {
        int at = n;
        addAll(block, 0, block.length);
        return at;
    }

    /** Makes room for {@code more} appends without regrowing. */
    public void reserve(int more) {
        if ((long) n + more > a.length) {
            a = Arrays.copyOf(a, (int) Math.min(Integer.MAX_VALUE - 8, (long) n + more));
        }
    }

    /**
     * Makes room for {@code more} appends and returns the backing array, whose elements {@code
     * [size(), size() + more)} the caller may write before {@link #addWritten(int)}; valid until the
     * next append.
     */
    public int[] room(int more) {
        reserve(more);
        return a;
    }

    /** Appends the {@code m} elements written past the end of {@link #room(int)}'s array. */
    public void addWritten(int m) {
        if (m < 0 || (long) n + m > a.length) {
            throw new IllegalArgumentException("addWritten: " + m + " past " + n + " of " + a.length);
        }
        n += m;
    }

    /** Appends every element of another list. */
    public void addAll(IntList other) {
        addAll(other.a, 0, other.n);
    }

    public int get(int i) {
        return a[i];
    }

    /** The backing array: elements {@code [0, size())} are the list's; valid until the next append. */
    public int[] array() {
        return a;
    }

    /** Empties the list, keeping its capacity; returns it. */
    public IntList cleared() {
        n = 0;
        return this;
    }

    public int size() {
        return n;
    }

    public int[] toArray() {
        return Arrays.copyOf(a, n);
    }

    /**
     * The elements as an array: the list's own array when it is exactly full (a list reserved to
     * its final size; any later addition moves the list to a new array, so the one returned is not
     * written again unless the list is {@link #cleared()} and refilled, which its caller must not
     * do), a copy otherwise.
     */
    public int[] toArrayShared() {
        return n == a.length ? a : Arrays.copyOf(a, n);
    }

    public int[] sortedDistinct() {
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
