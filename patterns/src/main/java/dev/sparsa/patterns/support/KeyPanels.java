package dev.sparsa.patterns.support;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Key rows repacked for scoring one query against many keys with the Vector API: keys are grouped
 * in panels of {@code L} (the preferred float lane count) and stored channel-major inside a panel,
 * so one vector holds channel {@code x} of {@code L} consecutive keys. Each lane then accumulates
 * exactly as {@link Vectors#dot} does (four partial sums by channel modulo 4, multiply then add,
 * the tail into the first sum, combined as {@code (s0 + s1) + (s2 + s3)}), so every score is
 * <b>bitwise identical</b> to {@code Vectors.dot(q, row, k, key, d)}: vectorising changes the
 * speed, never a selection. Memory: {@code ceil(n / L) · L · d} floats.
 */
public final class KeyPanels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final float[] panels;
    private final int n;
    private final int d;

    private KeyPanels(float[] panels, int n, int d) {
        this.panels = panels;
        this.n = n;
        this.d = d;
    }

    /**
     * Packs the first {@code n} rows of {@code rows} (flat {@code [n · d]}).
     *
     * @throws IllegalArgumentException if {@code n} or {@code d} is negative or the array is too short
     */
    public static KeyPanels of(float[] rows, int n, int d) {
        if (n < 0 || d < 1 || rows == null || rows.length < (long) n * d) {
            throw new IllegalArgumentException("rows: need n >= 0, d >= 1 and n·d floats, got n=" + n + " d=" + d
                    + " length=" + (rows == null ? "null" : rows.length));
        }
        int groups = (n + L - 1) / L;
        float[] p = new float[groups * L * d];
        for (int key = 0; key < n; key++) {
            int base = (key / L) * L * d + key % L;
            int src = key * d;
            for (int x = 0; x < d; x++) {
                p[base + x * L] = rows[src + x];
            }
        }
        return new KeyPanels(p, n, d);
    }

    /**
     * Packs the rows of (batch, head) of a tensor, read row by row (no flat copy of the head first);
     * the same panels as {@code of(Vectors.rows(t, batch, head), seq, dim)}.
     */
    public static KeyPanels of(dev.sparsa.tensor.Tensor t, int batch, int head) {
        int n = t.seqLen();
        int d = t.dim();
        int groups = (n + L - 1) / L;
        float[] p = new float[groups * L * d];
        float[] row = new float[d];
        for (int key = 0; key < n; key++) {
            t.readRow(batch, head, key, row, 0);
            int base = (key / L) * L * d + key % L;
            for (int x = 0; x < d; x++) {
                p[base + x * L] = row[x];
            }
        }
        return new KeyPanels(p, n, d);
    }

    /** Keys packed. */
    public int size() {
        return n;
    }

    /**
     * {@code out[key] = Vectors.dot(q, row, rows, key, d)} for {@code key} in {@code [0, count)},
     * bitwise. {@code out} needs room for {@code count} rounded up to the lane count.
     *
     * @throws IllegalArgumentException if {@code count} exceeds the keys packed or {@code out} is too short
     */
    public void dots(float[] q, int row, int count, float[] out) {
        dots(q, row, 1, count, out, 0);
    }

    /**
     * The scores of {@code queries} consecutive query rows from {@code firstRow}: {@code out[j · stride
     * + key] = Vectors.dot(q, firstRow + j, rows, key, d)}, bitwise, for {@code key < count}. Each
     * panel is loaded once for all the queries (it stays in L1), so the loop runs at arithmetic speed
     * rather than at memory speed. {@code stride} must be at least {@code paddedLength(count)}.
     *
     * @throws IllegalArgumentException if {@code count} exceeds the keys packed or {@code out} is too short
     */
    public void dots(float[] q, int firstRow, int queries, int count, float[] out, int stride) {
        int padded = paddedLength(count);
        if (count < 0 || count > n || queries < 1 || (queries > 1 && stride < padded)
                || out.length < (long) (queries - 1) * stride + padded) {
            throw new IllegalArgumentException("count: " + count + " keys of " + n + " for " + queries
                    + " queries into out of length " + out.length + " with stride " + stride);
        }
        int groups = (count + L - 1) / L;
        for (int g = 0; g < groups; g++) {
            panel(q, firstRow, queries, g, out, stride);
        }
    }

    // one panel against every query: small and called often, so the JIT compiles it (with the vector
    // intrinsics) early instead of running a long first call in the interpreter's slow vector fallback
    private void panel(float[] q, int firstRow, int queries, int g, float[] out, int stride) {
        int base = g * L * d;
        int d4 = d & ~3;
        int j = 0;
        // two queries per pass: each loaded panel vector feeds eight independent sums
        for (; j + 1 < queries; j += 2) {
            int qa = (firstRow + j) * d;
            int qb = qa + d;
            FloatVector a0 = FloatVector.zero(S);
            FloatVector a1 = FloatVector.zero(S);
            FloatVector a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S);
            FloatVector b0 = FloatVector.zero(S);
            FloatVector b1 = FloatVector.zero(S);
            FloatVector b2 = FloatVector.zero(S);
            FloatVector b3 = FloatVector.zero(S);
            int x = 0;
            for (; x < d4; x += 4) {
                int at = base + x * L;
                FloatVector v0 = FloatVector.fromArray(S, panels, at);
                FloatVector v1 = FloatVector.fromArray(S, panels, at + L);
                FloatVector v2 = FloatVector.fromArray(S, panels, at + 2 * L);
                FloatVector v3 = FloatVector.fromArray(S, panels, at + 3 * L);
                a0 = a0.add(v0.mul(q[qa + x]));
                b0 = b0.add(v0.mul(q[qb + x]));
                a1 = a1.add(v1.mul(q[qa + x + 1]));
                b1 = b1.add(v1.mul(q[qb + x + 1]));
                a2 = a2.add(v2.mul(q[qa + x + 2]));
                b2 = b2.add(v2.mul(q[qb + x + 2]));
                a3 = a3.add(v3.mul(q[qa + x + 3]));
                b3 = b3.add(v3.mul(q[qb + x + 3]));
            }
            for (; x < d; x++) {
                FloatVector v = FloatVector.fromArray(S, panels, base + x * L);
                a0 = a0.add(v.mul(q[qa + x]));
                b0 = b0.add(v.mul(q[qb + x]));
            }
            a0.add(a1).add(a2.add(a3)).intoArray(out, j * stride + g * L);
            b0.add(b1).add(b2.add(b3)).intoArray(out, (j + 1) * stride + g * L);
        }
        for (; j < queries; j++) {
            int qi = (firstRow + j) * d;
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            FloatVector s2 = FloatVector.zero(S);
            FloatVector s3 = FloatVector.zero(S);
            int x = 0;
            for (; x < d4; x += 4) {
                int at = base + x * L;
                s0 = s0.add(FloatVector.fromArray(S, panels, at).mul(q[qi + x]));
                s1 = s1.add(FloatVector.fromArray(S, panels, at + L).mul(q[qi + x + 1]));
                s2 = s2.add(FloatVector.fromArray(S, panels, at + 2 * L).mul(q[qi + x + 2]));
                s3 = s3.add(FloatVector.fromArray(S, panels, at + 3 * L).mul(q[qi + x + 3]));
            }
            for (; x < d; x++) {
                s0 = s0.add(FloatVector.fromArray(S, panels, base + x * L).mul(q[qi + x]));
            }
            s0.add(s1).add(s2.add(s3)).intoArray(out, j * stride + g * L);
        }
    }

    /**
     * Sign hashes of every packed row against {@code bits} directions ({@code directions} flat
     * {@code [bits · d]}): bit {@code i} of {@code out[row]} is set when {@code Σ_x row[x] · dir_i[x] > 0},
     * the sum taken <b>sequentially</b> over {@code x} (one running float sum, multiply then add) in
     * every lane, so each hash is bitwise that of the plain scalar loop. Directions are handled four at
     * a time (four independent sums per panel) so the additions pipeline.
     *
     * @throws IllegalArgumentException if {@code bits} is outside [1, 31] or the directions are too short
     */
    public int[] signHashes(float[] directions, int bits) {
        if (bits < 1 || bits > 31 || directions == null || directions.length < (long) bits * d) {
            throw new IllegalArgumentException("directions: need bits in [1, 31] and bits·d floats, got bits=" + bits);
        }
        int[] out = new int[paddedLength(n)];
        int groups = (n + L - 1) / L;
        for (int g = 0; g < groups; g++) {
            signPanel(directions, bits, g, out);
        }
        return java.util.Arrays.copyOf(out, n);
    }

    private void signPanel(float[] dir, int bits, int g, int[] out) {
        int base = g * L * d;
        jdk.incubator.vector.IntVector h = jdk.incubator.vector.IntVector.zero(INTS);
        int i = 0;
        for (; i + 3 < bits; i += 4) {
            FloatVector a0 = FloatVector.zero(S);
            FloatVector a1 = FloatVector.zero(S);
            FloatVector a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S);
            int o0 = i * d;
            for (int x = 0; x < d; x++) {
                FloatVector v = FloatVector.fromArray(S, panels, base + x * L);
                a0 = a0.add(v.mul(dir[o0 + x]));
                a1 = a1.add(v.mul(dir[o0 + d + x]));
                a2 = a2.add(v.mul(dir[o0 + 2 * d + x]));
                a3 = a3.add(v.mul(dir[o0 + 3 * d + x]));
            }
            h = setBit(h, a0, i);
            h = setBit(h, a1, i + 1);
            h = setBit(h, a2, i + 2);
            h = setBit(h, a3, i + 3);
        }
        for (; i < bits; i++) {
            FloatVector a = FloatVector.zero(S);
            for (int x = 0; x < d; x++) {
                a = a.add(FloatVector.fromArray(S, panels, base + x * L).mul(dir[i * d + x]));
            }
            h = setBit(h, a, i);
        }
        h.intoArray(out, g * L);
    }

    private static jdk.incubator.vector.IntVector setBit(jdk.incubator.vector.IntVector h, FloatVector sum, int bit) {
        var positive = sum.compare(jdk.incubator.vector.VectorOperators.GT, 0f).cast(INTS);
        return h.lanewise(jdk.incubator.vector.VectorOperators.OR, jdk.incubator.vector.IntVector.broadcast(INTS, 1 << bit), positive);
    }

    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, S.vectorShape());

    /** {@code count} rounded up to a whole number of panels: the length {@link #dots} writes. */
    public static int paddedLength(int count) {
        return (count + L - 1) / L * L;
    }
}
