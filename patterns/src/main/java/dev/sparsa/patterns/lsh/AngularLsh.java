package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Angular (sign-random-projection) LSH with explicit, seeded projections (Charikar's SimHash, as
 * HyperAttention and Reformer use it): {@code bits} Gaussian directions {@code r_i} drawn from a
 * {@link SplittableRandom} with the given seed; the hash of {@code x} has bit {@code i} set when
 * {@code x · r_i > 0}. Vectors at a small angle agree on most bits. Reproducible across runs.
 *
 * @throws IllegalArgumentException if {@code bits} is not in [1, 30] or {@code dim < 1}
 */
public final class AngularLsh {
    /** Eight lanes, fixed (not the machine's preferred width): the summation order is part of the hash. */
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    private static final int LANES = 8;
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

    /**
     * The hash of row {@code row} of a flat {@code [n · dim]} array. Each projection {@code x · r_i}
     * is summed in a fixed order, the definition {@link #hashAll} vectorises bitwise: eight running
     * sums (channel {@code x} into sum {@code x mod 8}, each a chain of fused multiply-adds in
     * channel order), then added in order {@code ((s0 + s1) + s2) + … + s7}.
     */
    public int hash(float[] rows, int row) {
        int h = 0;
        int off = row * dim;
        float[] part = new float[LANES];
        for (int i = 0; i < bits; i++) {
            java.util.Arrays.fill(part, 0f);
            for (int x = 0; x < dim; x++) {
                part[x & (LANES - 1)] = Math.fma(rows[off + x], directions[i * dim + x], part[x & (LANES - 1)]);
            }
            if (reduce(part) > 0) {
                h |= 1 << i;
            }
        }
        return h;
    }

    /** Hashes of the first {@code n} rows of a flat {@code [n · dim]} array, bitwise {@link #hash} of each. */
    public int[] hashAll(float[] rows, int n) {
        if (n < 0 || rows == null || rows.length < (long) n * dim) {
            throw new IllegalArgumentException("rows: need n >= 0 and n·dim floats, got n=" + n + " for dim " + dim);
        }
        int[] out = new int[n];
        int d8 = dim & ~(LANES - 1);
        float[] part = new float[LANES];
        for (int r = 0; r < n; r++) {
            out[r] = hashRow(rows, r * dim, d8, part);
        }
        return out;
    }

    // one row: small and called often, so the JIT compiles it (with the vector intrinsics) early
    // instead of running a long first call in the interpreter's slow vector fallback
    private int hashRow(float[] rows, int off, int d8, float[] part) {
        {
            int h = 0;
            int i = 0;
            // eight directions at a time: eight independent fused chains per row
            for (; i + 7 < bits; i += 8) {
                int o = i * dim;
                FloatVector a0 = FloatVector.zero(S);
                FloatVector a1 = FloatVector.zero(S);
                FloatVector a2 = FloatVector.zero(S);
                FloatVector a3 = FloatVector.zero(S);
                FloatVector a4 = FloatVector.zero(S);
                FloatVector a5 = FloatVector.zero(S);
                FloatVector a6 = FloatVector.zero(S);
                FloatVector a7 = FloatVector.zero(S);
                for (int x = 0; x < d8; x += LANES) {
                    FloatVector v = FloatVector.fromArray(S, rows, off + x);
                    a0 = v.fma(FloatVector.fromArray(S, directions, o + x), a0);
                    a1 = v.fma(FloatVector.fromArray(S, directions, o + dim + x), a1);
                    a2 = v.fma(FloatVector.fromArray(S, directions, o + 2 * dim + x), a2);
                    a3 = v.fma(FloatVector.fromArray(S, directions, o + 3 * dim + x), a3);
                    a4 = v.fma(FloatVector.fromArray(S, directions, o + 4 * dim + x), a4);
                    a5 = v.fma(FloatVector.fromArray(S, directions, o + 5 * dim + x), a5);
                    a6 = v.fma(FloatVector.fromArray(S, directions, o + 6 * dim + x), a6);
                    a7 = v.fma(FloatVector.fromArray(S, directions, o + 7 * dim + x), a7);
                }
                // each sum straight to its bit (vectors kept out of arrays so they stay in registers)
                h |= bit(finish(a0, rows, off, o, d8, part), i);
                h |= bit(finish(a1, rows, off, o + dim, d8, part), i + 1);
                h |= bit(finish(a2, rows, off, o + 2 * dim, d8, part), i + 2);
                h |= bit(finish(a3, rows, off, o + 3 * dim, d8, part), i + 3);
                h |= bit(finish(a4, rows, off, o + 4 * dim, d8, part), i + 4);
                h |= bit(finish(a5, rows, off, o + 5 * dim, d8, part), i + 5);
                h |= bit(finish(a6, rows, off, o + 6 * dim, d8, part), i + 6);
                h |= bit(finish(a7, rows, off, o + 7 * dim, d8, part), i + 7);
            }
            for (; i < bits; i++) {
                FloatVector a = FloatVector.zero(S);
                for (int x = 0; x < d8; x += LANES) {
                    a = FloatVector.fromArray(S, rows, off + x).fma(FloatVector.fromArray(S, directions, i * dim + x), a);
                }
                if (finish(a, rows, off, i * dim, d8, part) > 0) {
                    h |= 1 << i;
                }
            }
            return h;
        }
    }

    /** Continues the eight sums of {@code acc} over the tail channels {@code [d8, dim)}, then reduces them in order. */
    private float finish(FloatVector acc, float[] rows, int off, int dirOff, int d8, float[] part) {
        acc.intoArray(part, 0);
        for (int x = d8; x < dim; x++) {
            part[x & (LANES - 1)] = Math.fma(rows[off + x], directions[dirOff + x], part[x & (LANES - 1)]);
        }
        return reduce(part);
    }

    private static int bit(float projection, int i) {
        return projection > 0 ? 1 << i : 0;
    }

    private static float reduce(float[] part) {
        float s = part[0];
        for (int l = 1; l < LANES; l++) {
            s += part[l];
        }
        return s;
    }

    /** Indices {@code 0..n-1} sorted by (hash, index). */
    public static int[] sortByBucket(int[] hashes) {
        int max = 0;
        for (int h : hashes) {
            max = Math.max(max, h);
        }
        if (max < (1 << 16)) {
            // a stable counting sort: (hash, index) order in O(n + buckets)
            int[] start = new int[max + 2];
            for (int h : hashes) {
                start[h + 1]++;
            }
            for (int b = 1; b < start.length; b++) {
                start[b] += start[b - 1];
            }
            int[] order = new int[hashes.length];
            for (int i = 0; i < hashes.length; i++) {
                order[start[hashes[i]]++] = i;
            }
            return order;
        }
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
