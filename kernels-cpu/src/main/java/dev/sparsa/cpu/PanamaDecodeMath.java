package dev.sparsa.cpu;

import dev.sparsa.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The decode arithmetic in the Vector API, loaded only by name (see {@link DecodeMathProvider}), in
 * the species {@link PanamaTileMath} chose.
 *
 * <p>Q·Kᵀ with keys along the lanes: for a pair of keys and four query vectors, eight accumulators
 * run over the head dimension (channels along the lanes); each key's accumulator is then folded
 * with its neighbour's by a two-vector shuffle that adds adjacent lanes ({@link #pair}), and the
 * folds of {@code L} keys are folded again, level by level, until one vector holds the {@code L}
 * keys' scores in key order. The folding tree is fixed, so a score's arithmetic never depends on
 * which keys share its vector, and no lane reduction of unspecified order is used. P·V broadcasts a
 * probability per key into four query vectors × two column vectors of accumulators. bf16 rows are
 * widened in registers (a shift); f16 rows arrive widened by the caller.
 */
final class PanamaDecodeMath implements DecodeMath {
    private static final VectorSpecies<Float> F = PanamaTileMath.F;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class,
            VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 2)));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Lanes {@code 2i} (then {@code 2i + 1}) of a, then of b: adjacent-lane sums of a pair. */
    private static final VectorShuffle<Float> EVEN = pairShuffle(0);
    private static final VectorShuffle<Float> ODD = pairShuffle(1);
    /** Floats per query vector of folding space: {@code L/2} vectors of {@code L}. */
    private static final int HALF = L * L / 2;
    private static final ThreadLocal<float[]> WORK = ThreadLocal.withInitial(() -> new float[4 * HALF + L]);

    PanamaDecodeMath() {
        if (L < 4) {
            throw new UnsupportedOperationException("the preferred f32 vector has only " + L + " lane(s)");
        }
        if (S.length() != L) {
            throw new UnsupportedOperationException("no " + L + "-lane short vector for bf16 widening");
        }
    }

    private static VectorShuffle<Float> pairShuffle(int parity) {
        int n = F.length();
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) {
            idx[i] = i < n / 2 ? 2 * i + parity : n + 2 * (i - n / 2) + parity;
        }
        return VectorShuffle.fromArray(F, idx, 0);
    }

    @Override
    public KernelFlavour flavour() {
        return KernelFlavour.VECTOR;
    }

    // ---------------------------------------------------------------- loads

    private static FloatVector row(MemorySegment seg, long off, boolean bf16, int d) {
        if (!bf16) {
            return FloatVector.fromMemorySegment(F, seg, off + 4L * d, LE);
        }
        ShortVector sv = ShortVector.fromMemorySegment(S, seg, off + 2L * d, LE);
        return ((IntVector) sv.convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    private static FloatVector rowTail(MemorySegment seg, long off, boolean bf16, int d, VectorMask<Float> fm,
                                       VectorMask<Short> sm) {
        if (!bf16) {
            return FloatVector.fromMemorySegment(F, seg, off + 4L * d, LE, fm);
        }
        ShortVector sv = ShortVector.fromMemorySegment(S, seg, off + 2L * d, LE, sm);
        return ((IntVector) sv.convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /** Adjacent-lane sums of a (low half) and b (high half). */
    private static FloatVector pair(FloatVector a, FloatVector b) {
        return a.rearrange(EVEN, b).add(a.rearrange(ODD, b));
    }

    /** Folds the {@code L/2} pair vectors at {@code work[base ..]} into one vector of {@code L} sums, in key order. */
    private static FloatVector fold(float[] work, int base) {
        for (int m = L / 2; m > 1; m >>= 1) {
            for (int i = 0; i < m / 2; i++) {
                pair(FloatVector.fromArray(F, work, base + 2 * i * L), FloatVector.fromArray(F, work, base + (2 * i + 1) * L))
                        .intoArray(work, base + i * L);
            }
        }
        return FloatVector.fromArray(F, work, base);
    }

    // ---------------------------------------------------------------- Q·Kᵀ

    @Override
    public void scores(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, DType dtype, int n,
                       float[] s, int ldS) {
        boolean bf = dtype == DType.BF16;
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            int x = 0;
            for (; x + 4 <= nq; x += 4) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    scores4x2(q, x * ldQ, ldQ, dFull, dim, keys, oa, ob, bf, fm, sm, work, (kp >> 1) * L);
                }
                for (int i = 0; i < 4; i++) {
                    fold(work, i * HALF).intoArray(s, (x + i) * ldS + j0);
                }
            }
            for (; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    int qb = x * ldQ;
                    FloatVector a = FloatVector.zero(F);
                    FloatVector b = FloatVector.zero(F);
                    int d = 0;
                    // one accumulator per key, as in the four-vector kernel: the same arithmetic
                    for (; d < dFull; d += L) {
                        FloatVector v0 = FloatVector.fromArray(F, q, qb + d);
                        a = v0.fma(row(keys, oa, bf, d), a);
                        b = v0.fma(row(keys, ob, bf, d), b);
                    }
                    if (d < dim) {
                        FloatVector v0 = FloatVector.fromArray(F, q, qb + d);
                        a = v0.fma(rowTail(keys, oa, bf, d, fm, sm), a);
                        b = v0.fma(rowTail(keys, ob, bf, d, fm, sm), b);
                    }
                    pair(a, b).intoArray(work, (kp >> 1) * L);
                }
                fold(work, 0).intoArray(s, x * ldS + j0);
            }
        }
    }

    /** Four query vectors × two keys over the head dimension, folded pairwise into {@code work}. */
    private static void scores4x2(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                  boolean bf, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector b2 = a0;
        FloatVector b3 = a0;
        int q1 = q0 + ldQ;
        int q2 = q1 + ldQ;
        int q3 = q2 + ldQ;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector ka = row(keys, oa, bf, d);
            FloatVector kb = row(keys, ob, bf, d);
            FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
            FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
            FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
            FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
            a0 = v0.fma(ka, a0);
            b0 = v0.fma(kb, b0);
            a1 = v1.fma(ka, a1);
            b1 = v1.fma(kb, b1);
            a2 = v2.fma(ka, a2);
            b2 = v2.fma(kb, b2);
            a3 = v3.fma(ka, a3);
            b3 = v3.fma(kb, b3);
        }
        if (d < dim) {
            FloatVector ka = rowTail(keys, oa, bf, d, fm, sm);
            FloatVector kb = rowTail(keys, ob, bf, d, fm, sm);
            FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
            FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
            FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
            FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
            a0 = v0.fma(ka, a0);
            b0 = v0.fma(kb, b0);
            a1 = v1.fma(ka, a1);
            b1 = v1.fma(kb, b1);
            a2 = v2.fma(ka, a2);
            b2 = v2.fma(kb, b2);
            a3 = v3.fma(ka, a3);
            b3 = v3.fma(kb, b3);
        }
        pair(a0, b0).intoArray(work, at);
        pair(a1, b1).intoArray(work, HALF + at);
        pair(a2, b2).intoArray(work, 2 * HALF + at);
        pair(a3, b3).intoArray(work, 3 * HALF + at);
    }

    // ---------------------------------------------------------------- Quest bounds

    @Override
    public void questBounds(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff, long[] maxOff,
                            DType dtype, int n, float[] out, int ldS) {
        boolean bf = dtype == DType.BF16;
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            for (int x = 0; x < nq; x++) {
                int qb = x * ldQ;
                for (int kp = 0; kp < L; kp += 2) {
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    FloatVector a = FloatVector.zero(F);
                    FloatVector b = FloatVector.zero(F);
                    for (int d = 0; d < dim; d += L) {
                        FloatVector v = FloatVector.fromArray(F, q, qb + d);
                        boolean full = d < dFull;
                        FloatVector mnA = full ? row(bounds, minOff[ja], bf, d) : rowTail(bounds, minOff[ja], bf, d, fm, sm);
                        FloatVector mxA = full ? row(bounds, maxOff[ja], bf, d) : rowTail(bounds, maxOff[ja], bf, d, fm, sm);
                        FloatVector mnB = full ? row(bounds, minOff[jb], bf, d) : rowTail(bounds, minOff[jb], bf, d, fm, sm);
                        FloatVector mxB = full ? row(bounds, maxOff[jb], bf, d) : rowTail(bounds, maxOff[jb], bf, d, fm, sm);
                        a = a.add(v.mul(mnA).max(v.mul(mxA)));
                        b = b.add(v.mul(mnB).max(v.mul(mxB)));
                    }
                    pair(a, b).intoArray(work, (kp >> 1) * L);
                }
                fold(work, 0).intoArray(out, x * ldS + j0);
            }
        }
    }

    // ---------------------------------------------------------------- softmax

    @Override
    public void softmax(float[] s, int ldS, int nq, int n, float[] m, float[] l, float[] alpha) {
        int nPad = (n + L - 1) / L * L;
        float[] work = WORK.get();
        FloatVector ninf = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int x = 0; x < nq; x++) {
            int base = x * ldS;
            for (int j = n; j < nPad; j++) {
                s[base + j] = Float.NEGATIVE_INFINITY;
            }
            FloatVector mv = ninf;
            for (int j = 0; j < nPad; j += L) {
                FloatVector v = FloatVector.fromArray(F, s, base + j);
                mv = mv.blend(v, v.compare(VectorOperators.GT, mv));
            }
            float mx = Math.max(m[x], mv.reduceLanes(VectorOperators.MAX));
            float safe = mx == Float.NEGATIVE_INFINITY ? 0f : mx;
            FloatVector sv = FloatVector.broadcast(F, safe);
            FloatVector sum = FloatVector.zero(F);
            for (int j = 0; j < nPad; j += L) {
                FloatVector e = PanamaTileMath.exp(FloatVector.fromArray(F, s, base + j).sub(sv));
                e.intoArray(s, base + j);
                sum = sum.add(e);
            }
            // lanes summed in lane order: no reduction of unspecified order
            sum.intoArray(work, 4 * HALF);
            float total = 0f;
            for (int i = 0; i < L; i++) {
                total += work[4 * HALF + i];
            }
            float a = (float) Math.exp(m[x] - safe);
            l[x] = l[x] * a + total;
            m[x] = mx;
            alpha[x] = a;
        }
    }

    // ---------------------------------------------------------------- P·V

    @Override
    public void accumulate(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, DType dtype, int dimV,
                           float[] o, int ldO, float[] alpha) {
        boolean bf = dtype == DType.BF16;
        int x = 0;
        for (; x + 4 <= nq; x += 4) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv4x2(p, ldS, x, n, values, vOff, bf, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv4x1(p, ldS, x, n, values, vOff, bf, c, dimV, o, ldO, alpha);
            }
        }
        for (; x < nq; x++) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv1x2(p, ldS, x, n, values, vOff, bf, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv1x1(p, ldS, x, n, values, vOff, bf, c, dimV, o, ldO, alpha);
            }
        }
    }

    private static void pv4x2(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, boolean bf, int c,
                              float[] o, int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector c00 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c01 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        FloatVector c10 = FloatVector.fromArray(F, o, o1).mul(alpha[x + 1]);
        FloatVector c11 = FloatVector.fromArray(F, o, o1 + L).mul(alpha[x + 1]);
        FloatVector c20 = FloatVector.fromArray(F, o, o2).mul(alpha[x + 2]);
        FloatVector c21 = FloatVector.fromArray(F, o, o2 + L).mul(alpha[x + 2]);
        FloatVector c30 = FloatVector.fromArray(F, o, o3).mul(alpha[x + 3]);
        FloatVector c31 = FloatVector.fromArray(F, o, o3 + L).mul(alpha[x + 3]);
        int p0 = x * ldS;
        int p1 = p0 + ldS;
        int p2 = p1 + ldS;
        int p3 = p2 + ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector v0 = row(values, off, bf, c);
            FloatVector v1 = row(values, off, bf, c + L);
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c00 = w.fma(v0, c00);
            c01 = w.fma(v1, c01);
            w = FloatVector.broadcast(F, p[p1 + j]);
            c10 = w.fma(v0, c10);
            c11 = w.fma(v1, c11);
            w = FloatVector.broadcast(F, p[p2 + j]);
            c20 = w.fma(v0, c20);
            c21 = w.fma(v1, c21);
            w = FloatVector.broadcast(F, p[p3 + j]);
            c30 = w.fma(v0, c30);
            c31 = w.fma(v1, c31);
        }
        c00.intoArray(o, o0);
        c01.intoArray(o, o0 + L);
        c10.intoArray(o, o1);
        c11.intoArray(o, o1 + L);
        c20.intoArray(o, o2);
        c21.intoArray(o, o2 + L);
        c30.intoArray(o, o3);
        c31.intoArray(o, o3 + L);
    }

    private static void pv4x1(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, boolean bf, int c,
                              int dimV, float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o1).mul(alpha[x + 1]);
        FloatVector c2 = FloatVector.fromArray(F, o, o2).mul(alpha[x + 2]);
        FloatVector c3 = FloatVector.fromArray(F, o, o3).mul(alpha[x + 3]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            FloatVector v = full ? row(values, vOff[j], bf, c) : rowTail(values, vOff[j], bf, c, fm, sm);
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
            c1 = FloatVector.broadcast(F, p[p0 + ldS + j]).fma(v, c1);
            c2 = FloatVector.broadcast(F, p[p0 + 2 * ldS + j]).fma(v, c2);
            c3 = FloatVector.broadcast(F, p[p0 + 3 * ldS + j]).fma(v, c3);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o1);
        c2.intoArray(o, o2);
        c3.intoArray(o, o3);
    }

    private static void pv1x2(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, boolean bf, int c,
                              float[] o, int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma(row(values, off, bf, c), c0);
            c1 = w.fma(row(values, off, bf, c + L), c1);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }

    private static void pv1x1(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, boolean bf, int c,
                              int dimV, float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            FloatVector v = full ? row(values, vOff[j], bf, c) : rowTail(values, vOff[j], bf, c, fm, sm);
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }
        c0.intoArray(o, o0);
    }
}
