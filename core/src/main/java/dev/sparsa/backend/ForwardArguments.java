package dev.sparsa.backend;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.attention.Options;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;

/**
 * The checks every backend runs before a kernel: shapes against the plan, dtypes, output and LSE
 * tensors, unit last-axis strides and (when asked) finiteness. One place, so that every backend
 * refuses the same inputs with the same messages.
 */
public final class ForwardArguments {
    private ForwardArguments() {
    }

    /**
     * @return the shape of the call
     * @throws IllegalArgumentException naming the first argument that does not fit
     */
    public static AttentionShape validate(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                          Options options) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        if (!s.equals(plan.shape())) {
            throw new IllegalArgumentException("plan: built for " + plan.shape() + " but the tensors have " + s);
        }
        if (k.dtype() != q.dtype() || v.dtype() != q.dtype()) {
            throw new IllegalArgumentException("dtype: q, k and v must share one dtype, got " + q.dtype() + ", "
                    + k.dtype() + ", " + v.dtype());
        }
        if (out == null) {
            throw new IllegalArgumentException("out: must not be null");
        }
        if (out.batch() != s.batch() || out.heads() != s.qHeads() || out.seqLen() != s.queryLength()
                || out.dim() != s.valueDim()) {
            throw new IllegalArgumentException("out: expected shape [" + s.batch() + ", " + s.qHeads() + ", "
                    + s.queryLength() + ", " + s.valueDim() + "], got " + java.util.Arrays.toString(out.shape()));
        }
        if (out.dtype() != DType.F32 && out.dtype() != q.dtype()) {
            throw new IllegalArgumentException("out: dtype must be f32 or the input's " + q.dtype() + ", got " + out.dtype());
        }
        if (lse != null) {
            if (lse.dtype() != DType.F32 || lse.batch() != s.batch() || lse.heads() != s.qHeads()
                    || lse.seqLen() != s.queryLength() || lse.dim() != 1) {
                throw new IllegalArgumentException("lse: expected f32 [" + s.batch() + ", " + s.qHeads() + ", "
                        + s.queryLength() + ", 1], got " + lse.dtype() + " " + java.util.Arrays.toString(lse.shape()));
            }
        }
        for (Object[] t : new Object[][] {{"q", q}, {"k", k}, {"v", v}, {"out", out}}) {
            if (!((Tensor) t[1]).isRowContiguous()) {
                throw new IllegalArgumentException(t[0] + ": the last axis must have stride 1, got strides "
                        + java.util.Arrays.toString(((Tensor) t[1]).strides()));
            }
        }
        if (options.validateFinite()) {
            q.requireFinite("q");
            k.requireFinite("k");
            v.requireFinite("v");
        }
        return s;
    }
}
