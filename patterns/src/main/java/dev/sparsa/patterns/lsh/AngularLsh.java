package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import java.util.SplittableRandom;

/**
 * Angular (sign-random-projection) LSH with explicit, seeded projections (Charikar's SimHash, as
 * HyperAttention and Reformer use it): {@code bits} Gaussian directions {@code r_i} drawn from a
 * {@link SplittableRandom} with the given seed; the hash of {@code x} has bit {@code i} set when
 * {@code x · r_i > 0}. Vectors at a small angle agree on most bits. Reproducible across runs.
 *
 * @throws IllegalArgumentException if {@code bits} is not in [1, 30] or {@code dim < 1}
 */
public final class AngularLsh {
    private final int bits;
    private final int dim;
    private final float[] directions; // [bits][dim]

    public AngularLsh(int bits, int dim, long seed) {
        if (bits < 1 || bits > 30) {
            throw new IllegalArgumentException("bits: must be in [1, 30], got " + bits);
        }
        this.bits = bits;
        this.dim = Checks.atLeast("dim", dim, 1);
        SplittableRandom rnd = new SplittableRandom(seed);
        directions = new float[bits * dim];
        for (int i = 0; i < directions.length; i++) {
            directions[i] = (float) rnd.nextGaussian();
        }
    }

    public int bits() {
        return bits;
    }

    /** The hash of row {@code row} of a flat {@code [n · dim]} array. */
    public int hash(float[] rows, int row) {
        int h = 0;
        int off = row * dim;
        for (int i = 0; i < bits; i++) {
            float s = 0;
            for (int x = 0; x < dim; x++) {
                s = Math.fma(rows[off + x], directions[i * dim + x], s);
            }
            if (s > 0) {
                h |= 1 << i;
            }
        }
        return h;
    }

    /** Hashes of every row of a flat {@code [n · dim]} array. */
    public int[] hashAll(float[] rows, int n) {
        // vectorised across rows, bitwise equal to hash(rows, r) for every r
        return dev.sparsa.patterns.support.KeyPanels.of(rows, n, dim).signHashes(directions, bits);
    }

    /** Hashes of every row already packed in panels (bitwise {@link #hash} of each row). */
    public int[] hashAll(dev.sparsa.patterns.support.KeyPanels rows) {
        return rows.signHashes(directions, bits);
    }

    /** Indices {@code 0..n-1} sorted by (hash, index). */
    public static int[] sortByBucket(int[] hashes) {
        long[] packed = new long[hashes.length];
        for (int i = 0; i < hashes.length; i++) {
            packed[i] = ((long) hashes[i] << 32) | i;
        }
        java.util.Arrays.sort(packed);
        int[] order = new int[hashes.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = (int) packed[i];
        }
        return order;
    }

    /** Start (inclusive) of key chunk {@code i} of {@code chunks} over {@code n} sorted keys: {@code floor(i·n/chunks)}. */
    public static int chunkStart(int i, int chunks, int n) {
        return (int) ((long) i * n / chunks);
    }
}
