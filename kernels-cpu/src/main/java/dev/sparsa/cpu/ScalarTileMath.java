package dev.sparsa.cpu;

/** The plain-Java tile arithmetic: runs on any JVM, used when the Vector API is not readable. */
final class ScalarTileMath implements TileMath {

    @Override
    public KernelFlavour flavour() {
        return KernelFlavour.SCALAR;
    }

    @Override
    public String description() {
        return "scalar (plain Java)";
    }

    @Override
    public int lanes() {
        return 1;
    }

    @Override
    public void scores(float[] qT, int ldQ, int rowsPad, float[] k, int[] kOff, int dim, int n, float[] s, int ldS) {
        for (int j = 0; j < n; j++) {
            int so = j * ldS;
            for (int r = 0; r < rowsPad; r++) {
                s[so + r] = 0f;
            }
            int ko = kOff[j];
            for (int d = 0; d < dim; d++) {
                float kd = k[ko + d];
                int qo = d * ldQ;
                for (int r = 0; r < rowsPad; r++) {
                    s[so + r] += kd * qT[qo + r];
                }
            }
        }
    }

    /** The same sums in the same order as {@link #scores}, so bitwise the same scores. */
    @Override
    public void scoresByRow(float[] q, int rows, float[] k, int[] kOff, int dim, int n, float[] s, int ldR) {
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < n; j++) {
                int ko = kOff[j];
                float acc = 0f;
                for (int d = 0, qo = r * dim; d < dim; d++) {
                    acc += k[ko + d] * q[qo + d];
                }
                s[r * ldR + j] = acc;
            }
        }
    }

    @Override
    public void softCap(float[] s, int ldS, int n, int rowsPad, float cap) {
        for (int j = 0; j < n; j++) {
            for (int r = 0, i = j * ldS; r < rowsPad; r++, i++) {
                s[i] = SoftCapArithmetic.softCap(s[i], cap);
            }
        }
    }

    @Override
    public void addKeyBias(float[] s, int ldS, int n, int rowsPad, float[] bias) {
        for (int j = 0; j < n; j++) {
            float w = bias[j];
            for (int r = 0, i = j * ldS; r < rowsPad; r++, i++) {
                s[i] += w;
            }
        }
    }

    @Override
    public void softmax(float[] s, int ldS, int n, int rowsPad, float[] m, float[] l, float[] alpha) {
        for (int r = 0; r < rowsPad; r++) {
            float mx = m[r];
            for (int j = 0, i = r; j < n; j++, i += ldS) {
                mx = Math.max(mx, s[i]);
            }
            float safe = mx == Float.NEGATIVE_INFINITY ? 0f : mx;
            float sum = 0f;
            for (int j = 0, i = r; j < n; j++, i += ldS) {
                float p = (float) Math.exp(s[i] - safe);
                s[i] = p;
                sum += p;
            }
            float a = (float) Math.exp(m[r] - safe);
            l[r] = l[r] * a + sum;
            m[r] = mx;
            alpha[r] = a;
        }
    }

    @Override
    public void accumulate(float[] p, int ldS, int n, int rows, float[] v, int[] vOff, int cols, float[] o, int ldO,
                           float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        for (int r = 0; r < rows; r++) {
            int oo = r * ldO;
            float a = alpha[r];
            for (int c = 0; c < cols; c++) {
                o[oo + c] = fresh ? 0f : o[oo + c] * a;
            }
            for (int j = 0; j < n; j++) {
                float pj = p[j * ldS + r];
                int vo = vOff[j];
                for (int c = 0; c < cols; c++) {
                    o[oo + c] += pj * v[vo + c];
                }
            }
            if (dst != null) {
                normalise(o, oo, l[r], dst, dstAt[r], cols);
            }
        }
    }

    @Override
    public void widenBf16(short[] src, int srcAt, float[] dst, int dstAt, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstAt + i] = Float.intBitsToFloat(src[srcAt + i] << 16);
        }
    }
}
