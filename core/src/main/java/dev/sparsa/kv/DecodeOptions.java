package dev.sparsa.kv;

import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;

/**
 * Options of a decode call: the {@link RunOptions} of the arithmetic (scale, soft-cap, output type,
 * finiteness scan of Q) and the split-KV choice. Decode is always causal with the step's rows at the
 * end of each sequence, so there is no causal flag or query offset here. Immutable.
 *
 * <p>Throws {@link IllegalArgumentException} if an argument is null.
 */
public record DecodeOptions(RunOptions run, SplitKv split) {

    public DecodeOptions {
        if (run == null || split == null) {
            throw new IllegalArgumentException("run and split: must not be null");
        }
    }

    /** Default run options and the split-KV rule. */
    public static DecodeOptions defaults() {
        return new DecodeOptions(RunOptions.defaults(), SplitKv.rule());
    }

    public DecodeOptions withRun(RunOptions r) {
        return new DecodeOptions(r, split);
    }

    public DecodeOptions withSplit(SplitKv s) {
        return new DecodeOptions(run, s);
    }

    public DecodeOptions withScale(double s) {
        return withRun(run.withScale(s));
    }

    public DecodeOptions withSoftCap(float cap) {
        return withRun(run.withSoftCap(cap));
    }

    public DecodeOptions withOutputDType(DType t) {
        return withRun(run.withOutputDType(t));
    }

    public DecodeOptions withValidateFinite(boolean v) {
        return withRun(run.withValidateFinite(v));
    }
}
