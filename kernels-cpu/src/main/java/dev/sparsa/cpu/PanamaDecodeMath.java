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
 * run over the head dimension (channels along the lanes); each key's accumulator is folded with its
 * neighbour's (lanes added to their swapped partners, the two results interleaved by a blend), and
 * the folds of {@code L} keys are folded again, level by level ({@link #fold}), until one vector
 * holds the {@code L} keys' scores in key order. The folding tree is fixed, so a score's arithmetic never depends on which keys share
 * its vector, and no lane reduction of unspecified order is used. P·V broadcasts a probability per
 * key into four query vectors × two column vectors of accumulators.
 *
 * <p>Every kernel exists for f32 rows and for bf16 rows (widened in registers by a shift), read from a
 * native segment or from the Java array behind a heap segment (array loads skip the segment's
 * checks and run about twice as fast), with the loads written out in the loop bodies: C2 does not inline a helper that returns a vector once a
 * method is large, and a vector that crosses a call is boxed on the heap. f16 rows arrive widened by
 * the caller.
 */
final class PanamaDecodeMath implements DecodeMath {
    private static final VectorSpecies<Float> F = PanamaTileMath.F;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class,
            VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 2)));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /**
     * Folding a pair (u, w) at distance d: {@code u + swap_d(u)} in the lanes whose bit d is clear,
     * {@code w + swap_d(w)} in the others. Level 1 (d = 1) pairs two keys' accumulators; levels d = 2,
     * 4, … pair the results, and after log2(L) levels lane l holds key l's sum. One-lane shuffles and
     * a blend: cheaper than two-vector shuffles.
     */
    private static final VectorShuffle<Float> SW1 = swap(1);
    private static final VectorShuffle<Float> SW2 = swap(2);
    private static final VectorShuffle<Float> SW4 = swap(4);
    private static final VectorShuffle<Float> SW8 = swap(8);
    private static final VectorMask<Float> M1 = lanesWithBit(1);
    private static final VectorMask<Float> M2 = lanesWithBit(2);
    private static final VectorMask<Float> M4 = lanesWithBit(4);
    private static final VectorMask<Float> M8 = lanesWithBit(8);
    /** Floats per query vector of folding space: {@code L/2} vectors of {@code L}. */
    private static final int HALF = L * L / 2;
    /** Floats per 64-byte line (the touch passes read one vector per line). */
    private static final int LINE = Math.max(L, 16);
    private static final ThreadLocal<float[]> SINK = ThreadLocal.withInitial(() -> new float[L]);
    private static final ThreadLocal<float[]> WORK = ThreadLocal.withInitial(() -> new float[4 * HALF + L]);

    PanamaDecodeMath() {
        if (L < 4) {
            throw new UnsupportedOperationException("the preferred f32 vector has only " + L + " lane(s)");
        }
        if (S.length() != L) {
            throw new UnsupportedOperationException("no " + L + "-lane short vector for bf16 widening");
        }
    }

    /** Lane i takes lane {@code i ^ d} (the identity where d is beyond the vector). */
    private static VectorShuffle<Float> swap(int d) {
        int n = F.length();
        return VectorShuffle.fromOp(F, i -> d < n ? i ^ d : i);
    }

    private static VectorMask<Float> lanesWithBit(int d) {
        boolean[] bits = new boolean[F.length()];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (i & d) != 0;
        }
        return VectorMask.fromArray(F, bits, 0);
    }

    @Override
    public KernelFlavour flavour() {
        return KernelFlavour.VECTOR;
    }

    @Override
    public void scores(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, DType dtype, int n,
                       float[] s, int ldS) {
        Object heap = keys.heapBase().orElse(null);
        if (dtype == DType.BF16) {
            if (heap instanceof short[] a) {
                scoresBf16A(q, ldQ, nq, dim, a, (int) (keys.address() >>> 1), kOff, n, s, ldS);
            } else {
                scoresBf16(q, ldQ, nq, dim, keys, kOff, n, s, ldS);
            }
        } else if (heap instanceof float[] a) {
            scoresF32A(q, ldQ, nq, dim, a, (int) (keys.address() >>> 2), kOff, n, s, ldS);
        } else {
            scoresF32(q, ldQ, nq, dim, keys, kOff, n, s, ldS);
        }
    }

    @Override
    public void questBounds(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff, long[] maxOff,
                            DType dtype, int n, float[] out, int ldS) {
        Object heap = bounds.heapBase().orElse(null);
        if (dtype == DType.BF16) {
            if (heap instanceof short[] a) {
                boundsBf16A(q, ldQ, nq, dim, a, (int) (bounds.address() >>> 1), minOff, maxOff, n, out, ldS);
            } else {
                boundsBf16(q, ldQ, nq, dim, bounds, minOff, maxOff, n, out, ldS);
            }
        } else if (heap instanceof float[] a) {
            boundsF32A(q, ldQ, nq, dim, a, (int) (bounds.address() >>> 2), minOff, maxOff, n, out, ldS);
        } else {
            boundsF32(q, ldQ, nq, dim, bounds, minOff, maxOff, n, out, ldS);
        }
    }

    @Override
    public void accumulate(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, DType dtype, int dimV,
                           float[] o, int ldO, float[] alpha) {
        Object heap = values.heapBase().orElse(null);
        if (dtype == DType.BF16) {
            if (heap instanceof short[] a) {
                accumulateBf16A(p, ldS, nq, n, a, (int) (values.address() >>> 1), vOff, dimV, o, ldO, alpha);
            } else {
                accumulateBf16(p, ldS, nq, n, values, vOff, dimV, o, ldO, alpha);
            }
        } else if (heap instanceof float[] a) {
            accumulateF32A(p, ldS, nq, n, a, (int) (values.address() >>> 2), vOff, dimV, o, ldO, alpha);
        } else {
            accumulateF32(p, ldS, nq, n, values, vOff, dimV, o, ldO, alpha);
        }
    }

    /**
     * Folds the {@code L/2} level-1 vectors at {@code work[base ..]} into one vector of {@code L} sums in
     * key order, stored at {@code dst[at ..]}.
     */
    private static void fold(float[] work, int base, float[] dst, int at) {
        int m = L / 2;
        if (m >= 2) {
            foldLevel(work, base, m, SW2, M2);
            m >>= 1;
        }
        if (m >= 2) {
            foldLevel(work, base, m, SW4, M4);
            m >>= 1;
        }
        if (m >= 2) {
            foldLevel(work, base, m, SW8, M8);
        }
        FloatVector.fromArray(F, work, base).intoArray(dst, at);
    }

    private static void foldLevel(float[] work, int base, int m, VectorShuffle<Float> sw, VectorMask<Float> mask) {
        for (int i = 0; i < m / 2; i++) {
            FloatVector u = FloatVector.fromArray(F, work, base + 2 * i * L);
            FloatVector w = FloatVector.fromArray(F, work, base + (2 * i + 1) * L);
            u.add(u.rearrange(sw)).blend(w.add(w.rearrange(sw)), mask).intoArray(work, base + i * L);
        }
    }

    @Override
    public void softmax(float[] s, int ldS, int nq, int n, float[] m, float[] l, float[] alpha) {
        int nPad = (n + L - 1) / L * L;
        float[] work = WORK.get();
        for (int x = 0; x < nq; x++) {
            int base = x * ldS;
            for (int j = n; j < nPad; j++) {
                s[base + j] = Float.NEGATIVE_INFINITY;
            }
            FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (int j = 0; j < nPad; j += L) {
                FloatVector v = FloatVector.fromArray(F, s, base + j);
                mv = mv.blend(v, v.compare(VectorOperators.GT, mv));
            }
            float mx = Math.max(m[x], mv.reduceLanes(VectorOperators.MAX));
            float safe = mx == Float.NEGATIVE_INFINITY ? 0f : mx;
            FloatVector sv = FloatVector.broadcast(F, safe);
            FloatVector sum = FloatVector.zero(F);
            for (int j = 0; j < nPad; j += L) {
                // e^x for x ≤ 0 as PanamaTileMath.exp, written out here so that no vector crosses a call
                FloatVector xv = FloatVector.fromArray(F, s, base + j).sub(sv);
                VectorMask<Float> tiny = xv.compare(VectorOperators.LT, EXP_MIN);
                FloatVector xc = xv.blend(EXP_MIN, tiny);
                FloatVector t = xc.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUNDER));
                FloatVector k = t.sub(ROUNDER);
                FloatVector f = k.fma(FloatVector.broadcast(F, -LN2_HI), xc);
                f = k.fma(FloatVector.broadcast(F, -LN2_LO), f);
                FloatVector pz = f.fma(FloatVector.broadcast(F, P5), FloatVector.broadcast(F, P4));
                pz = pz.fma(f, FloatVector.broadcast(F, P3));
                pz = pz.fma(f, FloatVector.broadcast(F, P2));
                pz = pz.fma(f, FloatVector.broadcast(F, P1));
                pz = pz.fma(f, FloatVector.broadcast(F, P0));
                pz = pz.mul(f.mul(f)).add(f).add(1f);
                IntVector bits = t.reinterpretAsInts().sub(ROUNDER_BITS_MINUS_BIAS).lanewise(VectorOperators.LSHL, 23);
                FloatVector e = pz.mul(bits.reinterpretAsFloats()).blend(0f, tiny);
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

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float ROUNDER = 12582912f;
    private static final float EXP_MIN = -87.33654f;
    private static final int ROUNDER_BITS_MINUS_BIAS = Float.floatToRawIntBits(ROUNDER) - 127;
    private static final float P5 = 1.9875691500e-4f;
    private static final float P4 = 1.3981999507e-3f;
    private static final float P3 = 8.3334519073e-3f;
    private static final float P2 = 4.1665795894e-2f;
    private static final float P1 = 1.6666665459e-1f;
    private static final float P0 = 5.0000001201e-1f;

    // ---------------------------------------------------------------- f32 rows in a segment

    private static void scoresF32(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, int n, float[] s,
                                 int ldS) {
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
                    dot4x2F32(q, x * ldQ, ldQ, dFull, dim, keys, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                for (int i = 0; i < 4; i++) {
                    fold(work, i * HALF, s, (x + i) * ldS + j0);
                }
            }
            for (; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot1x2F32(q, x * ldQ, dFull, dim, keys, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                fold(work, 0, s, x * ldS + j0);
            }
        }
    }

    /** Four query vectors × two keys over the head dimension, folded pairwise into {@code work}. */
    private static void dot4x2F32(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
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
            FloatVector ka = FloatVector.fromMemorySegment(F, keys, oa + 4L * (d), LE);
            FloatVector kb = FloatVector.fromMemorySegment(F, keys, ob + 4L * (d), LE);
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
            FloatVector ka = FloatVector.fromMemorySegment(F, keys, oa + 4L * (d), LE, fm);
            FloatVector kb = FloatVector.fromMemorySegment(F, keys, ob + 4L * (d), LE, fm);
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
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }

    /** One query vector × two keys, with the same arithmetic as {@link #dot4x2F32}. */
    private static void dot1x2F32(float[] q, int q0, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(FloatVector.fromMemorySegment(F, keys, oa + 4L * (d), LE), a);
            b = v.fma(FloatVector.fromMemorySegment(F, keys, ob + 4L * (d), LE), b);
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(FloatVector.fromMemorySegment(F, keys, oa + 4L * (d), LE, fm), a);
            b = v.fma(FloatVector.fromMemorySegment(F, keys, ob + 4L * (d), LE, fm), b);
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void boundsF32(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff,
                                 long[] maxOff, int n, float[] out, int ldS) {
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            for (int x = 0; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    bound1x2F32(q, x * ldQ, dFull, dim, bounds, minOff[ja], maxOff[ja], minOff[jb], maxOff[jb], fm, sm,
                            work, (kp >> 1) * L);
                }
                fold(work, 0, out, x * ldS + j0);
            }
        }
    }

    private static void bound1x2F32(float[] q, int q0, int dFull, int dim, MemorySegment bounds, long mnA, long mxA,
                                   long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(FloatVector.fromMemorySegment(F, bounds, mnA + 4L * (d), LE)).max(v.mul(FloatVector.fromMemorySegment(F, bounds, mxA + 4L * (d), LE))));
            b = b.add(v.mul(FloatVector.fromMemorySegment(F, bounds, mnB + 4L * (d), LE)).max(v.mul(FloatVector.fromMemorySegment(F, bounds, mxB + 4L * (d), LE))));
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(FloatVector.fromMemorySegment(F, bounds, mnA + 4L * (d), LE, fm)).max(v.mul(FloatVector.fromMemorySegment(F, bounds, mxA + 4L * (d), LE, fm))));
            b = b.add(v.mul(FloatVector.fromMemorySegment(F, bounds, mnB + 4L * (d), LE, fm)).max(v.mul(FloatVector.fromMemorySegment(F, bounds, mxB + 4L * (d), LE, fm))));
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void accumulateF32(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, int dimV,
                                     float[] o, int ldO, float[] alpha) {
        touchF32(values, vOff, n, dimV);
        int x = 0;
        for (; x + 4 <= nq; x += 4) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv4x2F32(p, ldS, x, n, values, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv4x1F32(p, ldS, x, n, values, vOff, c, dimV, o, ldO, alpha);
            }
        }
        for (; x < nq; x++) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv1x2F32(p, ldS, x, n, values, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv1x1F32(p, ldS, x, n, values, vOff, c, dimV, o, ldO, alpha);
            }
        }
    }

    /**
     * Reads the block's value rows once, row after row, before the column passes below read each row in
     * column slices: the lines then arrive in sequence (what the hardware prefetcher follows) rather
     * than one slice of every row at a time.
     */
    private static void touchF32(MemorySegment values, long[] vOff, int n, int dimV) {
        int dFull = dimV - dimV % L;
        FloatVector t = FloatVector.zero(F);
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            for (int c = 0; c < dFull; c += LINE) {
                t = t.add(FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE));
            }
        }
        t.intoArray(SINK.get(), 0);
    }

    private static void pv4x2F32(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
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
            FloatVector v0 = FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE);
            FloatVector v1 = FloatVector.fromMemorySegment(F, values, off + 4L * (c + L), LE);
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

    private static void pv4x1F32(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
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
            long off = vOff[j];
            FloatVector v = full ? FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE) : FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE, fm);
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

    private static void pv1x2F32(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma(FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE), c0);
            c1 = w.fma(FloatVector.fromMemorySegment(F, values, off + 4L * (c + L), LE), c1);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }

    private static void pv1x1F32(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector v = full ? FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE) : FloatVector.fromMemorySegment(F, values, off + 4L * (c), LE, fm);
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }
        c0.intoArray(o, o0);
    }

    // ---------------------------------------------------------------- bf16 rows in a segment

    private static void scoresBf16(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, int n, float[] s,
                                 int ldS) {
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
                    dot4x2Bf16(q, x * ldQ, ldQ, dFull, dim, keys, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                for (int i = 0; i < 4; i++) {
                    fold(work, i * HALF, s, (x + i) * ldS + j0);
                }
            }
            for (; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot1x2Bf16(q, x * ldQ, dFull, dim, keys, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                fold(work, 0, s, x * ldS + j0);
            }
        }
    }

    /** Four query vectors × two keys over the head dimension, folded pairwise into {@code work}. */
    private static void dot4x2Bf16(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
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
            FloatVector ka = ((IntVector) ShortVector.fromMemorySegment(S, keys, oa + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector kb = ((IntVector) ShortVector.fromMemorySegment(S, keys, ob + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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
            FloatVector ka = ((IntVector) ShortVector.fromMemorySegment(S, keys, oa + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector kb = ((IntVector) ShortVector.fromMemorySegment(S, keys, ob + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }

    /** One query vector × two keys, with the same arithmetic as {@link #dot4x2Bf16}. */
    private static void dot1x2Bf16(float[] q, int q0, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(((IntVector) ShortVector.fromMemorySegment(S, keys, oa + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a);
            b = v.fma(((IntVector) ShortVector.fromMemorySegment(S, keys, ob + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), b);
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(((IntVector) ShortVector.fromMemorySegment(S, keys, oa + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a);
            b = v.fma(((IntVector) ShortVector.fromMemorySegment(S, keys, ob + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), b);
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void boundsBf16(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff,
                                 long[] maxOff, int n, float[] out, int ldS) {
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            for (int x = 0; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    bound1x2Bf16(q, x * ldQ, dFull, dim, bounds, minOff[ja], maxOff[ja], minOff[jb], maxOff[jb], fm, sm,
                            work, (kp >> 1) * L);
                }
                fold(work, 0, out, x * ldS + j0);
            }
        }
    }

    private static void bound1x2Bf16(float[] q, int q0, int dFull, int dim, MemorySegment bounds, long mnA, long mxA,
                                   long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mnA + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mxA + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
            b = b.add(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mnB + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mxB + 2L * (d), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mnA + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mxA + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
            b = b.add(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mnB + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromMemorySegment(S, bounds, mxB + 2L * (d), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void accumulateBf16(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, int dimV,
                                     float[] o, int ldO, float[] alpha) {
        touchBf16(values, vOff, n, dimV);
        int x = 0;
        for (; x + 4 <= nq; x += 4) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv4x2Bf16(p, ldS, x, n, values, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv4x1Bf16(p, ldS, x, n, values, vOff, c, dimV, o, ldO, alpha);
            }
        }
        for (; x < nq; x++) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv1x2Bf16(p, ldS, x, n, values, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv1x1Bf16(p, ldS, x, n, values, vOff, c, dimV, o, ldO, alpha);
            }
        }
    }

    /**
     * Reads the block's value rows once, row after row, before the column passes below read each row in
     * column slices: the lines then arrive in sequence (what the hardware prefetcher follows) rather
     * than one slice of every row at a time.
     */
    private static void touchBf16(MemorySegment values, long[] vOff, int n, int dimV) {
        int dFull = dimV - dimV % L;
        FloatVector t = FloatVector.zero(F);
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            for (int c = 0; c < dFull; c += LINE) {
                t = t.add(((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats());
            }
        }
        t.intoArray(SINK.get(), 0);
    }

    private static void pv4x2Bf16(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
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
            FloatVector v0 = ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector v1 = ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c + L), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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

    private static void pv4x1Bf16(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
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
            long off = vOff[j];
            FloatVector v = full ? ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats() : ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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

    private static void pv1x2Bf16(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma(((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c0);
            c1 = w.fma(((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c + L), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c1);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }

    private static void pv1x1Bf16(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector v = full ? ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats() : ((IntVector) ShortVector.fromMemorySegment(S, values, off + 2L * (c), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }
        c0.intoArray(o, o0);
    }

    // ---------------------------------------------------------------- f32 rows in a float[]

    private static void scoresF32A(float[] q, int ldQ, int nq, int dim, float[] keys, int keysBase, long[] kOff, int n, float[] s,
                                 int ldS) {
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
                    dot4x2F32A(q, x * ldQ, ldQ, dFull, dim, keys, keysBase, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                for (int i = 0; i < 4; i++) {
                    fold(work, i * HALF, s, (x + i) * ldS + j0);
                }
            }
            for (; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot1x2F32A(q, x * ldQ, dFull, dim, keys, keysBase, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                fold(work, 0, s, x * ldS + j0);
            }
        }
    }

    /** Four query vectors × two keys over the head dimension, folded pairwise into {@code work}. */
    private static void dot4x2F32A(float[] q, int q0, int ldQ, int dFull, int dim, float[] keys, int keysBase, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
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
            FloatVector ka = FloatVector.fromArray(F, keys, keysBase + (int) (oa >>> 2) + (d));
            FloatVector kb = FloatVector.fromArray(F, keys, keysBase + (int) (ob >>> 2) + (d));
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
            FloatVector ka = FloatVector.fromArray(F, keys, keysBase + (int) (oa >>> 2) + (d), fm);
            FloatVector kb = FloatVector.fromArray(F, keys, keysBase + (int) (ob >>> 2) + (d), fm);
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
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }

    /** One query vector × two keys, with the same arithmetic as {@link #dot4x2F32A}. */
    private static void dot1x2F32A(float[] q, int q0, int dFull, int dim, float[] keys, int keysBase, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(FloatVector.fromArray(F, keys, keysBase + (int) (oa >>> 2) + (d)), a);
            b = v.fma(FloatVector.fromArray(F, keys, keysBase + (int) (ob >>> 2) + (d)), b);
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(FloatVector.fromArray(F, keys, keysBase + (int) (oa >>> 2) + (d), fm), a);
            b = v.fma(FloatVector.fromArray(F, keys, keysBase + (int) (ob >>> 2) + (d), fm), b);
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void boundsF32A(float[] q, int ldQ, int nq, int dim, float[] bounds, int boundsBase, long[] minOff,
                                 long[] maxOff, int n, float[] out, int ldS) {
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            for (int x = 0; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    bound1x2F32A(q, x * ldQ, dFull, dim, bounds, boundsBase, minOff[ja], maxOff[ja], minOff[jb], maxOff[jb], fm, sm,
                            work, (kp >> 1) * L);
                }
                fold(work, 0, out, x * ldS + j0);
            }
        }
    }

    private static void bound1x2F32A(float[] q, int q0, int dFull, int dim, float[] bounds, int boundsBase, long mnA, long mxA,
                                   long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mnA >>> 2) + (d))).max(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mxA >>> 2) + (d)))));
            b = b.add(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mnB >>> 2) + (d))).max(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mxB >>> 2) + (d)))));
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mnA >>> 2) + (d), fm)).max(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mxA >>> 2) + (d), fm))));
            b = b.add(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mnB >>> 2) + (d), fm)).max(v.mul(FloatVector.fromArray(F, bounds, boundsBase + (int) (mxB >>> 2) + (d), fm))));
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void accumulateF32A(float[] p, int ldS, int nq, int n, float[] values, int valuesBase, long[] vOff, int dimV,
                                     float[] o, int ldO, float[] alpha) {
        touchF32A(values, valuesBase, vOff, n, dimV);
        int x = 0;
        for (; x + 4 <= nq; x += 4) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv4x2F32A(p, ldS, x, n, values, valuesBase, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv4x1F32A(p, ldS, x, n, values, valuesBase, vOff, c, dimV, o, ldO, alpha);
            }
        }
        for (; x < nq; x++) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv1x2F32A(p, ldS, x, n, values, valuesBase, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv1x1F32A(p, ldS, x, n, values, valuesBase, vOff, c, dimV, o, ldO, alpha);
            }
        }
    }

    /**
     * Reads the block's value rows once, row after row, before the column passes below read each row in
     * column slices: the lines then arrive in sequence (what the hardware prefetcher follows) rather
     * than one slice of every row at a time.
     */
    private static void touchF32A(float[] values, int valuesBase, long[] vOff, int n, int dimV) {
        int dFull = dimV - dimV % L;
        FloatVector t = FloatVector.zero(F);
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            for (int c = 0; c < dFull; c += LINE) {
                t = t.add(FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c)));
            }
        }
        t.intoArray(SINK.get(), 0);
    }

    private static void pv4x2F32A(float[] p, int ldS, int x, int n, float[] values, int valuesBase, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
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
            FloatVector v0 = FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c));
            FloatVector v1 = FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c + L));
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

    private static void pv4x1F32A(float[] p, int ldS, int x, int n, float[] values, int valuesBase, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
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
            long off = vOff[j];
            FloatVector v = full ? FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c)) : FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c), fm);
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

    private static void pv1x2F32A(float[] p, int ldS, int x, int n, float[] values, int valuesBase, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma(FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c)), c0);
            c1 = w.fma(FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c + L)), c1);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }

    private static void pv1x1F32A(float[] p, int ldS, int x, int n, float[] values, int valuesBase, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector v = full ? FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c)) : FloatVector.fromArray(F, values, valuesBase + (int) (off >>> 2) + (c), fm);
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }
        c0.intoArray(o, o0);
    }

    // ---------------------------------------------------------------- bf16 rows in a short[]

    private static void scoresBf16A(float[] q, int ldQ, int nq, int dim, short[] keys, int keysBase, long[] kOff, int n, float[] s,
                                 int ldS) {
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
                    dot4x2Bf16A(q, x * ldQ, ldQ, dFull, dim, keys, keysBase, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                for (int i = 0; i < 4; i++) {
                    fold(work, i * HALF, s, (x + i) * ldS + j0);
                }
            }
            for (; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot1x2Bf16A(q, x * ldQ, dFull, dim, keys, keysBase, oa, ob, fm, sm, work, (kp >> 1) * L);
                }
                fold(work, 0, s, x * ldS + j0);
            }
        }
    }

    /** Four query vectors × two keys over the head dimension, folded pairwise into {@code work}. */
    private static void dot4x2Bf16A(float[] q, int q0, int ldQ, int dFull, int dim, short[] keys, int keysBase, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
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
            FloatVector ka = ((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (oa >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector kb = ((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (ob >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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
            FloatVector ka = ((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (oa >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector kb = ((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (ob >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }

    /** One query vector × two keys, with the same arithmetic as {@link #dot4x2Bf16A}. */
    private static void dot1x2Bf16A(float[] q, int q0, int dFull, int dim, short[] keys, int keysBase, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (oa >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a);
            b = v.fma(((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (ob >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), b);
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma(((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (oa >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a);
            b = v.fma(((IntVector) ShortVector.fromArray(S, keys, keysBase + (int) (ob >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), b);
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void boundsBf16A(float[] q, int ldQ, int nq, int dim, short[] bounds, int boundsBase, long[] minOff,
                                 long[] maxOff, int n, float[] out, int ldS) {
        int dFull = dim - dim % L;
        VectorMask<Float> fm = F.indexInRange(0, dim - dFull);
        VectorMask<Short> sm = S.indexInRange(0, dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {
            for (int x = 0; x < nq; x++) {
                for (int kp = 0; kp < L; kp += 2) {
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    bound1x2Bf16A(q, x * ldQ, dFull, dim, bounds, boundsBase, minOff[ja], maxOff[ja], minOff[jb], maxOff[jb], fm, sm,
                            work, (kp >> 1) * L);
                }
                fold(work, 0, out, x * ldS + j0);
            }
        }
    }

    private static void bound1x2Bf16A(float[] q, int q0, int dFull, int dim, short[] bounds, int boundsBase, long mnA, long mxA,
                                   long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mnA >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mxA >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
            b = b.add(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mnB >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mxB >>> 1) + (d)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
        }
        if (d < dim) {
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = a.add(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mnA >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mxA >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
            b = b.add(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mnB >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()).max(v.mul(((IntVector) ShortVector.fromArray(S, bounds, boundsBase + (int) (mxB >>> 1) + (d), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats())));
        }
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }

    private static void accumulateBf16A(float[] p, int ldS, int nq, int n, short[] values, int valuesBase, long[] vOff, int dimV,
                                     float[] o, int ldO, float[] alpha) {
        touchBf16A(values, valuesBase, vOff, n, dimV);
        int x = 0;
        for (; x + 4 <= nq; x += 4) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv4x2Bf16A(p, ldS, x, n, values, valuesBase, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv4x1Bf16A(p, ldS, x, n, values, valuesBase, vOff, c, dimV, o, ldO, alpha);
            }
        }
        for (; x < nq; x++) {
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {
                pv1x2Bf16A(p, ldS, x, n, values, valuesBase, vOff, c, o, ldO, alpha);
            }
            for (; c < dimV; c += L) {
                pv1x1Bf16A(p, ldS, x, n, values, valuesBase, vOff, c, dimV, o, ldO, alpha);
            }
        }
    }

    /**
     * Reads the block's value rows once, row after row, before the column passes below read each row in
     * column slices: the lines then arrive in sequence (what the hardware prefetcher follows) rather
     * than one slice of every row at a time.
     */
    private static void touchBf16A(short[] values, int valuesBase, long[] vOff, int n, int dimV) {
        int dFull = dimV - dimV % L;
        FloatVector t = FloatVector.zero(F);
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            for (int c = 0; c < dFull; c += LINE) {
                t = t.add(((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats());
            }
        }
        t.intoArray(SINK.get(), 0);
    }

    private static void pv4x2Bf16A(float[] p, int ldS, int x, int n, short[] values, int valuesBase, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
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
            FloatVector v0 = ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector v1 = ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c + L)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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

    private static void pv4x1Bf16A(float[] p, int ldS, int x, int n, short[] values, int valuesBase, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
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
            long off = vOff[j];
            FloatVector v = full ? ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats() : ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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

    private static void pv1x2Bf16A(float[] p, int ldS, int x, int n, short[] values, int valuesBase, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma(((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c0);
            c1 = w.fma(((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c + L)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c1);
        }
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }

    private static void pv1x1Bf16A(float[] p, int ldS, int x, int n, short[] values, int valuesBase, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = F.indexInRange(0, dimV - c);
        VectorMask<Short> sm = S.indexInRange(0, dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {
            long off = vOff[j];
            FloatVector v = full ? ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c)).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats() : ((IntVector) ShortVector.fromArray(S, values, valuesBase + (int) (off >>> 1) + (c), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }
        c0.intoArray(o, o0);
    }
}
