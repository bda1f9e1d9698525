package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.PreparedRaggedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Ragged batches on device-resident tensors: the packed and padded layouts' sequence views of
 * {@link CudaTensors} go through the SPI without copies, the output stays on the device, and every
 * sequence matches the oracle alone; the host-tensor run gives the same bits. Needs a GPU.
 */
@Tag("gpu")
class CudaRaggedGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    private static Tensor fill(Tensor t, RaggedBatch batch, boolean queries) {
        for (int i = 0; i < batch.sequences(); i++) {
            int len = queries ? batch.queryLength(i) : batch.keyLength(i);
            for (int h = 0; h < t.heads(); h++) {
                for (int s = len; s < t.seqLen(); s++) {
                    t.fillRow(i, h, s, Float.NaN);
                }
            }
        }
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(RaggedBatch.Layout.class)
    void deviceSequenceViewsRunInPlaceAndMatchTheOracle(RaggedBatch.Layout layout) {
        int[] lengths = {1, 63, 0, 64, 65, 1000, 300};
        int[] keyLengths = {1, 70, 3, 64, 65, 1000, 300};
        boolean packed = layout == RaggedBatch.Layout.PACKED;
        RaggedBatch batch;
        if (packed) {
            int[] cuQ = new int[lengths.length + 1];
            int[] cuK = new int[lengths.length + 1];
            for (int i = 0; i < lengths.length; i++) {
                cuQ[i + 1] = cuQ[i] + lengths[i];
                cuK[i + 1] = cuK[i] + keyLengths[i];
            }
            batch = RaggedBatch.packed(cuQ, cuK);
        } else {
            batch = RaggedBatch.padded(lengths, keyLengths);
        }
        DType dtype = packed ? DType.BF16 : DType.F16;
        SplittableRandom rnd = new SplittableRandom(9);
        int b = packed ? 1 : lengths.length;
        int nq = packed ? batch.totalQueries() : batch.maxQueryLength();
        int nk = packed ? batch.totalKeys() : batch.maxKeyLength();
        Layout l = packed ? Layout.BSHD : Layout.BHSD;
        Tensor q = Problems.random(rnd, dtype, l, b, 4, nq, 128, 2);
        Tensor k = Problems.random(rnd, dtype, l, b, 2, nk, 128, 2);
        Tensor v = Problems.random(rnd, dtype, l, b, 2, nk, 128, 1);
        if (!packed) {
            fill(q, batch, true);
            fill(k, batch, false);
            fill(v, batch, false);
        }
        Options o = Options.causalMask().withGeometry(new TileGeometry(128, 128)).withOutputDType(DType.F32);
        AttentionShape whole = batch.shapeOf(q, k, v);
        List<SparsePlan> plans = new ArrayList<>();
        for (int i = 0; i < batch.sequences(); i++) {
            PlanContext ctx = PlanContext.of(batch.sequenceShape(i, whole), o);
            boolean runs = batch.queryLength(i) > 0 && batch.keyLength(i) > 0;
            plans.add(!runs ? SparsePlan.empty(ctx) : i % 2 == 0 ? Dense.INSTANCE.plan(ctx)
                    : RandomPlans.randomBlockSparse(i, ctx, 0.5));
        }
        RaggedPlan plan = RaggedPlan.of(batch, plans);
        CudaDevice dev = BACKEND.device();
        try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
             Tensor dv = CudaTensors.upload(dev, v); PreparedRaggedPlan prepared = BACKEND.prepare(plan, BACKEND.defaultDevice())) {
            AttentionResult onDevice = Attention.forwardWithLse(prepared, dq, dk, dv, o.run());
            try (Tensor out = onDevice.output(); Tensor lse = onDevice.lse()) {
                assertEquals(BACKEND.defaultDevice(), out.device(), "the output stays where the inputs are");
                Tensor hostOut = out.toHost();
                Tensor hostLse = lse.toHost();
                AttentionResult fromHost = Attention.forwardWithLse(prepared, q, k, v, o.run());
                for (int i = 0; i < batch.sequences(); i++) {
                    if (batch.queryLength(i) == 0) {
                        continue;
                    }
                    Tensor got = batch.queries(hostOut, i);
                    assertArrayEquals(batch.queries(fromHost.output(), i).toFloatArray(), got.toFloatArray(),
                            "host and device tensors give the same bits, sequence " + i);
                    Tensor qi = batch.queries(q, i).to(dtype, Layout.BHSD);
                    Tensor ki = batch.keys(k, i).to(dtype, Layout.BHSD);
                    Tensor vi = batch.keys(v, i).to(dtype, Layout.BHSD);
                    ReferenceResult ref = ReferenceAttention.plan(plan.plan(i), qi, ki, vi, o);
                    assertTrue(ref.maxRelativeError(got) <= Problems.tolerance(dtype), "sequence " + i + ": "
                            + ref.maxRelativeError(got));
                    assertTrue(ref.maxLseError(batch.queries(hostLse, i)) <= 1e-2, "sequence " + i + " lse");
                }
                if (!packed) {
                    for (int i = 0; i < batch.sequences(); i++) {
                        for (int s = batch.queryLength(i); s < nq; s += 37) {
                            assertEquals(0f, hostOut.get(i, 3, s, 7), "padded row");
                            assertEquals(Float.NEGATIVE_INFINITY, hostLse.get(i, 0, s, 0));
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Dispatch.class)
    void theDropInCallOnDeviceTensorsRunsEachModeThroughTheFacade(Dispatch mode) {
        RaggedBatch batch = RaggedBatch.packedLengths(1, 200, 513);
        SplittableRandom rnd = new SplittableRandom(4);
        Tensor q = Problems.random(rnd, DType.BF16, Layout.BSHD, 1, 2, 714, 128, 2);
        Tensor k = Problems.random(rnd, DType.BF16, Layout.BSHD, 1, 2, 714, 128, 2);
        Tensor v = Problems.random(rnd, DType.BF16, Layout.BSHD, 1, 2, 714, 128, 1);
        Options o = Options.causalMask().withDispatch(mode).withOutputDType(DType.F32);
        CudaDevice dev = BACKEND.device();
        try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k); Tensor dv = CudaTensors.upload(dev, v)) {
            AttentionResult r = Attention.forwardWithLse(dq, dk, dv, batch, Dense.INSTANCE, o);
            try (Tensor out = r.output(); Tensor lse = r.lse()) {
                Tensor host = out.toHost();
                for (int i = 0; i < batch.sequences(); i++) {
                    SparsePlan ran = r.dispatch().get(i).plan();
                    ReferenceResult ref = ReferenceAttention.plan(ran, batch.queries(q, i), batch.keys(k, i),
                            batch.keys(v, i), o);
                    assertTrue(ref.maxRelativeError(batch.queries(host, i)) <= 1e-2, mode + " sequence " + i);
                }
            }
        }
    }
}
