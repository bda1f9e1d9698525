package dev.sparsa.cpu;

import dev.sparsa.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The decode arithmetic in plain loops: the fallback where the Vector API is absent. */
final class ScalarDecodeMath implements DecodeMath {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    @Override
    public KernelFlavour flavour() {
        return KernelFlavour.SCALAR;
    }

    private static float at(MemorySegment seg, long off, DType dtype, int d) {
        return dtype == DType.F32 ? seg.get(F32, off + 4L * d) : Float.intBitsToFloat(seg.get(I16, off + 2L * d) << 16);
    }

    @Override
    public void scores(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, MemorySegment values,
                       long[] vOff, int dimV, DType dtype, int n, float[] s, int ldS, boolean read) {
        for (int j = 0; j < n; j++) {
            long off = kOff[j];
            for (int x = 0; x < nq; x++) {
                float acc = 0f;
                for (int d = 0, qi = x * ldQ; d < dim; d++, qi++) {
                    acc += q[qi] * at(keys, off, dtype, d);
                }
                s[x * ldS + j] = acc;
            }
        }
    }

    @Override
    public void readRows(MemorySegment keys, long[] kOff, int dim, MemorySegment values, long[] vOff, int dimV,
                         DType dtype, int n) {
        // plain loops gain nothing from reading ahead
    }

    @Override
    public void questBounds(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff, long[] maxOff,
                            DType dtype, int n, float[] out, int ldS, boolean bySign) {
        // Math.max of both products whatever bySign says: the same bits (DecodeMath.boundsBySign)
        for (int i = 0; i < n; i++) {
            for (int x = 0; x < nq; x++) {
                float acc = 0f;
                for (int c = 0; c < dim; c++) {
                    float qc = q[x * ldQ + c];
                    acc += Math.max(qc * at(bounds, minOff[i], dtype, c), qc * at(bounds, maxOff[i], dtype, c));
                }
                out[x * ldS + i] = acc;
            }
        }
    }

    @Override
    public void softmax(float[] s, int ldS, int nq, int n, float[] m, float[] l, float[] alpha) {
        RowSoftmax.step(s, ldS, nq, n, m, l, alpha);
    }

    @Override
    public void accumulate(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, DType dtype, int dimV,
                           float[] o, int ldO, float[] alpha, boolean read) {
        for (int x = 0; x < nq; x++) {
            int oo = x * ldO;
            float a = alpha[x];
            for (int c = 0; c < dimV; c++) {
                o[oo + c] *= a;
            }
            for (int j = 0; j < n; j++) {
                float pj = p[x * ldS + j];
                long off = vOff[j];
                for (int c = 0; c < dimV; c++) {
                    o[oo + c] += pj * at(values, off, dtype, c);
                }
            }
        }
    }
}
