package dev.sparsa.backend;

import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * The checks of a ragged run before any kernel: the tensors hold the batch (layout, lengths, heads
 * and dims of the plans), one dtype, one device (the prepared plan's, or the host), outputs of the
 * batch's query-side shape that do not overlap the inputs, unit last-axis strides and, when asked,
 * finite values in every sequence's rows (padding may hold anything). Each sequence's run then
 * passes {@link ForwardArguments} on its views.
 */
public final class RaggedArguments {
    private RaggedArguments() {
    }

    /**
     * @return the shape of the whole tensors
     * @throws IllegalArgumentException naming the first argument that does not fit
     * @throws IllegalStateException if the prepared plan is closed
     */
    public static AttentionShape validate(PreparedRaggedPlan prepared, String backend, Tensor q, Tensor k, Tensor v,
                                          Tensor out, Tensor lse, RunOptions options) {
        if (prepared == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (!prepared.backend().name().equals(backend)) {
            throw new IllegalArgumentException("plan: prepared by " + prepared.backend().name() + ", not by " + backend
                    + "; prepare it with this backend");
        }
        prepared.requireOpen();
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        RaggedPlan plan = prepared.plan();
        RaggedBatch batch = plan.batch();
        AttentionShape s = batch.shapeOf(q, k, v);
        AttentionShape h = plan.headShape();
        if (s.qHeads() != h.qHeads() || s.kvHeads() != h.kvHeads() || s.headDim() != h.headDim()
                || s.valueDim() != h.valueDim()) {
            throw new IllegalArgumentException("plan: built for " + h.qHeads() + " query heads, " + h.kvHeads()
                    + " key/value heads, dims " + h.headDim() + "/" + h.valueDim() + " but the tensors have "
                    + s.qHeads() + ", " + s.kvHeads() + ", " + s.headDim() + "/" + s.valueDim());
        }
        ForwardArguments.checkDtypesAndOutputs(s, q, k, v, out, lse, " (q's sequence axis)");
        Device where = ForwardArguments.device(q, k, v, out, lse);
        if (!where.isHost() && !where.equals(prepared.device())) {
            throw new IllegalArgumentException("plan: prepared for " + prepared.device() + " but the tensors are on " + where);
        }
        ForwardArguments.checkRowsAndAliasing(q, k, v, out, lse);
        if (options.validateFinite()) {
            if (!q.isHost()) {
                throw new IllegalArgumentException("options: validateFinite scans host tensors; these are on " + q.device());
            }
            for (int i = 0; i < batch.sequences(); i++) {
                String at = " of sequence " + i;
                batch.queries(q, i).requireFinite("q" + at);
                batch.keys(k, i).requireFinite("k" + at);
                batch.keys(v, i).requireFinite("v" + at);
            }
        }
        return s;
    }
}
