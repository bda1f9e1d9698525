package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
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
    /** Eight lanes, fixed: one vector holds eight directions (one byte of the hash). */
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
     * is one chain of fused multiply-adds over the channels in order, the definition {@link
     * #hashAll} vectorises bitwise.
     */
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

    /**
     * Hashes of the first {@code n} rows of a flat {@code [n · dim]} array, bitwise {@link #hash} of
     * each: lanes are directions (eight per vector, channel-major copies of the directions), so a
     * vector of running sums compared with 0 is a byte of the hash, and eight rows at a time keep
     * eight independent FMA chains in flight.
     *
     * @throws IllegalArgumentException if the array holds fewer than {@code n} rows
     */
    public int[] hashAll(float[] rows, int n) {
        if (n < 0 || rows == null || rows.length < (long) n * dim) {
            throw new IllegalArgumentException("rows: need n >= 0 and n·dim floats, got n=" + n + " for dim " + dim);
        }
        int[] out = new int[n];
        for (int g = 0; g * LANES < bits; g++) {
            float[] dirT = transposed(g);
            int r = 0;
            for (; r + 7 < n; r += 8) {
                eightRows(rows, r, dirT, g, out);
            }
            for (; r < n; r++) {
                out[r] |= oneRow(rows, r * dim, dirT, g);
            }
        }
        return out;
    }

    /**
     * Hashes of every row of (batch, head) of a tensor (any dtype), read eight rows at a time into a
     * small buffer: the same as {@code hashAll(Vectors.rows(t, batch, head), seqLen)} without the
     * full copy.
     *
     * @throws IllegalArgumentException if the tensor's dim is not this hash's dim
     */
    public int[] hashAll(dev.sparsa.tensor.Tensor t, int batch, int head) {
        if (t.dim() != dim) {
            throw new IllegalArgumentException("t: dim " + t.dim() + " but the directions have dim " + dim);
        }
        int n = t.seqLen();
        int[] out = new int[n];
        float[] buf = new float[8 * dim];
        float[][] dirT = new float[(bits + LANES - 1) / LANES][];
        for (int g = 0; g < dirT.length; g++) {
            dirT[g] = transposed(g);
        }
        int[] h8 = new int[8];
        for (int r = 0; r < n; r += 8) {
            int m = Math.min(8, n - r);
            for (int j = 0; j < m; j++) {
                t.readRow(batch, head, r + j, buf, j * dim);
            }
            java.util.Arrays.fill(h8, 0);
            for (int g = 0; g < dirT.length; g++) {
                if (m == 8) {
                    eightRows(buf, 0, dirT[g], g, h8);
                } else {
                    for (int j = 0; j < m; j++) {
                        h8[j] |= oneRow(buf, j * dim, dirT[g], g);
                    }
                }
            }
            System.arraycopy(h8, 0, out, r, m);
        }
        return out;
    }

    /** Directions {@code [8g, 8g + 8)} channel-major: {@code [x · 8 + lane]}, zero past {@code bits}. */
    private float[] transposed(int g) {
        float[] t = new float[dim * LANES];
        for (int l = 0; l < LANES && g * LANES + l < bits; l++) {
            for (int x = 0; x < dim; x++) {
                t[x * LANES + l] = directions[(g * LANES + l) * dim + x];
            }
        }
        return t;
    }

    // eight rows against eight directions: small and called often, so the JIT compiles it (with the
    // vector intrinsics) early instead of running a long first call in the interpreter's fallback
    private void eightRows(float[] rows, int r, float[] dirT, int g, int[] out) {
        int o0 = r * dim;
        FloatVector a0 = FloatVector.zero(S);
        FloatVector a1 = FloatVector.zero(S);
        FloatVector a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        FloatVector a4 = FloatVector.zero(S);
        FloatVector a5 = FloatVector.zero(S);
        FloatVector a6 = FloatVector.zero(S);
        FloatVector a7 = FloatVector.zero(S);
        for (int x = 0; x < dim; x++) {
            FloatVector d = FloatVector.fromArray(S, dirT, x * LANES);
            a0 = FloatVector.broadcast(S, rows[o0 + x]).fma(d, a0);
            a1 = FloatVector.broadcast(S, rows[o0 + dim + x]).fma(d, a1);
            a2 = FloatVector.broadcast(S, rows[o0 + 2 * dim + x]).fma(d, a2);
            a3 = FloatVector.broadcast(S, rows[o0 + 3 * dim + x]).fma(d, a3);
            a4 = FloatVector.broadcast(S, rows[o0 + 4 * dim + x]).fma(d, a4);
            a5 = FloatVector.broadcast(S, rows[o0 + 5 * dim + x]).fma(d, a5);
            a6 = FloatVector.broadcast(S, rows[o0 + 6 * dim + x]).fma(d, a6);
            a7 = FloatVector.broadcast(S, rows[o0 + 7 * dim + x]).fma(d, a7);
        }
        out[r] |= byteOf(a0, g);
        out[r + 1] |= byteOf(a1, g);
        out[r + 2] |= byteOf(a2, g);
        out[r + 3] |= byteOf(a3, g);
        out[r + 4] |= byteOf(a4, g);
        out[r + 5] |= byteOf(a5, g);
        out[r + 6] |= byteOf(a6, g);
        out[r + 7] |= byteOf(a7, g);
    }

    /** Bits {@code [8g, 8g + 8)} of the hash of the row at {@code rows[off, off + dim)} (the tail rows). */
    private int oneRow(float[] rows, int off, float[] dirT, int g) {
        FloatVector acc = FloatVector.zero(S);
        for (int x = 0; x < dim; x++) {
            acc = FloatVector.broadcast(S, rows[off + x]).fma(FloatVector.fromArray(S, dirT, x * LANES), acc);
        }
        return byteOf(acc, g);
    }

    /** Bits {@code [8g, 8g + 8)} of a hash: the lanes whose projection is {@code > 0}. */
    private static int byteOf(FloatVector projections, int g) {
        return (int) projections.compare(VectorOperators.GT, 0f).toLong() << (g * LANES);
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
