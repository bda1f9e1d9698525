package dev.sparsa.attention;

import dev.sparsa.plan.TileGeometry;
import dev.sparsa.tensor.DType;

/**
 * How to run one attention call. Immutable; each {@code with…} returns a copy.
 *
 * <ul>
 *   <li>{@code scale}: multiplies q·k; {@code NaN} (the default) means {@code 1/sqrt(headDim)}.
 *   <li>{@code causal}: admit only keys at or before the query's absolute position.
 *   <li>{@code queryOffset}: the absolute position of query 0; {@code null} (the default) means
 *       bottom-right alignment, {@code keyLength - queryLength}, as FlashAttention does. Prefill
 *       with a past passes the past's length.
 *   <li>{@code softCap}: when {@code > 0}, scores become {@code cap·tanh(s/cap)}; 0 turns it off.
 *   <li>{@code validateFinite}: scan Q, K, V for NaN/Inf before running and throw naming the index.
 *   <li>{@code outputDType}: the output's type; {@code null} (the default) means Q's type.
 *   <li>{@code geometry}: the plan's tile height and key-block width (64×64 by default).
 * </ul>
 */
public record Options(double scale, boolean causal, Integer queryOffset, float softCap, boolean validateFinite,
                      DType outputDType, TileGeometry geometry) {

    public Options {
        if (!Double.isNaN(scale) && (!Double.isFinite(scale) || scale <= 0)) {
            throw new IllegalArgumentException("scale: must be finite and > 0 (or NaN for 1/sqrt(headDim)), got " + scale);
        }
        if (!(softCap >= 0) || Float.isInfinite(softCap)) {
            throw new IllegalArgumentException("softCap: must be finite and >= 0 (0 turns it off), got " + softCap);
        }
        if (geometry == null) {
            throw new IllegalArgumentException("geometry: must not be null");
        }
    }

    /** Non-causal, default scale, no soft-cap, output in Q's type, 64×64 tiles. */
    public static Options defaults() {
        return new Options(Double.NaN, false, null, 0f, false, null, TileGeometry.DEFAULT);
    }

    /** {@link #defaults()} with causal masking (bottom-right aligned). */
    public static Options causalMask() {
        return defaults().withCausal(true);
    }

    public Options withScale(double s) {
        return new Options(s, causal, queryOffset, softCap, validateFinite, outputDType, geometry);
    }

    public Options withCausal(boolean c) {
        return new Options(scale, c, queryOffset, softCap, validateFinite, outputDType, geometry);
    }

    public Options withQueryOffset(Integer offset) {
        return new Options(scale, causal, offset, softCap, validateFinite, outputDType, geometry);
    }

    public Options withSoftCap(float cap) {
        return new Options(scale, causal, queryOffset, cap, validateFinite, outputDType, geometry);
    }

    public Options withValidateFinite(boolean v) {
        return new Options(scale, causal, queryOffset, softCap, v, outputDType, geometry);
    }

    public Options withOutputDType(DType t) {
        return new Options(scale, causal, queryOffset, softCap, validateFinite, t, geometry);
    }

    public Options withGeometry(TileGeometry g) {
        return new Options(scale, causal, queryOffset, softCap, validateFinite, outputDType, g);
    }

    /** The scale in force for a head dimension. */
    public double scaleFor(int headDim) {
        return Double.isNaN(scale) ? 1.0 / Math.sqrt(headDim) : scale;
    }

    /** The absolute position of query 0 for these lengths. */
    public int queryOffsetFor(int queryLength, int keyLength) {
        return queryOffset != null ? queryOffset : keyLength - queryLength;
    }

    /** The output type for a given input type. */
    public DType outputTypeFor(DType input) {
        return outputDType != null ? outputDType : input;
    }
}
