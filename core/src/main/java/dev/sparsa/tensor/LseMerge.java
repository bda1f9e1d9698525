package dev.sparsa.tensor;

import dev.sparsa.tensor.Tensor;

/**
 * Exact merging of partial attention results over disjoint key sets through their log-sum-exps:
 * {@code lse = log(e^a + e^b)}, {@code out = e^(a−lse)·outA + e^(b−lse)·outB}. Two empty partials
 * (both −∞) merge to 0 and −∞, never NaN.
 */
public final class LseMerge {
    private LseMerge() {
    }

    /**
     * Merges partial B into accumulator A for one row, in place.
     *
     * @param outA   accumulator row, {@code dim} values from {@code offA}
     * @param lseA   accumulator LSE
     * @param outB   partial row, {@code dim} values from {@code offB}
     * @param lseB   partial LSE
     * @return the merged LSE (the row of {@code outA} now holds the merged output)
     */
    public static float mergeRow(float[] outA, int offA, float lseA, float[] outB, int offB, float lseB, int dim) {
        if (lseB == Float.NEGATIVE_INFINITY) {
            return lseA;
        }
        if (lseA == Float.NEGATIVE_INFINITY) {
            System.arraycopy(outB, offB, outA, offA, dim);
            return lseB;
        }
        double m = Math.max(lseA, lseB);
        double wa = Math.exp(lseA - m);
        double wb = Math.exp(lseB - m);
        double sum = wa + wb;
        for (int d = 0; d < dim; d++) {
            outA[offA + d] = (float) ((wa * outA[offA + d] + wb * outB[offB + d]) / sum);
        }
        return (float) (m + Math.log(sum));
    }

    /**
     * Merges two partial results computed over disjoint key sets into {@code outDst}/{@code lseDst}
     * (which may be A's or B's tensors).
     *
     * @throws IllegalArgumentException if the shapes differ or an LSE tensor is not {@code [.., .., n, 1]}
     */
    public static void merge(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB, Tensor outDst, Tensor lseDst) {
        int[] s = outA.shape();
        for (Object[] t : new Object[][] {{"outB", outB}, {"outDst", outDst}}) {
            if (!java.util.Arrays.equals(((Tensor) t[1]).shape(), s)) {
                throw new IllegalArgumentException(t[0] + ": shape " + java.util.Arrays.toString(((Tensor) t[1]).shape())
                        + " differs from outA's " + java.util.Arrays.toString(s));
            }
        }
        for (Object[] t : new Object[][] {{"lseA", lseA}, {"lseB", lseB}, {"lseDst", lseDst}}) {
            Tensor l = (Tensor) t[1];
            if (l == null || l.batch() != s[0] || l.heads() != s[1] || l.seqLen() != s[2] || l.dim() != 1) {
                throw new IllegalArgumentException(t[0] + ": expected [" + s[0] + ", " + s[1] + ", " + s[2] + ", 1], got "
                        + (l == null ? "null" : java.util.Arrays.toString(l.shape())));
            }
        }
        float[] a = new float[s[3]];
        float[] b = new float[s[3]];
        for (int bi = 0; bi < s[0]; bi++) {
            for (int h = 0; h < s[1]; h++) {
                for (int r = 0; r < s[2]; r++) {
                    outA.readRow(bi, h, r, a, 0);
                    outB.readRow(bi, h, r, b, 0);
                    float l = mergeRow(a, 0, lseA.get(bi, h, r, 0), b, 0, lseB.get(bi, h, r, 0), s[3]);
                    if (l == Float.NEGATIVE_INFINITY) {
                        java.util.Arrays.fill(a, 0f);
                    }
                    outDst.writeRow(bi, h, r, a, 0);
                    lseDst.set(bi, h, r, 0, l);
                }
            }
        }
    }
}
