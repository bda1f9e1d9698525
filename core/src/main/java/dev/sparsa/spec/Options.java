package dev.sparsa.spec;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;

/**
 * Everything the drop-in call ({@code Attention.forward(q, k, v, pattern, options)}) needs: what
 * the plan is made for, where it runs, and the {@link RunOptions} of the run. Immutable; each
 * {@code with…} returns a copy.
 *
 * <p>Plan-time (they end up in the plan's {@code PlanContext}; running a plan with options that
 * contradict it is refused, naming both values):
 * <ul>
 *   <li>{@code causal}: admit only keys at or before the query's absolute position.
 *   <li>{@code queryOffset}: the absolute position of query 0; {@code null} (the default) means
 *       bottom-right alignment, {@code keyLength - queryLength}, as FlashAttention does. Prefill
 *       with a past passes the past's length.
 *   <li>{@code geometry}: the plan's tile height and key-block width; {@code null} (the default)
 *       takes the geometry the chosen backend proposes for the shape and dtype (the fastest it has).
 * </ul>
 * Where and what (per call):
 * <ul>
 *   <li>{@code device}: where a call on host tensors runs; {@code null} (the default) means the
 *       preferred backend's device. A call on device tensors runs where they are.
 *   <li>{@code dispatch}: whether the drop-in call may run dense attention or the plan's
 *       block-expanded form instead of the pattern's plan when the backend's cost model says it is
 *       faster ({@link Dispatch#AUTO}, the default), or must run the plan ({@link Dispatch#SPARSE})
 *       or dense attention ({@link Dispatch#DENSE}). Calls that pass a plan run that plan.
 * </ul>
 * Run-time: {@link #run()} (scale, soft-cap, finiteness scan, output type).
 */
public record Options(boolean causal, Integer queryOffset, TileGeometry geometry, Device device, Dispatch dispatch,
                      RunOptions run) {

    public Options {
        if (run == null) {
            throw new IllegalArgumentException("run: must not be null (use RunOptions.defaults())");
        }
        if (dispatch == null) {
            throw new IllegalArgumentException("dispatch: must not be null (AUTO, SPARSE or DENSE)");
        }
    }

    /**
     * Non-causal, bottom-right alignment, the backend's geometry, the preferred device, {@link
     * Dispatch#AUTO}, default run options.
     */
    public static Options defaults() {
        return new Options(false, null, null, null, Dispatch.AUTO, RunOptions.defaults());
    }

    /** {@link #defaults()} with causal masking (bottom-right aligned). */
    public static Options causalMask() {
        return defaults().withCausal(true);
    }

    public Options withCausal(boolean c) {
        return new Options(c, queryOffset, geometry, device, dispatch, run);
    }

    public Options withQueryOffset(Integer offset) {
        return new Options(causal, offset, geometry, device, dispatch, run);
    }

    /** A fixed tiling instead of the backend's proposal ({@code null} restores the proposal). */
    public Options withGeometry(TileGeometry g) {
        return new Options(causal, queryOffset, g, device, dispatch, run);
    }

    /** Runs calls on host tensors on this device ({@code null}: the preferred backend's). */
    public Options withDevice(Device d) {
        return new Options(causal, queryOffset, geometry, d, dispatch, run);
    }

    /** Which plan the drop-in call runs: the pattern's, dense, or the cost model's choice. */
    public Options withDispatch(Dispatch d) {
        return new Options(causal, queryOffset, geometry, device, d, run);
    }

    public Options withRun(RunOptions r) {
        return new Options(causal, queryOffset, geometry, device, dispatch, r);
    }

    public Options withScale(double s) {
        return withRun(run.withScale(s));
    }

    public Options withSoftCap(float cap) {
        return withRun(run.withSoftCap(cap));
    }

    public Options withValidateFinite(boolean v) {
        return withRun(run.withValidateFinite(v));
    }

    public Options withOutputDType(DType t) {
        return withRun(run.withOutputDType(t));
    }

    /** {@link RunOptions#scale()}. */
    public double scale() {
        return run.scale();
    }

    /** {@link RunOptions#softCap()}. */
    public float softCap() {
        return run.softCap();
    }

    /** {@link RunOptions#validateFinite()}. */
    public boolean validateFinite() {
        return run.validateFinite();
    }

    /** {@link RunOptions#outputDType()}. */
    public DType outputDType() {
        return run.outputDType();
    }

    /** The scale in force for a head dimension. */
    public double scaleFor(int headDim) {
        return run.scaleFor(headDim);
    }

    /** The output type for a given input type. */
    public DType outputTypeFor(DType input) {
        return run.outputTypeFor(input);
    }

    /** The absolute position of query 0 for these lengths. */
    public int queryOffsetFor(int queryLength, int keyLength) {
        return queryOffset != null ? queryOffset : keyLength - queryLength;
    }

    /** The geometry in force: the one set, else {@code proposed}. */
    public TileGeometry geometryOr(TileGeometry proposed) {
        return geometry != null ? geometry : proposed;
    }
}
