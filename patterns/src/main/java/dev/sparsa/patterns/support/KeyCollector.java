package dev.sparsa.patterns.support;

import dev.sparsa.plan.KeyVisitor;
import java.util.Arrays;

/**
 * Collects the keys of one row, then sorts them and removes repeats, keeping for each key the
 * weight it was first reported with. Reusable; not thread-safe.
 */
public final class KeyCollector implements KeyVisitor {
    private long[] packed = new long[64];
    private long[] scratch = new long[64];
    private int[] runs = new int[65];
    private float[] weights = new float[64];
    private int n;
    private int[] keys = new int[64];
    private float[] sortedWeights = new float[64];
    private int distinct;
    private boolean ascending = true;
    private int lastKey = Integer.MIN_VALUE;

    /** Forgets everything collected. */
    public void clear() {
        n = 0;
        distinct = 0;
        ascending = true;
        lastKey = Integer.MIN_VALUE;
    }

    @Override
    public void accept(int key, float logWeight) {
        if (n == packed.length) {
            packed = Arrays.copyOf(packed, n * 2);
            weights = Arrays.copyOf(weights, n * 2);
        }
        packed[n] = ((long) key << 32) | n;
        weights[n++] = logWeight;
        ascending &= key > lastKey;
        lastKey = key;
    }

    /** Sorts and removes repeats; afterwards {@link #size()}, {@link #key(int)}, {@link #weight(int)}. */
    public KeyCollector finish() {
        if (!ascending) {
            sort(); // strictly ascending input (the common case) needs no sort
        }
        if (keys.length < n) {
            keys = new int[packed.length];
            sortedWeights = new float[packed.length];
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            int key = (int) (packed[i] >>> 32);
            if (m > 0 && keys[m - 1] == key) {
                continue; // same key: the first reported (lowest order) was kept
            }
            keys[m] = key;
            sortedWeights[m++] = weights[(int) packed[i]];
        }
        distinct = m;
        return this;
    }

    /**
     * Natural merge sort of {@code packed[0, n)}: finds the ascending runs (a row's keys usually come
     * as a few sorted runs: sinks, window, selected) and merges neighbours pairwise, with a reusable
     * scratch array, so O(n log runs) and no allocation per row.
     */
    private void sort() {
        if (scratch.length < n) {
            scratch = new long[packed.length];
        }
        if (runs.length < n + 1) {
            runs = new int[packed.length + 1];
        }
        int nr = 0;
        runs[nr++] = 0;
        for (int i = 1; i < n; i++) {
            if (packed[i] < packed[i - 1]) {
                runs[nr++] = i;
            }
        }
        runs[nr] = n;
        long[] src = packed;
        long[] dst = scratch;
        while (nr > 1) {
            int out = 0;
            for (int r = 0; r < nr; r += 2) {
                int lo = runs[r];
                int mid = runs[Math.min(r + 1, nr)];
                int hi = runs[Math.min(r + 2, nr)];
                int i = lo;
                int j = mid;
                int o = lo;
                while (i < mid && j < hi) {
                    dst[o++] = src[i] <= src[j] ? src[i++] : src[j++];
                }
                System.arraycopy(src, i, dst, o, mid - i);
                o += mid - i;
                System.arraycopy(src, j, dst, o, hi - j);
                runs[out++] = lo;
            }
            runs[out] = n;
            nr = out;
            long[] t = src;
            src = dst;
            dst = t;
        }
        if (src != packed) {
            System.arraycopy(src, 0, packed, 0, n);
        }
    }

    public int size() {
        return distinct;
    }

    public int key(int i) {
        return keys[i];
    }

    public float weight(int i) {
        return sortedWeights[i];
    }

    /** A copy of the sorted distinct keys. */
    public int[] keysCopy() {
        return Arrays.copyOf(keys, distinct);
    }

    /** A copy of their weights. */
    public float[] weightsCopy() {
        return Arrays.copyOf(sortedWeights, distinct);
    }
}
