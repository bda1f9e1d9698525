package dev.sparsa.reference;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;

/**
 * The fp64 oracle's answer for a set of query rows (the same rows in every slice): outputs and
 * natural-log LSEs in double precision, with the error measures of the numerics contract.
 */
public final class ReferenceResult {
    private final AttentionShape shape;
    private final int[] rows;
    private final double[] out;
    private final double[] lse;
    private final double[] magnitude;

    ReferenceResult(AttentionShape shape, int[] rows, double[] out, double[] lse, double[] magnitude) {
        this.shape = shape;
        this.rows = rows;
        this.out = out;
        this.lse = lse;
        this.magnitude = magnitude;
    }

    public AttentionShape shape() {
        return shape;
    }

    /** The query rows this result holds, in order ({@code rowIndex} below indexes this array). */
    public int[] rows() {
        return rows.clone();
    }

    public double out(int batch, int head, int rowIndex, int d) {
        return out[((slice(batch, head) * rows.length) + rowIndex) * shape.valueDim() + d];
    }

    /** The row's LSE; −∞ when it admits no key. */
    public double lse(int batch, int head, int rowIndex) {
        return lse[slice(batch, head) * rows.length + rowIndex];
    }

    /**
     * The row's score magnitude: the largest, over its admitted keys, of {@code |scale| · Σ_d |q_d · k_d|}
     * (before soft-capping and weights), 0 when it admits no key. What a dot product's rounding error
     * is proportional to when its accumulator is narrower than the products' range
     * ({@link Tolerance#lse(DType, double)}).
     */
    public double scoreMagnitude(int batch, int head, int rowIndex) {
        return magnitude[slice(batch, head) * rows.length + rowIndex];
    }

    /**
     * The largest, over (batch, head) slices, relative Frobenius error {@code ‖out − ref‖ / ‖ref‖} of
     * {@code actual} on this result's rows. A slice whose reference is all zero (no admitted key
     * anywhere) contributes {@code ‖out‖}, so it passes only when the output is exactly zero there.
     * NaN anywhere gives NaN.
     */
    public double maxRelativeError(Tensor actual) {
        double worst = 0;
        float[] row = new float[shape.valueDim()];
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.qHeads(); h++) {
                double num = 0;
                double den = 0;
                for (int i = 0; i < rows.length; i++) {
                    actual.readRow(b, h, rows[i], row, 0);
                    for (int d = 0; d < row.length; d++) {
                        double r = out(b, h, i, d);
                        double e = row[d] - r;
                        num += e * e;
                        den += r * r;
                    }
                }
                double err = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
                if (Double.isNaN(err)) {
                    return Double.NaN;
                }
                worst = Math.max(worst, err);
            }
        }
        return worst;
    }

    /**
     * The largest absolute LSE error on this result's rows; a row whose reference is −∞ must be −∞
     * exactly (else the error is +∞).
     *
     * @param actualLse {@code [batch, qHeads, queryLength, 1]}
     */
    public double maxLseError(Tensor actualLse) {
        return worstLse(actualLse, null);
    }

    /**
     * The largest ratio of a row's absolute LSE error to its bound {@link Tolerance#lse(DType, double)
     * Tolerance.lse(input, scoreMagnitude(row))}: at most 1 when every row is within the numerics
     * contract. A row whose reference is −∞ must be −∞ exactly (else +∞); NaN anywhere gives NaN.
     *
     * @param actualLse {@code [batch, qHeads, queryLength, 1]}
     * @param input     the dtype of Q and K
     */
    public double maxLseErrorRatio(Tensor actualLse, DType input) {
        return worstLse(actualLse, java.util.Objects.requireNonNull(input, "input"));
    }

    /** The largest row LSE error, absolute ({@code input} null) or over the row's bound for {@code input}. */
    private double worstLse(Tensor actualLse, DType input) {
        double worst = 0;
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.qHeads(); h++) {
                for (int i = 0; i < rows.length; i++) {
                    double r = lse(b, h, i);
                    double a = actualLse.get(b, h, rows[i], 0);
                    if (Double.isNaN(a)) {
                        return Double.NaN;
                    }
                    double e = r == Double.NEGATIVE_INFINITY ? (a == Double.NEGATIVE_INFINITY ? 0 : Double.POSITIVE_INFINITY)
                            : Math.abs(a - r);
                    worst = Math.max(worst, input == null ? e : e / Tolerance.lse(input, scoreMagnitude(b, h, i)));
                }
            }
        }
        return worst;
    }

    /**
     * Mean recall of {@code sparse} against {@code dense} over the common rows: {@code exp(lseSparse −
     * lseDense)} per row, 0 for a row with no admitted key. Both must hold the same rows and
     * unweighted scores.
     */
    public static double meanRecall(ReferenceResult sparse, ReferenceResult dense) {
        if (!java.util.Arrays.equals(sparse.rows, dense.rows) || !sparse.shape.equals(dense.shape)) {
            throw new IllegalArgumentException("recall: the two results must hold the same shape and rows");
        }
        double sum = 0;
        int n = 0;
        for (int i = 0; i < sparse.lse.length; i++) {
            double s = sparse.lse[i];
            double d = dense.lse[i];
            sum += s == Double.NEGATIVE_INFINITY || d == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s - d);
            n++;
        }
        return n == 0 ? 0 : sum / n;
    }

    /**
     * The relative Frobenius error between two reference results over their common rows, the
     * largest over slices (what a pattern loses against dense attention, independent of kernels).
     */
    public static double maxRelativeError(ReferenceResult actual, ReferenceResult ref) {
        if (!java.util.Arrays.equals(actual.rows, ref.rows) || !actual.shape.equals(ref.shape)) {
            throw new IllegalArgumentException("relative error: the two results must hold the same shape and rows");
        }
        int per = ref.rows.length * ref.shape.valueDim();
        double worst = 0;
        for (int s = 0; s < ref.shape.slices(); s++) {
            double num = 0;
            double den = 0;
            for (int i = s * per; i < (s + 1) * per; i++) {
                double e = actual.out[i] - ref.out[i];
                num += e * e;
                den += ref.out[i] * ref.out[i];
            }
            worst = Math.max(worst, den == 0 ? Math.sqrt(num) : Math.sqrt(num / den));
        }
        return worst;
    }

    private int slice(int batch, int head) {
        return batch * shape.qHeads() + head;
    }
}
