package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.DispatchDecision;
import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.EstimatedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The facade's road to the device estimate: {@code Attention.forward} with a data-dependent pattern
 * on device tensors estimates the selection on the GPU ({@link Ran#DEVICE_ESTIMATED}) and gives the
 * bits of the host-planned road (the same plan, selected bit for bit alike), while host tensors, a
 * dense dispatch and contexts the device estimate refuses keep the host road. Needs a GPU: skipped
 * where the backend is unavailable.
 */
@Tag("gpu")
class CudaFacadeEstimateGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    /** The values in BHSD order, copied to the host. */
    private static float[] bits(Tensor t) {
        return (t.isHost() ? t : t.toHost()).toFloatArray();
    }

    @ParameterizedTest(name = "{0} causal={1} nq={2} nk={3} geometry={4}")
    @CsvSource({
        "BF16, true, 700, 700, 64", "F16, false, 333, 901, 64", "F32, true, 513, 641, 64", "BF16, true, 1024, 1024, 128",
    })
    void deviceTensorsEstimateOnTheDeviceAndMatchTheHostRoad(DType dtype, boolean causal, int nq, int nk, int geometry) {
        AttentionShape s = new AttentionShape(2, 8, 2, nq, nk, 128, 128);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(geometry, geometry))
                .withDispatch(Dispatch.SPARSE);
        MeanPoolBlockTopK pattern = new MeanPoolBlockTopK(4, Math.max(64, geometry), false, null);
        PlanContext ctx = PlanContext.of(s, o);
        assertNull(CudaEstimatedPlan.refusal(pattern, ctx));
        Problems.Qkv p = Problems.qkv(41 + nq, s, dtype, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v())) {
            AttentionResult onDevice = Attention.forwardWithLse(q, k, v, pattern, o);
            DispatchDecision d = onDevice.dispatch().get(0);
            assertEquals(Ran.DEVICE_ESTIMATED, d.ran(), d.toString());
            assertTrue(CudaBackend.lastKernel().startsWith("sparsa_est_pool+"), CudaBackend.lastKernel());
            // the host road on the same device tensors: planned in Java, the plan uploaded and run
            try (Tensor out = CudaTensors.allocate(dev, o.run().outputTypeFor(dtype), Layout.BHSD, 2, 8, nq, 128);
                 Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 2, 8, nq, 1)) {
                BACKEND.forward(pattern.plan(ctx, p.q(), p.k()), q, k, v, out, lse, o.run());
                assertTrue(java.util.Arrays.equals(bits(out), bits(onDevice.output())), "outputs differ");
                assertTrue(java.util.Arrays.equals(bits(lse), bits(onDevice.lse())), "LSEs differ");
            } finally {
                onDevice.output().close();
                onDevice.lse().close();
            }
        }
    }

    /** Vertical-slash and top-k per query block take the same road as the block estimate. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"vs-block, BF16", "vs-grid, F16", "topk, BF16", "topk, F32"})
    void everyDeviceEstimatedPatternTakesTheRoad(String which, DType dtype) {
        AttentionShape s = new AttentionShape(1, 4, 2, 777, 777, 128, 128);
        Options o = Options.defaults().withCausal(true).withGeometry(new TileGeometry(64, 64)).withDispatch(Dispatch.SPARSE);
        Pattern pattern = switch (which) {
            case "vs-block" -> VerticalSlashEstimator.of(40, 60, VsSemantics.BLOCK_EXPANDED);
            case "vs-grid" -> VerticalSlashEstimator.of(40, 60, VsSemantics.GRID_EXPANDED);
            default -> new TopKPerQueryBlock(96, new ForcedKeys(16, 128), TopKPerQueryBlock.Scoring.POOLED_QUERY);
        };
        PlanContext ctx = PlanContext.of(s, o);
        Problems.Qkv p = Problems.qkv(99, s, dtype, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v())) {
            AttentionResult onDevice = Attention.forwardWithLse(q, k, v, pattern, o);
            assertEquals(Ran.DEVICE_ESTIMATED, onDevice.dispatch().get(0).ran(), onDevice.dispatch().get(0).toString());
            try (Tensor out = CudaTensors.allocate(dev, o.run().outputTypeFor(dtype), Layout.BHSD, 1, 4, 777, 128);
                 Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 4, 777, 1)) {
                BACKEND.forward(pattern.plan(ctx, p.q(), p.k()), q, k, v, out, lse, o.run());
                assertTrue(java.util.Arrays.equals(bits(out), bits(onDevice.output())), which + ": outputs differ");
                assertTrue(java.util.Arrays.equals(bits(lse), bits(onDevice.lse())), which + ": LSEs differ");
            } finally {
                onDevice.output().close();
                onDevice.lse().close();
            }
        }
    }

    @Test
    void hostTensorsDenseDispatchAndRefusedContextsKeepTheHostRoad() {
        AttentionShape s = new AttentionShape(1, 4, 2, 300, 300, 128, 128);
        Options o = Options.defaults().withCausal(true).withGeometry(new TileGeometry(64, 64)).withDispatch(Dispatch.SPARSE);
        MeanPoolBlockTopK pattern = MeanPoolBlockTopK.minference(3);
        Problems.Qkv p = Problems.qkv(7, s, DType.BF16, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        AttentionResult host = Attention.forwardWithLse(p.q(), p.k(), p.v(), pattern, o.withDevice(Device.cuda(dev.ordinal())));
        assertEquals(Ran.SPARSE, host.dispatch().get(0).ran());
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v())) {
            AttentionResult dense = Attention.forwardWithLse(q, k, v, pattern, o.withDispatch(Dispatch.DENSE));
            assertEquals(Ran.DENSE, dense.dispatch().get(0).ran());
            dense.output().close();
            dense.lse().close();
            // block size 32 is not a multiple of the 64 columns: the device estimate refuses, the host plans
            MeanPoolBlockTopK small = new MeanPoolBlockTopK(3, 32, false, null);
            assertTrue(CudaEstimatedPlan.refusal(small, PlanContext.of(s, o)) != null);
            assertNull(BACKEND.prepareEstimated((Pattern) small, PlanContext.of(s, o), Device.cuda(dev.ordinal())));
            AttentionResult refused = Attention.forwardWithLse(q, k, v, small, o);
            assertEquals(Ran.SPARSE, refused.dispatch().get(0).ran());
            refused.output().close();
            refused.lse().close();
            // a static pattern never takes the estimate road
            assertNull(BACKEND.prepareEstimated(SlidingWindow.of(64), PlanContext.of(s, o), Device.cuda(dev.ordinal())));
            try (EstimatedPlan e = BACKEND.prepareEstimated((Pattern) pattern, PlanContext.of(s, o), Device.cuda(dev.ordinal()))) {
                assertTrue(e != null && e.isOpen());
            }
            // AUTO takes the device road only for a plan sure to visit under 0.9 of the pairs: one block of
            // five per query block is (at most 0.35 here); vertical-slash with budgets past the length is not
            Options auto = o.withDispatch(Dispatch.AUTO);
            AttentionResult sparseEnough = Attention.forwardWithLse(q, k, v, MeanPoolBlockTopK.minference(1), auto);
            assertEquals(Ran.DEVICE_ESTIMATED, sparseEnough.dispatch().get(0).ran(), sparseEnough.dispatch().get(0).toString());
            sparseEnough.output().close();
            sparseEnough.lse().close();
            AttentionResult nearlyDense = Attention.forwardWithLse(q, k, v,
                    VerticalSlashEstimator.of(1000, 1000, VsSemantics.BLOCK_EXPANDED), auto);
            assertTrue(nearlyDense.dispatch().get(0).ran() != Ran.DEVICE_ESTIMATED, nearlyDense.dispatch().get(0).toString());
            nearlyDense.output().close();
            nearlyDense.lse().close();
            // a closed device-estimated plan refuses to run instead of reading freed memory
            CudaEstimatedPlan closed = BACKEND.prepareEstimated(pattern, PlanContext.of(s, o), Device.cuda(dev.ordinal()));
            closed.close();
            closed.close();
            try (Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 4, 300, 128)) {
                IllegalStateException x = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                        () -> BACKEND.forward(closed, q, k, v, out, null, o.run()));
                assertTrue(x.getMessage().contains("closed"), x.getMessage());
            }
        }
    }
}
