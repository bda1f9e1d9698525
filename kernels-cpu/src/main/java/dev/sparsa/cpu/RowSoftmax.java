package dev.sparsa.cpu;

/**
 * The plain-Java online-softmax step over row-major scores, shared by {@link TileMath#softmaxByRow}
 * and the scalar decode math: for each row {@code r < rows} and its {@code n} scores {@code s[r·ld +
 * j]}, {@code m' = max(m, max_j s)}, {@code p_j = exp(s_j − m')} written over the scores, {@code
 * alpha = exp(m − m')} and {@code l' = l·alpha + Σ p}. A row whose maximum is still −∞ gets
 * probabilities 0 and alpha 0, never NaN.
 */
final class RowSoftmax {
    private RowSoftmax() {
    }

    static void step(float[] s, int ld, int rows, int n, float[] m, float[] l, float[] alpha) {
        for (int r = 0; r < rows; r++) {
            int base = r * ld;
            float mx = m[r];
            for (int j = 0; j < n; j++) {
                mx = Math.max(mx, s[base + j]);
            }
            float safe = mx == Float.NEGATIVE_INFINITY ? 0f : mx;
            float sum = 0f;
            for (int j = 0; j < n; j++) {
                float p = (float) Math.exp(s[base + j] - safe);
                s[base + j] = p;
                sum += p;
            }
            float a = (float) Math.exp(m[r] - safe);
            l[r] = l[r] * a + sum;
            m[r] = mx;
            alpha[r] = a;
        }
    }
}
