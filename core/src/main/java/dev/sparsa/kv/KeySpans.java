package dev.sparsa.kv;

import java.util.Arrays;

/**
 * The keys one (sequence, KV head) visits in a decode step: ascending, disjoint spans {@code [start,
 * end)} of key positions, each with the largest distance {@code maxDelta} a row may be ahead of a
 * key and still admit it. A row at position {@code p} admits key {@code k} of span {@code i} iff
 * {@code 0 ≤ p − k ≤ maxDelta(i)}: {@link #UNBANDED} spans (dense, sinks, selected pages and tokens)
 * need only causality, the spans of a window admit a key for the rows less than {@code window} ahead.
 *
 * <p>A reusable, growable list (kernels fill one per work item); not thread-safe.
 */
public final class KeySpans {
    /** {@code maxDelta} of spans admitted by causality alone. */
    public static final int UNBANDED = Integer.MAX_VALUE;

    private int[] start = new int[8];
    private int[] end = new int[8];
    private int[] maxDelta = new int[8];
    private int size;

    /** Empties the list. */
    public void clear() {
        size = 0;
    }

    /**
     * Makes room for {@code spans} spans in all, so that adding up to that many allocates nothing
     * (a decode step resolves every (sequence, KV head)'s spans; growing by doubling would leave
     * about as much garbage as the list holds).
     *
     * @throws IllegalArgumentException if {@code spans} is negative
     */
    public void ensureCapacity(int spans) {
        if (spans < 0) {
            throw new IllegalArgumentException("spans: must be >= 0, got " + spans);
        }
        if (spans > start.length) {
            start = Arrays.copyOf(start, spans);
            end = Arrays.copyOf(end, spans);
            maxDelta = Arrays.copyOf(maxDelta, spans);
        }
    }

    /**
     * Appends {@code [s, e)} (ignored when empty), merging it into the last span when they touch and
     * share {@code maxDelta}.
     *
     * @throws IllegalArgumentException if the span starts before the last one ends
     */
    public void add(int s, int e, int delta) {
        if (e <= s) {
            return;
        }
        if (size > 0) {
            if (s < end[size - 1]) {
                throw new IllegalArgumentException("span [" + s + ", " + e + ") starts before the previous span ends at "
                        + end[size - 1]);
            }
            if (s == end[size - 1] && maxDelta[size - 1] == delta) {
                end[size - 1] = e;
                return;
            }
        }
        if (size == start.length) {
            start = Arrays.copyOf(start, size * 2);
            end = Arrays.copyOf(end, size * 2);
            maxDelta = Arrays.copyOf(maxDelta, size * 2);
        }
        start[size] = s;
        end[size] = e;
        maxDelta[size++] = delta;
    }

    /** Number of spans. */
    public int size() {
        return size;
    }

    /** First key of span {@code i}. */
    public int start(int i) {
        return start[i];
    }

    /** One past the last key of span {@code i}. */
    public int end(int i) {
        return end[i];
    }

    /** The largest {@code p − k} span {@code i} admits ({@link #UNBANDED}: any {@code p ≥ k}). */
    public int maxDelta(int i) {
        return maxDelta[i];
    }

    /** Keys over all spans. */
    public long keyCount() {
        long n = 0;
        for (int i = 0; i < size; i++) {
            n += end[i] - start[i];
        }
        return n;
    }

    /** Whether a row at {@code rowPos} admits key {@code key} (a scan; for tests and oracles). */
    public boolean admits(long rowPos, int key) {
        for (int i = 0; i < size; i++) {
            if (key >= start[i] && key < end[i]) {
                long delta = rowPos - key;
                return delta >= 0 && delta <= maxDelta[i];
            }
        }
        return false;
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("KeySpans[");
        for (int i = 0; i < size; i++) {
            b.append(i == 0 ? "" : ", ").append('[').append(start[i]).append(", ").append(end[i]).append(')');
            if (maxDelta[i] != UNBANDED) {
                b.append("≤").append(maxDelta[i]);
            }
        }
        return b.append(']').toString();
    }
}
