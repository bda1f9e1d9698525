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

    /** Bottom-up merge sort of {@code packed[0, n)} with a reusable scratch array: no allocation per row. */
    private void sort() {
        if (scratch.length < n) {
            scratch = new long[packed.length];
        }
        long[] src = packed;
        long[] dst = scratch;
        for (int width = 1; width < n; width *= 2) {
            for (int lo = 0; lo < n; lo += 2 * width) {
                int mid = Math.min(lo + width, n);
                int hi = Math.min(lo + 2 * width, n);
                int i = lo;
                int j = mid;
                int o = lo;
                if (mid >= hi || src[mid - 1] <= src[mid]) {
                    System.arraycopy(src, lo, dst, lo, hi - lo); // already in order: the common case of sorted runs
                    continue;
                }
                while (i < mid && j < hi) {
                    dst[o++] = src[i] <= src[j] ? src[i++] : src[j++];
                }
                while (i < mid) {
                    dst[o++] = src[i++];
                }
                while (j < hi) {
                    dst[o++] = src[j++];
                }
            }
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
