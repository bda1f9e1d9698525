package dev.sparsa.patterns.support.panama;

import dev.sparsa.patterns.support.CanonicalExp;
import dev.sparsa.patterns.support.ScoringSupport;
import dev.sparsa.patterns.support.Vectors;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The estimators' loops in the Vector API. Loaded only by name through {@link
 * dev.sparsa.patterns.support.ScoringProvider} after {@code dev.sparsa.internal.VectorModule} found
 * {@code jdk.incubator.vector}; this package is the only one of the module that references the
 * Vector API. Bitwise the same results as the plain-Java twin: each lane of a dot product is one
 * chain of fused multiply-adds over the channels in order, and the scans only compare and count.
 *
 * <p>Panels and scans use the platform's preferred f32 species; the hash kernels use 256-bit
 * vectors (eight directions, one byte of a hash).
 */
public final class PanamaScoringSupport implements ScoringSupport {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Int lanes as many as {@link #F}'s: the indices compressed beside the scores. */
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final int[] IOTA = java.util.stream.IntStream.range(0, L).toArray();
    /** Eight lanes, fixed: one vector holds eight directions (one byte of a hash). */
    private static final VectorSpecies<Float> H = FloatVector.SPECIES_256;
    private static final int LANES = 8;
    /** The exponential's lanes: the preferred f64 vector, and f32 vectors of as many lanes. */
    private static final VectorSpecies<Double> XD = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> XF =
            VectorSpecies.of(float.class, VectorShape.forBitSize(XD.vectorBitSize() / 2));
    /** 1.5 · 2^52: adding it rounds a double of magnitude below 2^51 to an integer, half to even (as Math.rint). */
    private static final double ROUNDER = 0x1.8p52;

    /**
     * The Vector API scans.
     *
     * @throws UnsupportedOperationException if the preferred f32 vector has fewer than 4 lanes
     */
    public PanamaScoringSupport() {
        if (L < 4) {
            throw new UnsupportedOperationException("the preferred f32 vector has only " + L
                    + " lane(s); the plain-Java scans are as fast");
        }
    }

    @Override
    public String description() {
        return "vector " + F.vectorBitSize() + "-bit (" + L + " f32 lanes, jdk.incubator.vector)";
    }

    @Override
    public int panelLanes() {
        return L;
    }

    // The kernels are small and called often, so the JIT compiles them (with the vector intrinsics)
    // early instead of running a long first call in the interpreter's fallback.

    @Override
    public void transposePanel(float[] rows, int d, float[] p, int base) {
        // 16 lanes: whole 16 × 16 blocks transposed in registers (gathers are several times slower);
        // other widths, and the channels past the last whole block, one gather per channel
        int x = L == 16 ? transposeBlocks16(rows, 0, d, 1, p, base, 16, 16, d) : 0;
        if (x == d) {
            return;
        }
        int[] offsets = new int[L];
        for (int j = 0; j < L; j++) {
            offsets[j] = j * d;
        }
        for (; x < d; x++) {
            FloatVector.fromArray(F, rows, x, offsets, 0).intoArray(p, base + x * L);
        }
    }

    @Override
    public void untransposePanel(float[] p, int base, int d, float[] rows, int at) {
        int x = L == 16 ? transposeBlocks16(p, base, 16, 16, rows, at, d, 1, d) : 0;
        for (; x < d; x++) {
            for (int j = 0; j < L; j++) {
                rows[at + j * d + x] = p[base + x * L + j];
            }
        }
    }

    /**
     * The 16-lane transpose's selections, round {@code s} swapping blocks of {@code g = 8 >> s}
     * lanes between vectors {@code a} and {@code b} (indices into {@code a}'s lanes then {@code b}'s):
     * {@code SWAP_LO[s]} keeps {@code a}'s lanes with bit {@code g} clear and takes the others from
     * {@code b}'s lanes {@code g} lower; {@code SWAP_HI[s]} takes {@code a}'s lanes {@code g} higher
     * and keeps {@code b}'s lanes with bit {@code g} set. Null unless the preferred vector has 16 lanes.
     */
    private static final FloatVector[] SWAP_LO = swaps(true);
    private static final FloatVector[] SWAP_HI = swaps(false);

    private static FloatVector[] swaps(boolean lo) {
        if (L != 16) {
            return null;
        }
        FloatVector[] out = new FloatVector[4];
        for (int s = 0; s < 4; s++) {
            int g = 8 >> s;
            float[] idx = new float[16];
            for (int l = 0; l < 16; l++) {
                boolean clear = (l & g) == 0;
                idx[l] = lo ? (clear ? l : 16 + l - g) : (clear ? l + g : 16 + l);
            }
            out[s] = FloatVector.fromArray(F, idx, 0);
        }
        return out;
    }

    /**
     * 16 × 16 blocks transposed in registers, for every {@code x0} a multiple of 16 below {@code d}:
     * vector {@code i} loaded from {@code src[sOff + i · sRow + x0 · sBlk ..]}, the 16 vectors
     * transposed in four rounds (each swaps the off-diagonal blocks of 8, 4, 2 and then 1 lanes
     * between pairs of vectors, by two-vector selections), vector {@code i} stored to {@code dst[dOff
     * + i · dRow + x0 · dBlk ..]}. Only moves values. Returns the channels done. Written out by hand:
     * sixteen vectors in local variables stay in registers, where an array of vectors would be boxed.
     */
    private static int transposeBlocks16(float[] src, int sOff, int sRow, int sBlk, float[] dst, int dOff, int dRow,
            int dBlk, int d) {
        int x0 = 0;
        for (; x0 + 16 <= d; x0 += 16) {
            int s = sOff + x0 * sBlk;
            FloatVector v0 = FloatVector.fromArray(F, src, s + 0 * sRow);
            FloatVector v1 = FloatVector.fromArray(F, src, s + 1 * sRow);
            FloatVector v2 = FloatVector.fromArray(F, src, s + 2 * sRow);
            FloatVector v3 = FloatVector.fromArray(F, src, s + 3 * sRow);
            FloatVector v4 = FloatVector.fromArray(F, src, s + 4 * sRow);
            FloatVector v5 = FloatVector.fromArray(F, src, s + 5 * sRow);
            FloatVector v6 = FloatVector.fromArray(F, src, s + 6 * sRow);
            FloatVector v7 = FloatVector.fromArray(F, src, s + 7 * sRow);
            FloatVector v8 = FloatVector.fromArray(F, src, s + 8 * sRow);
            FloatVector v9 = FloatVector.fromArray(F, src, s + 9 * sRow);
            FloatVector v10 = FloatVector.fromArray(F, src, s + 10 * sRow);
            FloatVector v11 = FloatVector.fromArray(F, src, s + 11 * sRow);
            FloatVector v12 = FloatVector.fromArray(F, src, s + 12 * sRow);
            FloatVector v13 = FloatVector.fromArray(F, src, s + 13 * sRow);
            FloatVector v14 = FloatVector.fromArray(F, src, s + 14 * sRow);
            FloatVector v15 = FloatVector.fromArray(F, src, s + 15 * sRow);
            {
                FloatVector t0 = SWAP_LO[0].selectFrom(v0, v8);
                FloatVector t8 = SWAP_HI[0].selectFrom(v0, v8);
                FloatVector t1 = SWAP_LO[0].selectFrom(v1, v9);
                FloatVector t9 = SWAP_HI[0].selectFrom(v1, v9);
                FloatVector t2 = SWAP_LO[0].selectFrom(v2, v10);
                FloatVector t10 = SWAP_HI[0].selectFrom(v2, v10);
                FloatVector t3 = SWAP_LO[0].selectFrom(v3, v11);
                FloatVector t11 = SWAP_HI[0].selectFrom(v3, v11);
                FloatVector t4 = SWAP_LO[0].selectFrom(v4, v12);
                FloatVector t12 = SWAP_HI[0].selectFrom(v4, v12);
                FloatVector t5 = SWAP_LO[0].selectFrom(v5, v13);
                FloatVector t13 = SWAP_HI[0].selectFrom(v5, v13);
                FloatVector t6 = SWAP_LO[0].selectFrom(v6, v14);
                FloatVector t14 = SWAP_HI[0].selectFrom(v6, v14);
                FloatVector t7 = SWAP_LO[0].selectFrom(v7, v15);
                FloatVector t15 = SWAP_HI[0].selectFrom(v7, v15);
                v0 = t0;
                v1 = t1;
                v2 = t2;
                v3 = t3;
                v4 = t4;
                v5 = t5;
                v6 = t6;
                v7 = t7;
                v8 = t8;
                v9 = t9;
                v10 = t10;
                v11 = t11;
                v12 = t12;
                v13 = t13;
                v14 = t14;
                v15 = t15;
            }
            {
                FloatVector t0 = SWAP_LO[1].selectFrom(v0, v4);
                FloatVector t4 = SWAP_HI[1].selectFrom(v0, v4);
                FloatVector t1 = SWAP_LO[1].selectFrom(v1, v5);
                FloatVector t5 = SWAP_HI[1].selectFrom(v1, v5);
                FloatVector t2 = SWAP_LO[1].selectFrom(v2, v6);
                FloatVector t6 = SWAP_HI[1].selectFrom(v2, v6);
                FloatVector t3 = SWAP_LO[1].selectFrom(v3, v7);
                FloatVector t7 = SWAP_HI[1].selectFrom(v3, v7);
                FloatVector t8 = SWAP_LO[1].selectFrom(v8, v12);
                FloatVector t12 = SWAP_HI[1].selectFrom(v8, v12);
                FloatVector t9 = SWAP_LO[1].selectFrom(v9, v13);
                FloatVector t13 = SWAP_HI[1].selectFrom(v9, v13);
                FloatVector t10 = SWAP_LO[1].selectFrom(v10, v14);
                FloatVector t14 = SWAP_HI[1].selectFrom(v10, v14);
                FloatVector t11 = SWAP_LO[1].selectFrom(v11, v15);
                FloatVector t15 = SWAP_HI[1].selectFrom(v11, v15);
                v0 = t0;
                v1 = t1;
                v2 = t2;
                v3 = t3;
                v4 = t4;
                v5 = t5;
                v6 = t6;
                v7 = t7;
                v8 = t8;
                v9 = t9;
                v10 = t10;
                v11 = t11;
                v12 = t12;
                v13 = t13;
                v14 = t14;
                v15 = t15;
            }
            {
                FloatVector t0 = SWAP_LO[2].selectFrom(v0, v2);
                FloatVector t2 = SWAP_HI[2].selectFrom(v0, v2);
                FloatVector t1 = SWAP_LO[2].selectFrom(v1, v3);
                FloatVector t3 = SWAP_HI[2].selectFrom(v1, v3);
                FloatVector t4 = SWAP_LO[2].selectFrom(v4, v6);
                FloatVector t6 = SWAP_HI[2].selectFrom(v4, v6);
                FloatVector t5 = SWAP_LO[2].selectFrom(v5, v7);
                FloatVector t7 = SWAP_HI[2].selectFrom(v5, v7);
                FloatVector t8 = SWAP_LO[2].selectFrom(v8, v10);
                FloatVector t10 = SWAP_HI[2].selectFrom(v8, v10);
                FloatVector t9 = SWAP_LO[2].selectFrom(v9, v11);
                FloatVector t11 = SWAP_HI[2].selectFrom(v9, v11);
                FloatVector t12 = SWAP_LO[2].selectFrom(v12, v14);
                FloatVector t14 = SWAP_HI[2].selectFrom(v12, v14);
                FloatVector t13 = SWAP_LO[2].selectFrom(v13, v15);
                FloatVector t15 = SWAP_HI[2].selectFrom(v13, v15);
                v0 = t0;
                v1 = t1;
                v2 = t2;
                v3 = t3;
                v4 = t4;
                v5 = t5;
                v6 = t6;
                v7 = t7;
                v8 = t8;
                v9 = t9;
                v10 = t10;
                v11 = t11;
                v12 = t12;
                v13 = t13;
                v14 = t14;
                v15 = t15;
            }
            {
                FloatVector t0 = SWAP_LO[3].selectFrom(v0, v1);
                FloatVector t1 = SWAP_HI[3].selectFrom(v0, v1);
                FloatVector t2 = SWAP_LO[3].selectFrom(v2, v3);
                FloatVector t3 = SWAP_HI[3].selectFrom(v2, v3);
                FloatVector t4 = SWAP_LO[3].selectFrom(v4, v5);
                FloatVector t5 = SWAP_HI[3].selectFrom(v4, v5);
                FloatVector t6 = SWAP_LO[3].selectFrom(v6, v7);
                FloatVector t7 = SWAP_HI[3].selectFrom(v6, v7);
                FloatVector t8 = SWAP_LO[3].selectFrom(v8, v9);
                FloatVector t9 = SWAP_HI[3].selectFrom(v8, v9);
                FloatVector t10 = SWAP_LO[3].selectFrom(v10, v11);
                FloatVector t11 = SWAP_HI[3].selectFrom(v10, v11);
                FloatVector t12 = SWAP_LO[3].selectFrom(v12, v13);
                FloatVector t13 = SWAP_HI[3].selectFrom(v12, v13);
                FloatVector t14 = SWAP_LO[3].selectFrom(v14, v15);
                FloatVector t15 = SWAP_HI[3].selectFrom(v14, v15);
                v0 = t0;
                v1 = t1;
                v2 = t2;
                v3 = t3;
                v4 = t4;
                v5 = t5;
                v6 = t6;
                v7 = t7;
                v8 = t8;
                v9 = t9;
                v10 = t10;
                v11 = t11;
                v12 = t12;
                v13 = t13;
                v14 = t14;
                v15 = t15;
            }
            int o = dOff + x0 * dBlk;
            v0.intoArray(dst, o + 0 * dRow);
            v1.intoArray(dst, o + 1 * dRow);
            v2.intoArray(dst, o + 2 * dRow);
            v3.intoArray(dst, o + 3 * dRow);
            v4.intoArray(dst, o + 4 * dRow);
            v5.intoArray(dst, o + 5 * dRow);
            v6.intoArray(dst, o + 6 * dRow);
            v7.intoArray(dst, o + 7 * dRow);
            v8.intoArray(dst, o + 8 * dRow);
            v9.intoArray(dst, o + 9 * dRow);
            v10.intoArray(dst, o + 10 * dRow);
            v11.intoArray(dst, o + 11 * dRow);
            v12.intoArray(dst, o + 12 * dRow);
            v13.intoArray(dst, o + 13 * dRow);
            v14.intoArray(dst, o + 14 * dRow);
            v15.intoArray(dst, o + 15 * dRow);
        }
        return x0;
    }


    @Override
    public void normalizePanel(float[] p, int base, int d, double[] inv) {
        // the panel's lanes in two halves of XF's width, each widened to doubles (XD, as many lanes);
        // lane j's sum of squares is one chain of double additions over the channels in order
        int h = XF.length();
        DoubleVector s0 = DoubleVector.zero(XD);
        DoubleVector s1 = DoubleVector.zero(XD);
        for (int x = 0; x < d; x++) {
            int at = base + x * L;
            DoubleVector v0 = (DoubleVector) FloatVector.fromArray(XF, p, at).convertShape(VectorOperators.F2D, XD, 0);
            DoubleVector v1 = (DoubleVector) FloatVector.fromArray(XF, p, at + h).convertShape(VectorOperators.F2D, XD, 0);
            s0 = s0.add(v0.mul(v0)); // a product then a sum, as (double) v * v added in Java
            s1 = s1.add(v1.mul(v1));
        }
        DoubleVector one = DoubleVector.broadcast(XD, 1.0);
        DoubleVector zero = DoubleVector.zero(XD);
        DoubleVector i0 = zero.blend(one.div(s0.sqrt()), s0.compare(VectorOperators.GT, 0.0));
        DoubleVector i1 = zero.blend(one.div(s1.sqrt()), s1.compare(VectorOperators.GT, 0.0));
        i0.intoArray(inv, 0);
        i1.intoArray(inv, h);
        for (int x = 0; x < d; x++) {
            int at = base + x * L;
            scaleInto(p, at, i0, p, at);
            scaleInto(p, at + h, i1, p, at + h);
        }
    }

    /** {@code XF.length()} floats of {@code src} from {@code at}, times {@code inv} in double, rounded to f32 into {@code dst}. */
    private static void scaleInto(float[] src, int at, DoubleVector inv, float[] dst, int to) {
        DoubleVector v = (DoubleVector) FloatVector.fromArray(XF, src, at).convertShape(VectorOperators.F2D, XD, 0);
        ((FloatVector) v.mul(inv).convertShape(VectorOperators.D2F, XF, 0)).intoArray(dst, to);
    }

    @Override
    public void scaleRows(float[] src, int rows, int d, double[] inv, float[] dst, int dstOff) {
        int h = XF.length();
        for (int j = 0; j < rows; j++) {
            DoubleVector f = DoubleVector.broadcast(XD, inv[j]);
            int x = 0;
            for (; x + h <= d; x += h) {
                scaleInto(src, j * d + x, f, dst, dstOff + j * d + x);
            }
            for (; x < d; x++) {
                dst[dstOff + j * d + x] = (float) (src[j * d + x] * inv[j]);
            }
        }
    }

    @Override
    public void keepGreater(float[] a, int from, int n, float[] best, int[] arg, int index) {
        IntVector iv = IntVector.broadcast(I, index);
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += L) {
            FloatVector va = FloatVector.fromArray(F, a, from + i);
            FloatVector vb = FloatVector.fromArray(F, best, i);
            VectorMask<Float> gt = va.compare(VectorOperators.GT, vb); // NaN never is
            vb.blend(va, gt).intoArray(best, i);
            IntVector.fromArray(I, arg, i).blend(iv, gt.cast(I)).intoArray(arg, i);
        }
        for (; i < n; i++) {
            if (a[from + i] > best[i]) {
                best[i] = a[from + i];
                arg[i] = index;
            }
        }
    }

    @Override
    public void expMinus(float[] a, int n, float max) {
        int i = 0;
        if (XF.length() == XD.length() && XD.length() >= 2) {
            FloatVector m = FloatVector.broadcast(XF, max);
            for (; i + XF.length() <= n; i += XF.length()) {
                FloatVector x = FloatVector.fromArray(XF, a, i).sub(m); // f32, as the scalar form
                canonicalExp(x).intoArray(a, i);
            }
        }
        for (; i < n; i++) {
            a[i] = CanonicalExp.exp(a[i] - max);
        }
    }

    /**
     * {@link CanonicalExp#exp} on lanes: the same double operations in the same order ({@code rint}
     * by adding and subtracting {@link #ROUNDER}, exact here as |x · log2 e| &lt; 2^51; {@code 2^n}
     * from the integer in the rounded sum's low bits), then the special cases blended in.
     */
    private static FloatVector canonicalExp(FloatVector x) {
        DoubleVector xd = (DoubleVector) x.convertShape(VectorOperators.F2D, XD, 0);
        DoubleVector shifted = xd.mul(0x1.71547652b82fep0).add(ROUNDER); // CanonicalExp.LOG2E
        DoubleVector nd = shifted.sub(ROUNDER);
        DoubleVector neg = nd.neg();
        DoubleVector r = neg.fma(DoubleVector.broadcast(XD, 0x1.62e42feep-1), xd); // CanonicalExp.LN2_HI
        r = neg.fma(DoubleVector.broadcast(XD, 0x1.a39ef35793c76p-33), r); // CanonicalExp.LN2_LO
        DoubleVector p = DoubleVector.broadcast(XD, 0x1.ae64567f544e4p-26);
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.27e4fb7789f5cp-22));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.71de3a556c734p-19));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.a01a01a01a01ap-16));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.a01a01a01a01ap-13));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.6c16c16c16c17p-10));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.1111111111111p-7));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.5555555555555p-5));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.5555555555555p-3));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.0p-1));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.0p0));
        p = p.fma(r, DoubleVector.broadcast(XD, 0x1.0p0));
        // n = rounded sum's bits − ROUNDER's bits (|n| < 2^51); 2^n = (n + 1023) << 52
        LongVector nl = shifted.reinterpretAsLongs().sub(Double.doubleToRawLongBits(ROUNDER));
        DoubleVector scale = nl.add(1023).lanewise(VectorOperators.LSHL, 52).reinterpretAsDoubles();
        FloatVector e = (FloatVector) p.mul(scale).convertShape(VectorOperators.D2F, XF, 0);
        e = e.blend(0f, x.compare(VectorOperators.LT, -104f));
        e = e.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 89f));
        return e.blend(x, x.test(VectorOperators.IS_NAN));
    }

    @Override
    public void addRows(float[] src, int srcOff, int rows, int d, float[] dst, int dstOff) {
        int x = 0;
        // each lane's sum stays in a register over the rows (the same additions in the same order)
        for (; x + L <= d; x += L) {
            FloatVector acc = FloatVector.fromArray(F, dst, dstOff + x);
            for (int r = 0, at = srcOff + x; r < rows; r++, at += d) {
                acc = acc.add(FloatVector.fromArray(F, src, at));
            }
            acc.intoArray(dst, dstOff + x);
        }
        for (; x < d; x++) {
            float s = dst[dstOff + x];
            for (int r = 0; r < rows; r++) {
                s += src[srcOff + r * d + x];
            }
            dst[dstOff + x] = s;
        }
    }

    @Override
    public void addWeightedRelu(float w, float[] dots, int dotsAt, float[] acc, int accAt, int n) {
        FloatVector wv = FloatVector.broadcast(F, w);
        FloatVector zero = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= n; i += L) {
            // lanewise Math.max and Math.fma: bitwise the scalar loop
            FloatVector.fromArray(F, dots, dotsAt + i).max(zero).fma(wv, FloatVector.fromArray(F, acc, accAt + i))
                    .intoArray(acc, accAt + i);
        }
        for (; i < n; i++) {
            acc[accAt + i] = Math.fma(w, Math.max(0f, dots[dotsAt + i]), acc[accAt + i]);
        }
    }

    @Override
    public void fourByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        int p0 = g * L * d;
        int p1 = p0 + L * d;
        int qa = row * d;
        int qb = qa + d;
        int qc = qb + d;
        int qd = qc + d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F);
        FloatVector b1 = FloatVector.zero(F);
        FloatVector c0 = FloatVector.zero(F);
        FloatVector c1 = FloatVector.zero(F);
        FloatVector e0 = FloatVector.zero(F);
        FloatVector e1 = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            FloatVector k0 = FloatVector.fromArray(F, panels, p0 + x * L);
            FloatVector k1 = FloatVector.fromArray(F, panels, p1 + x * L);
            FloatVector va = FloatVector.broadcast(F, q[qa + x]);
            FloatVector vb = FloatVector.broadcast(F, q[qb + x]);
            FloatVector vc = FloatVector.broadcast(F, q[qc + x]);
            FloatVector ve = FloatVector.broadcast(F, q[qd + x]);
            a0 = k0.fma(va, a0);
            a1 = k1.fma(va, a1);
            b0 = k0.fma(vb, b0);
            b1 = k1.fma(vb, b1);
            c0 = k0.fma(vc, c0);
            c1 = k1.fma(vc, c1);
            e0 = k0.fma(ve, e0);
            e1 = k1.fma(ve, e1);
        }
        int o = outBase + g * L;
        a0.intoArray(out, o);
        a1.intoArray(out, o + L);
        b0.intoArray(out, o + stride);
        b1.intoArray(out, o + stride + L);
        c0.intoArray(out, o + 2 * stride);
        c1.intoArray(out, o + 2 * stride + L);
        e0.intoArray(out, o + 3 * stride);
        e1.intoArray(out, o + 3 * stride + L);
    }

    @Override
    public void fourByFour(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        int p0 = g * L * d;
        int p1 = p0 + L * d;
        int p2 = p1 + L * d;
        int p3 = p2 + L * d;
        int qa = row * d;
        FloatVector a00 = FloatVector.zero(F);
        FloatVector a01 = FloatVector.zero(F);
        FloatVector a02 = FloatVector.zero(F);
        FloatVector a03 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F);
        FloatVector a11 = FloatVector.zero(F);
        FloatVector a12 = FloatVector.zero(F);
        FloatVector a13 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F);
        FloatVector a21 = FloatVector.zero(F);
        FloatVector a22 = FloatVector.zero(F);
        FloatVector a23 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F);
        FloatVector a31 = FloatVector.zero(F);
        FloatVector a32 = FloatVector.zero(F);
        FloatVector a33 = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            FloatVector k0 = FloatVector.fromArray(F, panels, p0 + x * L);
            FloatVector k1 = FloatVector.fromArray(F, panels, p1 + x * L);
            FloatVector k2 = FloatVector.fromArray(F, panels, p2 + x * L);
            FloatVector k3 = FloatVector.fromArray(F, panels, p3 + x * L);
            FloatVector v0 = FloatVector.broadcast(F, q[qa + x]);
            a00 = k0.fma(v0, a00);
            a01 = k1.fma(v0, a01);
            a02 = k2.fma(v0, a02);
            a03 = k3.fma(v0, a03);
            FloatVector v1 = FloatVector.broadcast(F, q[qa + d + x]);
            a10 = k0.fma(v1, a10);
            a11 = k1.fma(v1, a11);
            a12 = k2.fma(v1, a12);
            a13 = k3.fma(v1, a13);
            FloatVector v2 = FloatVector.broadcast(F, q[qa + 2 * d + x]);
            a20 = k0.fma(v2, a20);
            a21 = k1.fma(v2, a21);
            a22 = k2.fma(v2, a22);
            a23 = k3.fma(v2, a23);
            FloatVector v3 = FloatVector.broadcast(F, q[qa + 3 * d + x]);
            a30 = k0.fma(v3, a30);
            a31 = k1.fma(v3, a31);
            a32 = k2.fma(v3, a32);
            a33 = k3.fma(v3, a33);
        }
        int o = outBase + g * L;
        a00.intoArray(out, o);
        a01.intoArray(out, o + L);
        a02.intoArray(out, o + 2 * L);
        a03.intoArray(out, o + 3 * L);
        a10.intoArray(out, o + stride);
        a11.intoArray(out, o + stride + L);
        a12.intoArray(out, o + stride + 2 * L);
        a13.intoArray(out, o + stride + 3 * L);
        a20.intoArray(out, o + 2 * stride);
        a21.intoArray(out, o + 2 * stride + L);
        a22.intoArray(out, o + 2 * stride + 2 * L);
        a23.intoArray(out, o + 2 * stride + 3 * L);
        a30.intoArray(out, o + 3 * stride);
        a31.intoArray(out, o + 3 * stride + L);
        a32.intoArray(out, o + 3 * stride + 2 * L);
        a33.intoArray(out, o + 3 * stride + 3 * L);
    }

    @Override
    public void oneByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase) {
        int p0 = g * L * d;
        int p1 = p0 + L * d;
        int qa = row * d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            FloatVector va = FloatVector.broadcast(F, q[qa + x]);
            a0 = FloatVector.fromArray(F, panels, p0 + x * L).fma(va, a0);
            a1 = FloatVector.fromArray(F, panels, p1 + x * L).fma(va, a1);
        }
        a0.intoArray(out, outBase + g * L);
        a1.intoArray(out, outBase + g * L + L);
    }

    @Override
    public void eightByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        int p0 = g * L * d;
        int qa = row * d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        FloatVector a4 = FloatVector.zero(F);
        FloatVector a5 = FloatVector.zero(F);
        FloatVector a6 = FloatVector.zero(F);
        FloatVector a7 = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            FloatVector k0 = FloatVector.fromArray(F, panels, p0 + x * L);
            a0 = k0.fma(FloatVector.broadcast(F, q[qa + x]), a0);
            a1 = k0.fma(FloatVector.broadcast(F, q[qa + d + x]), a1);
            a2 = k0.fma(FloatVector.broadcast(F, q[qa + 2 * d + x]), a2);
            a3 = k0.fma(FloatVector.broadcast(F, q[qa + 3 * d + x]), a3);
            a4 = k0.fma(FloatVector.broadcast(F, q[qa + 4 * d + x]), a4);
            a5 = k0.fma(FloatVector.broadcast(F, q[qa + 5 * d + x]), a5);
            a6 = k0.fma(FloatVector.broadcast(F, q[qa + 6 * d + x]), a6);
            a7 = k0.fma(FloatVector.broadcast(F, q[qa + 7 * d + x]), a7);
        }
        int o = outBase + g * L;
        a0.intoArray(out, o);
        a1.intoArray(out, o + stride);
        a2.intoArray(out, o + 2 * stride);
        a3.intoArray(out, o + 3 * stride);
        a4.intoArray(out, o + 4 * stride);
        a5.intoArray(out, o + 5 * stride);
        a6.intoArray(out, o + 6 * stride);
        a7.intoArray(out, o + 7 * stride);
    }

    @Override
    public void oneByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase) {
        int p0 = g * L * d;
        int qa = row * d;
        FloatVector a0 = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            a0 = FloatVector.fromArray(F, panels, p0 + x * L).fma(FloatVector.broadcast(F, q[qa + x]), a0);
        }
        a0.intoArray(out, outBase + g * L);
    }

    @Override
    public void boundsFourByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase,
                                int stride) {
        int p0 = g * L * d;
        int q0 = row * d;
        int q1 = q0 + d;
        int q2 = q1 + d;
        int q3 = q2 + d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int x = 0; x < d; x++) {
            FloatVector mn = FloatVector.fromArray(F, min, p0 + x * L);
            FloatVector mx = FloatVector.fromArray(F, max, p0 + x * L);
            FloatVector b0 = FloatVector.broadcast(F, q[q0 + x]);
            FloatVector b1 = FloatVector.broadcast(F, q[q1 + x]);
            FloatVector b2 = FloatVector.broadcast(F, q[q2 + x]);
            FloatVector b3 = FloatVector.broadcast(F, q[q3 + x]);
            a0 = a0.add(b0.mul(mn).max(b0.mul(mx)));
            a1 = a1.add(b1.mul(mn).max(b1.mul(mx)));
            a2 = a2.add(b2.mul(mn).max(b2.mul(mx)));
            a3 = a3.add(b3.mul(mn).max(b3.mul(mx)));
        }
        a0.intoArray(out, outBase + g * L);
        a1.intoArray(out, outBase + stride + g * L);
        a2.intoArray(out, outBase + 2 * stride + g * L);
        a3.intoArray(out, outBase + 3 * stride + g * L);
    }

    @Override
    public void boundsOneByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase) {
        int p0 = g * L * d;
        int qa = row * d;
        FloatVector a = FloatVector.zero(F);
        for (int x = 0; x < d; x++) {
            FloatVector b = FloatVector.broadcast(F, q[qa + x]);
            a = a.add(b.mul(FloatVector.fromArray(F, min, p0 + x * L)).max(b.mul(FloatVector.fromArray(F, max, p0 + x * L))));
        }
        a.intoArray(out, outBase + g * L);
    }

    @Override
    public void hashSixRows(float[] rows, int r, int dim, float[] pair, int[] out0, int shift0, int[] out1,
                                int shift1, int at) {
        int o0 = r * dim;
        FloatVector a0 = FloatVector.zero(H);
        FloatVector a1 = FloatVector.zero(H);
        FloatVector a2 = FloatVector.zero(H);
        FloatVector a3 = FloatVector.zero(H);
        FloatVector a4 = FloatVector.zero(H);
        FloatVector a5 = FloatVector.zero(H);
        FloatVector b0 = FloatVector.zero(H);
        FloatVector b1 = FloatVector.zero(H);
        FloatVector b2 = FloatVector.zero(H);
        FloatVector b3 = FloatVector.zero(H);
        FloatVector b4 = FloatVector.zero(H);
        FloatVector b5 = FloatVector.zero(H);
        for (int x = 0; x < dim; x++) {
            FloatVector d = FloatVector.fromArray(H, pair, x * 2 * LANES);
            FloatVector e = FloatVector.fromArray(H, pair, x * 2 * LANES + LANES);
            FloatVector q = FloatVector.broadcast(H, rows[o0 + x]);
            a0 = q.fma(d, a0);
            b0 = q.fma(e, b0);
            q = FloatVector.broadcast(H, rows[o0 + dim + x]);
            a1 = q.fma(d, a1);
            b1 = q.fma(e, b1);
            q = FloatVector.broadcast(H, rows[o0 + 2 * dim + x]);
            a2 = q.fma(d, a2);
            b2 = q.fma(e, b2);
            q = FloatVector.broadcast(H, rows[o0 + 3 * dim + x]);
            a3 = q.fma(d, a3);
            b3 = q.fma(e, b3);
            q = FloatVector.broadcast(H, rows[o0 + 4 * dim + x]);
            a4 = q.fma(d, a4);
            b4 = q.fma(e, b4);
            q = FloatVector.broadcast(H, rows[o0 + 5 * dim + x]);
            a5 = q.fma(d, a5);
            b5 = q.fma(e, b5);
        }
        int o = at + r;
        out0[o] |= byteOf(a0) << shift0;
        out0[o + 1] |= byteOf(a1) << shift0;
        out0[o + 2] |= byteOf(a2) << shift0;
        out0[o + 3] |= byteOf(a3) << shift0;
        out0[o + 4] |= byteOf(a4) << shift0;
        out0[o + 5] |= byteOf(a5) << shift0;
        out1[o] |= byteOf(b0) << shift1;
        out1[o + 1] |= byteOf(b1) << shift1;
        out1[o + 2] |= byteOf(b2) << shift1;
        out1[o + 3] |= byteOf(b3) << shift1;
        out1[o + 4] |= byteOf(b4) << shift1;
        out1[o + 5] |= byteOf(b5) << shift1;
    }

    @Override
    public void hashEightRows(float[] rows, int r, int dim, float[] dirT, int[] out, int shift, int at) {
        int o0 = r * dim;
        FloatVector a0 = FloatVector.zero(H);
        FloatVector a1 = FloatVector.zero(H);
        FloatVector a2 = FloatVector.zero(H);
        FloatVector a3 = FloatVector.zero(H);
        FloatVector a4 = FloatVector.zero(H);
        FloatVector a5 = FloatVector.zero(H);
        FloatVector a6 = FloatVector.zero(H);
        FloatVector a7 = FloatVector.zero(H);
        for (int x = 0; x < dim; x++) {
            FloatVector d = FloatVector.fromArray(H, dirT, x * LANES);
            a0 = FloatVector.broadcast(H, rows[o0 + x]).fma(d, a0);
            a1 = FloatVector.broadcast(H, rows[o0 + dim + x]).fma(d, a1);
            a2 = FloatVector.broadcast(H, rows[o0 + 2 * dim + x]).fma(d, a2);
            a3 = FloatVector.broadcast(H, rows[o0 + 3 * dim + x]).fma(d, a3);
            a4 = FloatVector.broadcast(H, rows[o0 + 4 * dim + x]).fma(d, a4);
            a5 = FloatVector.broadcast(H, rows[o0 + 5 * dim + x]).fma(d, a5);
            a6 = FloatVector.broadcast(H, rows[o0 + 6 * dim + x]).fma(d, a6);
            a7 = FloatVector.broadcast(H, rows[o0 + 7 * dim + x]).fma(d, a7);
        }
        int o = at + r;
        out[o] |= byteOf(a0) << shift;
        out[o + 1] |= byteOf(a1) << shift;
        out[o + 2] |= byteOf(a2) << shift;
        out[o + 3] |= byteOf(a3) << shift;
        out[o + 4] |= byteOf(a4) << shift;
        out[o + 5] |= byteOf(a5) << shift;
        out[o + 6] |= byteOf(a6) << shift;
        out[o + 7] |= byteOf(a7) << shift;
    }

    @Override
    public int hashOneRow(float[] rows, int off, int dim, float[] dirT) {
        FloatVector acc = FloatVector.zero(H);
        for (int x = 0; x < dim; x++) {
            acc = FloatVector.broadcast(H, rows[off + x]).fma(FloatVector.fromArray(H, dirT, x * LANES), acc);
        }
        return byteOf(acc);
    }

    private static int byteOf(FloatVector projections) {
        return (int) projections.compare(VectorOperators.GT, 0f).toLong();
    }

    @Override
    public float maxSkippingNaN(float[] a, int from, int n) {
        FloatVector best = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, a, from + i);
            best = best.blend(v, v.compare(VectorOperators.GT, best));
        }
        float m = best.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            float v = a[from + i];
            m = v > m ? v : m;
        }
        return m;
    }

    @Override
    public Vectors.Range range(float[] a, int from, int n) {
        FloatVector lo = FloatVector.broadcast(F, Float.POSITIVE_INFINITY);
        FloatVector hi = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int count = 0;
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, a, from + i);
            lo = lo.blend(v, v.compare(VectorOperators.LT, lo));
            hi = hi.blend(v, v.compare(VectorOperators.GT, hi));
            count += v.compare(VectorOperators.EQ, v).trueCount();
        }
        float min = lo.reduceLanes(VectorOperators.MIN);
        float max = hi.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            float v = a[from + i];
            min = v < min ? v : min;
            max = v > max ? v : max;
            count += v == v ? 1 : 0;
        }
        return new Vectors.Range(min, max, count);
    }

    @Override
    public int countAtLeast(float[] a, int from, int n, float t) {
        int count = 0;
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += F.length()) {
            count += FloatVector.fromArray(F, a, from + i).compare(VectorOperators.GE, t).trueCount();
        }
        for (; i < n; i++) {
            count += a[from + i] >= t ? 1 : 0;
        }
        return count;
    }

    @Override
    public int compressAtLeast(float[] a, int from, int n, float t, float[] vals, int[] idx) {
        int m = 0;
        int i = 0;
        IntVector lane = IntVector.fromArray(I, IOTA, 0);
        for (int end = F.loopBound(n); i < end; i += L) {
            FloatVector v = FloatVector.fromArray(F, a, from + i);
            VectorMask<Float> ge = v.compare(VectorOperators.GE, t);
            // whole vectors stored; the lanes past the count are overwritten by the next store
            v.compress(ge).intoArray(vals, m);
            lane.compress(ge.cast(I)).intoArray(idx, m);
            lane = lane.add(L);
            m += ge.trueCount();
        }
        if (i < n) {
            VectorMask<Float> in = F.indexInRange(i, n);
            FloatVector v = FloatVector.fromArray(F, a, from + i, in);
            VectorMask<Float> ge = v.compare(VectorOperators.GE, t, in);
            v.compress(ge).intoArray(vals, m);
            lane.compress(ge.cast(I)).intoArray(idx, m);
            m += ge.trueCount();
        }
        return m;
    }

    @Override
    public float keepBest(float[] vals, int[] idx, int c, int k, int g, int[] out, int at) {
        if (c <= 2 * L && c > k) {
            return keepBestShort(vals, idx, c, k, g, out, at);
        }
        // the k-th best score t: the (c − k + 1)-th smallest, found by taking the smallest distinct
        // scores with their counts, one vector minimum and one count each
        FloatVector inf = FloatVector.broadcast(F, Float.POSITIVE_INFINITY);
        FloatVector acc = inf;
        for (int p = 0; p < c; p += L) {
            VectorMask<Float> in = F.indexInRange(p, c);
            acc = acc.min(inf.blend(FloatVector.fromArray(F, vals, p, in), in));
        }
        float smallest = acc.reduceLanes(VectorOperators.MIN);
        if (c == k) {
            System.arraycopy(idx, 0, out, at, k);
            return smallest;
        }
        float t = smallest;
        int remaining = c - k + 1;
        int gRemaining = c - g + 1; // the g-th best is the (c − g + 1)-th smallest
        float gth = smallest;
        while (true) {
            int count = 0;
            for (int p = 0; p < c; p += L) {
                VectorMask<Float> in = F.indexInRange(p, c);
                count += FloatVector.fromArray(F, vals, p, in).compare(VectorOperators.EQ, t, in).trueCount();
            }
            if (gRemaining > 0) {
                gth = t;
                gRemaining -= count;
            }
            if (count >= remaining) {
                break;
            }
            remaining -= count;
            // the next larger score
            FloatVector next = inf;
            for (int p = 0; p < c; p += L) {
                VectorMask<Float> in = F.indexInRange(p, c);
                FloatVector v = FloatVector.fromArray(F, vals, p, in);
                next = next.min(inf.blend(v, v.compare(VectorOperators.GT, t, in)));
            }
            t = next.reduceLanes(VectorOperators.MIN);
        }
        // above t all kept; at t the first ones, as many as are still wanted
        long above = 0;
        long equal = 0;
        for (int p = 0; p < c; p += L) {
            VectorMask<Float> in = F.indexInRange(p, c);
            FloatVector v = FloatVector.fromArray(F, vals, p, in);
            above |= v.compare(VectorOperators.GT, t, in).toLong() << p;
            equal |= v.compare(VectorOperators.EQ, t, in).toLong() << p;
        }
        int need = k - Long.bitCount(above);
        long keep = above | Long.expand(need == 64 ? -1L : (1L << need) - 1, equal);
        for (int r = at; keep != 0; keep &= keep - 1) {
            out[r++] = idx[Long.numberOfTrailingZeros(keep)];
        }
        return gth;
    }

    /**
     * {@link #keepBest} for {@code k < c <= 2L} (NSA's and MoBA's rows: k to k + 6 candidates): the
     * same walk over the smallest distinct scores, with the candidates held in two registers.
     */
    private static float keepBestShort(float[] vals, int[] idx, int c, int k, int g, int[] out, int at) {
        FloatVector inf = FloatVector.broadcast(F, Float.POSITIVE_INFINITY);
        VectorMask<Float> in0 = F.indexInRange(0, c);
        VectorMask<Float> in1 = F.indexInRange(L, c);
        FloatVector v0 = inf.blend(FloatVector.fromArray(F, vals, 0, in0), in0);
        FloatVector v1 = c > L ? inf.blend(FloatVector.fromArray(F, vals, L, in1), in1) : inf;
        float t = v0.min(v1).reduceLanes(VectorOperators.MIN);
        int remaining = c - k + 1;
        int gRemaining = c - g + 1; // the g-th best is the (c − g + 1)-th smallest
        float gth = t;
        while (true) {
            int count = v0.compare(VectorOperators.EQ, t, in0).trueCount() + v1.compare(VectorOperators.EQ, t, in1).trueCount();
            if (gRemaining > 0) {
                gth = t;
                gRemaining -= count;
            }
            if (count >= remaining) {
                break;
            }
            remaining -= count;
            // the next larger score (a padding lane, +inf, adds nothing to the minimum)
            FloatVector next = inf.blend(v0, v0.compare(VectorOperators.GT, t)).min(inf.blend(v1, v1.compare(VectorOperators.GT, t)));
            t = next.reduceLanes(VectorOperators.MIN);
        }
        // above t all kept; at t the first ones, as many as are still wanted
        long above = v0.compare(VectorOperators.GT, t, in0).toLong() | v1.compare(VectorOperators.GT, t, in1).toLong() << L;
        long equal = v0.compare(VectorOperators.EQ, t, in0).toLong() | v1.compare(VectorOperators.EQ, t, in1).toLong() << L;
        int need = k - Long.bitCount(above);
        long keep = above | Long.expand(need == 64 ? -1L : (1L << need) - 1, equal);
        for (int r = at; keep != 0; keep &= keep - 1) {
            out[r++] = idx[Long.numberOfTrailingZeros(keep)];
        }
        return gth;
    }

    @Override
    public void bitsAtLeast(float[] a, int from, int n, float t, long[] bits) {
        int lanes = F.length();
        int i = 0;
        if (64 % lanes == 0) {
            // whole words from vector masks
            for (; i + 64 <= n; i += 64) {
                long word = 0;
                for (int j = 0; j < 64; j += lanes) {
                    word |= FloatVector.fromArray(F, a, from + i + j).compare(VectorOperators.GE, t).toLong() << j;
                }
                bits[i >>> 6] = word;
            }
            if (i < n) {
                // the last word, part of it: whole vectors, then one masked load; its bits past n kept
                long word = 0;
                int j = 0;
                for (; i + j + lanes <= n; j += lanes) {
                    word |= FloatVector.fromArray(F, a, from + i + j).compare(VectorOperators.GE, t).toLong() << j;
                }
                if (i + j < n) {
                    VectorMask<Float> in = F.indexInRange(i + j, n);
                    word |= FloatVector.fromArray(F, a, from + i + j, in).compare(VectorOperators.GE, t, in).toLong() << j;
                }
                long low = (1L << (n - i)) - 1;
                bits[i >>> 6] = (bits[i >>> 6] & ~low) | word;
                return;
            }
        }
        for (; i < n; i++) {
            long bit = 1L << i;
            bits[i >>> 6] = a[from + i] >= t ? bits[i >>> 6] | bit : bits[i >>> 6] & ~bit;
        }
    }

    @Override
    public int split(float[] a, int from, int n, float lo, float hi, long[] above, int[] inside) {
        int lanes = F.length();
        int m = 0;
        int i = 0;
        if (64 % lanes == 0) {
            for (; i + 64 <= n; i += 64) {
                long word = 0;
                for (int j = 0; j < 64; j += lanes) {
                    FloatVector v = FloatVector.fromArray(F, a, from + i + j);
                    VectorMask<Float> high = v.compare(VectorOperators.GE, hi);
                    word |= high.toLong() << j;
                    long in = v.compare(VectorOperators.GE, lo).andNot(high).toLong();
                    while (in != 0) {
                        inside[m++] = i + j + Long.numberOfTrailingZeros(in);
                        in &= in - 1;
                    }
                }
                above[i >>> 6] = word;
            }
        }
        for (; i < n; i++) {
            float v = a[from + i];
            long bit = 1L << i;
            above[i >>> 6] = v >= hi ? above[i >>> 6] | bit : above[i >>> 6] & ~bit;
            if (v >= lo && v < hi) {
                inside[m++] = i;
            }
        }
        return m;
    }

    @Override
    public float maxIfFinite(float[] a, int from, int n) {
        FloatVector vmax = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        FloatVector bad = FloatVector.zero(F);
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, a, from + i);
            vmax = vmax.max(v);
            bad = bad.add(v.sub(v));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        float nonFinite = bad.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float v = a[from + i];
            max = Math.max(max, v);
            nonFinite += v - v;
        }
        return nonFinite == 0f ? max : Float.NaN;
    }
}
