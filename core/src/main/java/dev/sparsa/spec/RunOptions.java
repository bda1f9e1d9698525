package dev.sparsa.spec;

import dev.sparsa.tensor.DType;

/**
 * What may change from one run of a plan to the next: the arithmetic of the scores and the output's
 * type. What a plan was made for (shape, causality, query offset, tiling) lives in the plan and is
 * not here, so a backend's {@code forward} cannot be told anything that contradicts its plan.
 * Immutable; each {@code with…} returns a copy.
 *
 * <ul>
 *   <li>{@code scale}: multiplies q·k; {@code NaN} (the default) means {@code 1/sqrt(headDim)}.
 *   <li>{@code softCap}: when {@code > 0}, scores become {@code cap·tanh(s/cap)}; 0 turns it off.
 *   <li>{@code validateFinite}: scan Q, K, V for NaN/Inf before running and throw naming the index
 *       (host tensors only).
 *   <li>{@code outputDType}: the output's type; {@code null} (the default) means Q's type.
 * </ul>
 *
 * <p>Throws {@link IllegalArgumentException} if the scale is not finite and positive (or NaN), or its f32
 *     value is 0 or infinite, or the soft-cap is negative or not finite
 */
public record RunOptions(double scale, float softCap, boolean validateFinite, DType outputDType) {

    public RunOptions {
        if (!Double.isNaN(scale) && (!Double.isFinite(scale) || scale <= 0 || (float) scale == 0f
                || Float.isInfinite((float) scale))) {
            throw new IllegalArgumentException("scale: must be finite and > 0 in f32 (or NaN for 1/sqrt(headDim)), got "
                    + scale);
        }
        if (!(softCap >= 0) || Float.isInfinite(softCap)) {
            throw new IllegalArgumentException("softCap: must be finite and >= 0 (0 turns it off), got " + softCap);
        }
    }

    /** Default scale, no soft-cap, no finiteness scan, output in Q's type. */
    public static RunOptions defaults() {
        return new RunOptions(Double.NaN, 0f, false, null);
    }

    public RunOptions withScale(double s) {
        return new RunOptions(s, softCap, validateFinite, outputDType);
    }

    public RunOptions withSoftCap(float cap) {
        return new RunOptions(scale, cap, validateFinite, outputDType);
    }

    public RunOptions withValidateFinite(boolean v) {
        return new RunOptions(scale, softCap, v, outputDType);
    }

    public RunOptions withOutputDType(DType t) {
        return new RunOptions(scale, softCap, validateFinite, t);
    }

    /** The scale in force for a head dimension. */
    public double scaleFor(int headDim) {
        return Double.isNaN(scale) ? 1.0 / Math.sqrt(headDim) : scale;
    }

    /** The output type for a given input type: the one set, else {@link DType#defaultOutput()}. */
    public DType outputTypeFor(DType input) {
        return outputDType != null ? outputDType : input.defaultOutput();
    }
}
