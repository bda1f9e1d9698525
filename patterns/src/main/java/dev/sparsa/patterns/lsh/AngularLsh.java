package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.ScoringProvider;
import dev.sparsa.patterns.support.ScoringSupport;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Angular (sign-random-projection) LSH with explicit, seeded projections (Charikar's SimHash, as
 * HyperAttention and Reformer use it): {@code bits} Gaussian directions {@code r_i} drawn from a
 * {@link SplittableRandom} with the given seed; the hash of {@code x} has bit {@code i} set when
 * {@code x · r_i > 0}. Vectors at a small angle agree on most bits. Reproducible across runs.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code bits} is not in [1, 30] or {@code dim < 1}
 */
public final class AngularLsh {
    /** Directions per group: one group is one byte of the hash. */
    private static final int LANES = 8;
    private static final ScoringSupport KERNELS = ScoringProvider.get();
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
     * each (see {@link #hashAll(List, float[], int)}).
     *
     * @throws IllegalArgumentException if the array holds fewer than {@code n} rows
     */
    public int[] hashAll(float[] rows, int n) {
        return hashAll(List.of(this), rows, n)[0];
    }

    /**
     * Hashes of every row of (batch, head) of a tensor (any dtype): the same as {@code
     * hashAll(Vectors.rows(t, batch, head), seqLen)} without the full copy.
     *
     * @throws IllegalArgumentException if the tensor's dim is not this hash's dim
     */
    public int[] hashAll(dev.sparsa.tensor.Tensor t, int batch, int head) {
        return hashAll(List.of(this), t, batch, head)[0];
    }

    /**
     * The hashes of the first {@code n} rows of a flat {@code [n · dim]} array under each function of
     * {@code family} ({@code [function][row]}), each bitwise {@link #hash}. Several functions (Reformer's
     * rounds) are hashed in one pass: their directions are laid side by side, eight per vector
     * (channel-major copies), and two vectors of directions against six rows at a time keep twelve
     * independent FMA chains in flight on six row loads and two direction loads per channel; a lone
     * group of eight directions runs eight rows at a time.
     *
     * @throws IllegalArgumentException if the family is empty or mixes dims, or the array holds
     *     fewer than {@code n} rows
     */
    public static int[][] hashAll(List<AngularLsh> family, float[] rows, int n) {
        Groups g = groups(family);
        if (n < 0 || rows == null || rows.length < (long) n * g.dim) {
            throw new IllegalArgumentException("rows: need n >= 0 and n·dim floats, got n=" + n + " for dim " + g.dim);
        }
        int[][] out = new int[family.size()][n];
        g.hashRows(rows, n, out, 0);
        return out;
    }

    /**
     * {@link #hashAll(List, float[], int)} of every row of (batch, head) of a tensor (any dtype), read
     * {@value #BLOCK_ROWS} rows at a time into a small buffer.
     *
     * @throws IllegalArgumentException if the family is empty or mixes dims, or the tensor's dim is
     *     not theirs
     */
    public static int[][] hashAll(List<AngularLsh> family, dev.sparsa.tensor.Tensor t, int batch, int head) {
        Groups g = groups(family);
        if (t.dim() != g.dim) {
            throw new IllegalArgumentException("t: dim " + t.dim() + " but the directions have dim " + g.dim);
        }
        int n = t.seqLen();
        int[][] out = new int[family.size()][n];
        float[] buf = new float[BLOCK_ROWS * g.dim];
        for (int r = 0; r < n; r += BLOCK_ROWS) {
            int m = Math.min(BLOCK_ROWS, n - r);
            for (int j = 0; j < m; j++) {
                t.readRow(batch, head, r + j, buf, j * g.dim);
            }
            g.hashRows(buf, m, out, r);
        }
        return out;
    }

    /** Rows read from a tensor per block: a multiple of both kernels' row counts (6 and 8). */
    private static final int BLOCK_ROWS = 48;

    private static Groups groups(List<AngularLsh> family) {
        if (family == null || family.isEmpty()) {
            throw new IllegalArgumentException("family: need at least one hash function");
        }
        int dim = family.get(0).dim;
        int count = 0;
        for (AngularLsh f : family) {
            if (f.dim != dim) {
                throw new IllegalArgumentException("family: dims differ (" + dim + " and " + f.dim + ")");
            }
            count += (f.bits + LANES - 1) / LANES;
        }
        float[][] dirT = new float[count][];
        int[] owner = new int[count];
        int[] shift = new int[count];
        int at = 0;
        for (int i = 0; i < family.size(); i++) {
            AngularLsh f = family.get(i);
            for (int g = 0; g * LANES < f.bits; g++, at++) {
                dirT[at] = f.transposed(g);
                owner[at] = i;
                shift[at] = g * LANES;
            }
        }
        float[][] pairs = new float[count / 2][];
        for (int g = 0; g < pairs.length; g++) {
            pairs[g] = interleaved(dirT[2 * g], dirT[2 * g + 1], dim);
        }
        return new Groups(dim, dirT, pairs, owner, shift);
    }

    /** Two channel-major groups as one: {@code [x · 16 + lane]}, the first group's lanes first. */
    private static float[] interleaved(float[] a, float[] b, int dim) {
        float[] p = new float[dim * 2 * LANES];
        for (int x = 0; x < dim; x++) {
            System.arraycopy(a, x * LANES, p, x * 2 * LANES, LANES);
            System.arraycopy(b, x * LANES, p, x * 2 * LANES + LANES, LANES);
        }
        return p;
    }

    /**
     * Groups of eight directions of a family: channel-major directions, consecutive groups
     * interleaved in pairs, the function each group belongs to and the bit its first lane sets.
     */
    private record Groups(int dim, float[][] dirT, float[][] pairs, int[] owner, int[] shift) {
        /** Hashes rows {@code [0, m)} of {@code rows} into {@code out[·][at + row]}. */
        void hashRows(float[] rows, int m, int[][] out, int at) {
            int g = 0;
            for (; g + 1 < dirT.length; g += 2) {
                float[] pair = pairs[g / 2];
                int[] o0 = out[owner[g]];
                int[] o1 = out[owner[g + 1]];
                int r = 0;
                for (; r + 5 < m; r += 6) {
                    KERNELS.hashSixRows(rows, r, dim, pair, o0, shift[g], o1, shift[g + 1], at);
                }
                for (; r < m; r++) {
                    o0[at + r] |= KERNELS.hashOneRow(rows, r * dim, dim, dirT[g]) << shift[g];
                    o1[at + r] |= KERNELS.hashOneRow(rows, r * dim, dim, dirT[g + 1]) << shift[g + 1];
                }
            }
            if (g < dirT.length) {
                int[] o = out[owner[g]];
                int r = 0;
                for (; r + 7 < m; r += 8) {
                    KERNELS.hashEightRows(rows, r, dim, dirT[g], o, shift[g], at);
                }
                for (; r < m; r++) {
                    o[at + r] |= KERNELS.hashOneRow(rows, r * dim, dim, dirT[g]) << shift[g];
                }
            }
        }

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
