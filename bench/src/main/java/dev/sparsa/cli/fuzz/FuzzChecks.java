package dev.sparsa.cli.fuzz;

import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;

/**
 * The numeric checks of a fuzz case against its fp64 oracle, shared by prefill and decode: the
 * tolerance of the input type, the LSE, rows that admit nothing, and rows that meet a planted
 * non-finite value. Each returns null when everything holds, else what failed.
 */
final class FuzzChecks {
    private FuzzChecks() {
    }

    /**
     * Finite inputs: the output within {@link Tolerance#output}, the LSE (when given) within {@link
     * Tolerance#lse(DType, double)} row by row.
     */
    static String numbers(Tensor out, Tensor lse, ReferenceResult ref, DType input) {
        double err = ref.maxRelativeError(out);
        double tol = Tolerance.output(input);
        if (!(err <= tol)) {
            return "output error " + err + " over the tolerance " + tol;
        }
        if (lse != null) {
            double ratio = ref.maxLseErrorRatio(lse, input);
            if (!(ratio <= 1)) {
                return "LSE error " + ref.maxLseError(lse) + " over the tolerance (" + ratio + " × a row's bound)";
            }
        }
        return null;
    }

    /**
     * Every row the oracle leaves empty (LSE −∞; the oracle computed every row, as the decode oracle
     * does) is exactly 0, with LSE −∞ when an LSE is given.
     */
    static String emptyRows(Tensor out, Tensor lse, ReferenceResult ref) {
        int[] shape = out.shape();
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int r = 0; r < shape[2]; r++) {
                    if (ref.lse(b, h, r) != Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    for (int d = 0; d < shape[3]; d++) {
                        if (out.get(b, h, r, d) != 0f) {
                            return "row (" + b + ", " + h + ", " + r + ") admits nothing but element " + d + " is "
                                    + out.get(b, h, r, d);
                        }
                    }
                    if (lse != null && lse.get(b, h, r, 0) != Float.NEGATIVE_INFINITY) {
                        return "row (" + b + ", " + h + ", " + r + ") admits nothing but its LSE is " + lse.get(b, h, r, 0);
                    }
                }
            }
        }
        return null;
    }

    /**
     * With a planted non-finite value: NaN exactly where the oracle has NaN ({@code mayGrow}: a NaN
     * in V may also reach rows that share its chunk, as 0 · NaN), the other rows close to the oracle.
     */
    static String nonFinite(Tensor out, ReferenceResult ref, DType input, boolean mayGrow) {
        double tol = 1e-4 + 10 * Tolerance.output(input);
        int[] shape = out.shape();
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int r = 0; r < shape[2]; r++) {
                    boolean refNaN = false;
                    for (int d = 0; d < shape[3] && !refNaN; d++) {
                        refNaN = Double.isNaN(ref.out(b, h, r, d));
                    }
                    boolean gotNaN = false;
                    for (int d = 0; d < shape[3] && !gotNaN; d++) {
                        gotNaN = Float.isNaN(out.get(b, h, r, d));
                    }
                    if (refNaN && !gotNaN) {
                        return "row (" + b + ", " + h + ", " + r + ") meets a non-finite value but is not NaN";
                    }
                    if (gotNaN && !refNaN && !mayGrow) {
                        return "row (" + b + ", " + h + ", " + r + ") is NaN but the oracle's is finite";
                    }
                    if (!gotNaN) {
                        for (int d = 0; d < shape[3]; d++) {
                            double diff = Math.abs(out.get(b, h, r, d) - ref.out(b, h, r, d));
                            if (!(diff <= tol)) {
                                return "row (" + b + ", " + h + ", " + r + ") element " + d + " off by " + diff;
                            }
                        }
                    }
                }
            }
        }
        return null;
    }

    /** Whether two tensors hold the same values bit for bit, in their logical order. */
    static boolean sameBits(Tensor a, Tensor b) {
        float[] x = a.toFloatArray();
        float[] y = b.toFloatArray();
        if (x.length != y.length) {
            return false;
        }
        for (int i = 0; i < x.length; i++) {
            if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                return false;
            }
        }
        return true;
    }
}
