package dev.sparsa.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.PreparedRaggedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.OracleBackend;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Ragged batches through the SPI's generic sequence-by-sequence run, with the oracle as the backend. */
class RaggedRunTest {
    private static final Options CAUSAL = Options.causalMask();

    /** Dense plans per sequence, one plan object per distinct (queries, keys), empty where nothing runs. */
    static RaggedPlan densePlans(RaggedBatch batch, AttentionShape whole, Options o) {
        Map<List<Integer>, SparsePlan> byLength = new HashMap<>();
        List<SparsePlan> plans = new ArrayList<>();
        for (int i = 0; i < batch.sequences(); i++) {
            PlanContext ctx = PlanContext.of(batch.sequenceShape(i, whole), o);
            boolean runs = batch.queryLength(i) > 0 && batch.keyLength(i) > 0;
            plans.add(runs ? byLength.computeIfAbsent(List.of(batch.queryLength(i), batch.keyLength(i)),
                    x -> Dense.INSTANCE.plan(ctx)) : SparsePlan.empty(ctx));
        }
        return RaggedPlan.of(batch, plans);
    }

    /** Each sequence's output rows against dense attention on a contiguous copy of its own tensors. */
    static void assertEachSequenceAlone(RaggedBatch batch, Tensor q, Tensor k, Tensor v, AttentionResult r) {
        for (int i = 0; i < batch.sequences(); i++) {
            Tensor out = batch.queries(r.output(), i);
            Tensor lse = batch.queries(r.lse(), i);
            if (batch.queryLength(i) == 0) {
                continue;
            }
            if (batch.keyLength(i) == 0) {
                for (float x : out.toFloatArray()) {
                    assertEquals(0f, x, "sequence " + i + " has no keys");
                }
                for (float x : lse.toFloatArray()) {
                    assertEquals(Float.NEGATIVE_INFINITY, x);
                }
                continue;
            }
            Tensor qi = batch.queries(q, i).to(q.dtype(), Layout.BHSD);
            Tensor ki = batch.keys(k, i).to(k.dtype(), Layout.BHSD);
            Tensor vi = batch.keys(v, i).to(v.dtype(), Layout.BHSD);
            ReferenceResult ref = ReferenceAttention.dense(qi, ki, vi, CAUSAL, null);
            assertTrue(ref.maxRelativeError(out) <= 1e-6, "sequence " + i + ": " + ref.maxRelativeError(out));
            assertTrue(ref.maxLseError(lse) <= 1e-5, "sequence " + i + " lse");
        }
    }

    @Test
    void packedSequencesRunAloneAndEmptyOnesGiveZeros() {
        int[] cuQ = {0, 3, 3, 8, 10};
        int[] cuK = {0, 4, 6, 6, 12};
        RaggedBatch batch = RaggedBatch.packed(cuQ, cuK);
        SplittableRandom rnd = new SplittableRandom(1);
        Tensor q = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 4, 10, 8, 2);
        Tensor k = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 2, 12, 8, 2);
        Tensor v = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 2, 12, 16, 1);
        AttentionShape whole = batch.shapeOf(q, k, v);
        OracleBackend backend = new OracleBackend();
        AttentionResult r = Attention.run(backend, densePlans(batch, whole, CAUSAL), q, k, v, CAUSAL, true);
        assertEquals(2, backend.runs.get(), "sequences with queries and keys only");
        assertEquals(4, r.dispatch().size());
        assertEquals(Layout.BSHD.strides(1, 4, 10, 16)[2], r.output().stride(2), "the output in token order");
        assertEachSequenceAlone(batch, q, k, v, r);
    }

    @Test
    void paddedRowsAreZeroAndPaddingIsNeverRead() {
        RaggedBatch batch = RaggedBatch.padded(new int[] {6, 2, 0, 3}, new int[] {7, 5, 4, 0});
        SplittableRandom rnd = new SplittableRandom(2);
        Tensor q = Problems.random(rnd, DType.BF16, Layout.BHSD, 4, 2, 6, 8, 2);
        Tensor k = Problems.random(rnd, DType.BF16, Layout.BHSD, 4, 2, 7, 8, 2);
        Tensor v = Problems.random(rnd, DType.BF16, Layout.BHSD, 4, 2, 7, 8, 1);
        for (int b = 0; b < 4; b++) {
            for (int h = 0; h < 2; h++) {
                for (int s = batch.keyLength(b); s < 7; s++) {
                    k.fillRow(b, h, s, Float.NaN);
                    v.fillRow(b, h, s, Float.NaN);
                }
                for (int s = batch.queryLength(b); s < 6; s++) {
                    q.fillRow(b, h, s, Float.NaN);
                }
            }
        }
        OracleBackend backend = new OracleBackend();
        Options o = CAUSAL.withValidateFinite(true).withOutputDType(DType.F32);
        AttentionResult r = Attention.run(backend, densePlans(batch, batch.shapeOf(q, k, v), o), q, k, v, o, true);
        assertEquals(2, backend.runs.get());
        for (int b = 0; b < 4; b++) {
            for (int h = 0; h < 2; h++) {
                for (int s = batch.queryLength(b); s < 6; s++) {
                    assertEquals(Float.NEGATIVE_INFINITY, r.lse().get(b, h, s, 0), "padded row " + s + " of " + b);
                    for (int d = 0; d < 8; d++) {
                        assertEquals(0f, r.output().get(b, h, s, d));
                    }
                }
            }
        }
        assertEachSequenceAlone(batch, q, k, v, r);
    }

    @Test
    void equalLengthsShareOnePreparedPlan() {
        RaggedBatch batch = RaggedBatch.packedLengths(5, 9, 5, 5, 9, 0);
        Tensor q = Tensor.allocate(DType.F32, Layout.BSHD, 1, 1, 33, 8);
        AttentionShape whole = batch.shapeOf(q, q.to(DType.F32, Layout.BSHD), q.to(DType.F32, Layout.BSHD));
        OracleBackend backend = new OracleBackend();
        RaggedPlan plan = densePlans(batch, whole, CAUSAL);
        assertEquals(3, plan.distinctPlans().size(), "two lengths and the empty sequence");
        try (PreparedRaggedPlan prepared = backend.prepare(plan, dev.sparsa.tensor.Device.CPU)) {
            assertEquals(2, backend.prepares.get(), "one prepared plan per distinct length; none for the empty sequence");
            assertEquals(prepared.prepared(0), prepared.prepared(2));
            assertEquals(null, prepared.prepared(5));
        }
    }

    @Test
    void badCallsAreRefusedBeforeAnyKernelRuns() {
        RaggedBatch batch = RaggedBatch.packedLengths(3, 4);
        SplittableRandom rnd = new SplittableRandom(3);
        Tensor q = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 2, 7, 8, 1);
        Tensor k = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 2, 7, 8, 1);
        OracleBackend backend = new OracleBackend();
        RaggedPlan plan = densePlans(batch, batch.shapeOf(q, k, k), CAUSAL);
        try (PreparedRaggedPlan prepared = backend.prepare(plan, dev.sparsa.tensor.Device.CPU)) {
            Tensor wrong = Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 6, 8);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backend.forward(prepared, q, k, k, wrong, null, CAUSAL.run()));
            assertTrue(e.getMessage().startsWith("out: expected shape [1, 2, 7, 8]"), e.getMessage());
            q.set(0, 1, 5, 3, Float.NaN); // row 2 of sequence 1
            Tensor out = Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 7, 8);
            e = assertThrows(IllegalArgumentException.class,
                    () -> backend.forward(prepared, q, k, k, out, null, CAUSAL.run().withValidateFinite(true)));
            assertTrue(e.getMessage().startsWith("q of sequence 1: non-finite value NaN at [b=0, h=1, s=2, d=3]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> backend.forward(prepared, q, k, k, q, null, CAUSAL.run()));
            assertTrue(e.getMessage().contains("overlaps q"), e.getMessage());
            assertEquals(0, backend.runs.get());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Attention.run(backend, plan, q, k, k, Options.defaults(), false));
            assertTrue(e.getMessage().startsWith("sequence 0: options: causal=false contradicts the plan"), e.getMessage());
        }
        PreparedRaggedPlan closed = backend.prepare(plan, dev.sparsa.tensor.Device.CPU);
        closed.close();
        assertThrows(IllegalStateException.class, () -> backend.forward(closed, q, k, k,
                Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 7, 8), null, CAUSAL.run()));
    }
}
