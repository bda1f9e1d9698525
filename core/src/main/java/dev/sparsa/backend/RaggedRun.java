package dev.sparsa.backend;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * A ragged batch run through the SPI, sequence by sequence: each sequence's views of Q, K, V, the
 * output and the LSE go to the backend's {@code forward} with the sequence's prepared plan; rows no
 * kernel writes (sequences without keys, and padded rows past a sequence's queries) get 0 and −∞.
 * Every check runs before the first kernel.
 */
final class RaggedRun {
    private RaggedRun() {
    }

    static void run(AttentionBackend backend, PreparedRaggedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out,
                    Tensor lse, RunOptions options) {
        AttentionShape whole = RaggedArguments.validate(prepared, backend.name(), q, k, v, out, lse, options);
        RaggedBatch batch = prepared.plan().batch();
        RunOptions each = options.withValidateFinite(false); // scanned above, on every sequence's rows
        for (int i = 0; i < batch.sequences(); i++) {
            int nq = batch.queryLength(i);
            Tensor o = batch.queries(out, i);
            Tensor l = lse == null ? null : batch.queries(lse, i);
            if (nq > 0 && batch.keyLength(i) > 0) {
                backend.forward(prepared.prepared(i), batch.queries(q, i), batch.keys(k, i), batch.keys(v, i), o, l, each);
            } else if (nq > 0) {
                fill(o, 0f);
                if (l != null) {
                    fill(l, Float.NEGATIVE_INFINITY);
                }
            }
            if (batch.layout() == RaggedBatch.Layout.PADDED && nq < whole.queryLength()) {
                fill(out.narrowBatch(i, 1).narrowSeq(nq, whole.queryLength() - nq), 0f);
                if (lse != null) {
                    fill(lse.narrowBatch(i, 1).narrowSeq(nq, whole.queryLength() - nq), Float.NEGATIVE_INFINITY);
                }
            }
        }
    }

    /** Sets every element of a host or device view to {@code value}. */
    private static void fill(Tensor t, float value) {
        if (t.isHost()) {
            for (int b = 0; b < t.batch(); b++) {
                for (int h = 0; h < t.heads(); h++) {
                    for (int s = 0; s < t.seqLen(); s++) {
                        t.fillRow(b, h, s, value);
                    }
                }
            }
            return;
        }
        Tensor staged = Tensor.allocate(t.dtype(), Layout.BHSD, t.batch(), t.heads(), t.seqLen(), t.dim());
        if (value != 0f) {
            fill(staged, value);
        }
        Tensor.copy(staged, t);
    }
}
