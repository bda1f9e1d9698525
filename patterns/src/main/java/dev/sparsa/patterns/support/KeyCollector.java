package dev.sparsa.patterns.support;

import dev.sparsa.plan.KeyVisitor;
import java.util.Arrays;

/**
 * Collects the keys of one row, then sorts them and removes repeats, keeping for each key the
 * weight it was first reported with. Reusable; not thread-safe.
 */
public final class KeyCollector implements KeyVisitor {
    private long[] packed = new long[64];
    private float[] weights = new float[64];
    private int n;
    private int[] keys = new int[64];
    private float[] sortedWeights = new float[64];
    private int distinct;

    /** Forgets everything collected. */
    public void clear() {
        n = 0;
        distinct = 0;
    }

    @Override
    public void accept(int key, float logWeight) {
        if (n == packed.length) {
            packed = Arrays.copyOf(packed, n * 2);
            weights = Arrays.copyOf(weights, n * 2);
        }
        packed[n] = ((long) key << 32) | n;
        weights[n++] = logWeight;
    }

    /** Sorts and removes repeats; afterwards {@link #size()}, {@link #key(int)}, {@link #weight(int)}. */
    public KeyCollector finish() {
        Arrays.sort(packed, 0, n);
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
