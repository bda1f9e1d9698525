package dev.sparsa.reference;

import dev.sparsa.tensor.DType;

/**
 * The numerics contract's tolerances against the fp64 oracle, by input dtype: the one table that the
 * conformance suite, the backends' tests and the command line's checks read. Errors are measured per
 * (batch, head) slice by {@link ReferenceResult#maxRelativeError} and {@link ReferenceResult#maxLseError}.
 *
 * <table>
 *   <caption>Tolerances</caption>
 *   <tr><th>input</th><th>relative Frobenius error of the output</th><th>absolute LSE error</th></tr>
 *   <tr><td>f32</td><td>1e-5</td><td>1e-4</td></tr>
 *   <tr><td>f16</td><td>2e-3</td><td>1e-2</td></tr>
 *   <tr><td>bf16</td><td>1e-2</td><td>1e-2</td></tr>
 * </table>
 */
public final class Tolerance {
    private Tolerance() {
    }

    /**
     * The largest relative Frobenius error of the output a backend may have for inputs of {@code input}.
     *
     * @param input the dtype of Q, K and V
     * @return the bound
     */
    public static double output(DType input) {
        return switch (input) {
            case F32 -> 1e-5;
            case F16 -> 2e-3;
            case BF16 -> 1e-2;
        };
    }

    /**
     * The largest absolute error of the log-sum-exp a backend may have for inputs of {@code input}.
     *
     * @param input the dtype of Q, K and V
     * @return the bound
     */
    public static double lse(DType input) {
        return input == DType.F32 ? 1e-4 : 1e-2;
    }
}
