package dev.sparsa.reference;

import dev.sparsa.tensor.DType;

/**
 * The numerics contract's tolerances against the fp64 oracle, by input dtype: the one table that the
 * conformance suite, the backends' tests and the command line's checks read. Errors are measured per
 * (batch, head) slice by {@link ReferenceResult#maxRelativeError}, and per row by
 * {@link ReferenceResult#maxLseError} (or, with e4m3's magnitude term, {@link ReferenceResult#maxLseErrorRatio}).
 *
 * <table>
 *   <caption>Tolerances</caption>
 *   <tr><th>input</th><th>relative Frobenius error of the output</th><th>absolute LSE error</th></tr>
 *   <tr><td>f32</td><td>1e-5</td><td>1e-4</td></tr>
 *   <tr><td>f16</td><td>2e-3</td><td>1e-2</td></tr>
 *   <tr><td>bf16</td><td>1e-2</td><td>1e-2</td></tr>
 *   <tr><td>e4m3</td><td>5e-2</td><td>1e-2 + A / 2048</td></tr>
 * </table>
 *
 * <p>The oracle reads an e4m3 tensor's values ({@code code × scale}), so these bounds cover what a
 * kernel does after its inputs, not the quantisation of the inputs. The e4m3 bound leaves room for a
 * GPU kernel that rounds the probabilities to e4m3 before P·V, as FP8 tensor-core kernels do (3
 * mantissa bits: up to 1/16 of each probability, about 2.4e-2 of the output on random problems); the
 * CPU computes in f32 and stays near the bf16 output's rounding.
 *
 * <p>The e4m3 LSE bound grows with the row's score magnitude {@code A} ({@link
 * ReferenceResult#scoreMagnitude}: the largest {@code |scale| · Σ_d |q_d · k_d|} over its admitted keys):
 * an FP8 tensor core adds its products in an accumulator of about 14 significant bits aligned to the
 * largest term, so Q·Kᵀ's absolute error, and with it the LSE's, is proportional to {@code A} rather
 * than bounded. {@code A / 2048} is more than twice what a model of that accumulator gives on
 * large-score problems ({@code E4m3ToleranceTest}); for unit-variance queries and keys at head dim
 * 128, {@code A} is about 7–12 and the bound 1.3e-2–1.6e-2.
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
            case E4M3 -> 5e-2;
        };
    }

    /**
     * The largest absolute error of the log-sum-exp a backend may have for inputs of {@code input}, without
     * e4m3's magnitude term ({@link #lse(DType, double)}).
     *
     * @param input the dtype of Q, K and V
     * @return the bound
     */
    public static double lse(DType input) {
        return input == DType.F32 ? 1e-4 : 1e-2;
    }

    /** The e4m3 LSE bound's growth per unit of score magnitude: 2^-11. */
    public static final double E4M3_LSE_PER_MAGNITUDE = 0x1p-11;

    /**
     * The largest absolute error of the log-sum-exp of a row whose score magnitude is {@code
     * scoreMagnitude} ({@link ReferenceResult#scoreMagnitude}): {@link #lse(DType)}, plus {@code
     * scoreMagnitude / 2048} for e4m3 inputs.
     *
     * @param input          the dtype of Q and K
     * @param scoreMagnitude the row's {@code max |scale| · Σ_d |q_d · k_d|} over its admitted keys, ≥ 0
     * @return the bound
     */
    public static double lse(DType input, double scoreMagnitude) {
        return lse(input) + (input == DType.E4M3 ? scoreMagnitude * E4M3_LSE_PER_MAGNITUDE : 0);
    }
}
