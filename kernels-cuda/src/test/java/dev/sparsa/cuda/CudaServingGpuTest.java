package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The serving paths of the CUDA backend on a GPU: the facade on device tensors, memory and streams
 * of other libraries, the geometry the backend proposes, and the pinned staging of host tensors.
 * Skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaServingGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    private static AttentionShape shape() {
        return new AttentionShape(2, 8, 2, 700, 900, 128, 128);
    }

    @Test
    void theFacadeOnDeviceTensorsReturnsItsOutputOnTheDeviceWithTheHostPathsBits() {
        AttentionShape s = shape();
        Problems.Qkv p = Problems.qkv(21, s, DType.BF16, Layout.BHSD);
        Options o = Options.causalMask();
        AttentionResult host = Attention.forwardWithLse(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        assertTrue(host.output().isHost());
        CudaDevice dev = BACKEND.device();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v())) {
            AttentionResult onDevice = Attention.forwardWithLse(q, k, v, Dense.INSTANCE, o);
            try (Tensor out = onDevice.output(); Tensor lse = onDevice.lse()) {
                assertEquals(Device.cuda(dev.ordinal()), out.device(), "output where the inputs are");
                assertEquals(Device.cuda(dev.ordinal()), lse.device());
                assertArrayEquals(host.output().toFloatArray(), out.toHost().toFloatArray(), "device = host, bitwise");
                assertArrayEquals(host.lse().toFloatArray(), lse.toHost().toFloatArray(), "LSE bitwise");
            }
        }
    }

    @Test
    void defaultOptionsPlanBf16D128In128x128TilesAndReachTheHopperKernel() {
        CudaDevice dev = BACKEND.device();
        AttentionShape s = AttentionShape.of(1, 4, 512, 512, 128);
        assertEquals(TileGeometry.DEFAULT, BACKEND.proposedGeometry(s, DType.F32), "f32 runs the exact 64-row kernel");
        assumeTrue(dev.computeCapability() == 90, "the wgmma kernel runs on compute capability 9.0 only");
        assertEquals(new TileGeometry(128, 128), BACKEND.proposedGeometry(s, DType.BF16));
        assertEquals(new TileGeometry(128, 128), BACKEND.proposedGeometry(s, DType.F16));
        Problems.Qkv p = Problems.qkv(5, s, DType.BF16, Layout.BHSD);
        assertEquals(new TileGeometry(128, 128), Attention.plan(p.q(), p.k(), p.v(), Dense.INSTANCE, Options.defaults())
                .geometry());
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor out = Attention.forward(q, k, v, Dense.INSTANCE, Options.causalMask())) {
            assertTrue(CudaBackend.lastKernel().startsWith("sparsa_wg_bf16_d128_r128"), CudaBackend.lastKernel());
            Tensor host = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, Options.causalMask());
            assertArrayEquals(host.toFloatArray(), out.toHost().toFloatArray());
        }
    }

    @Test
    void memoryOfAnotherLibraryIsWrappedAndNeverFreed() {
        AttentionShape s = shape();
        Problems.Qkv p = Problems.qkv(22, s, DType.F16, Layout.BSHD);
        Options o = Options.defaults();
        Tensor expected = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        CudaDevice dev = BACKEND.device();
        dev.makeCurrent();
        Tensor[] host = {p.q(), p.k(), p.v()};
        CUdeviceptr[] raw = new CUdeviceptr[4];
        long[] bytes = new long[4];
        try {
            Tensor[] wrapped = new Tensor[4];
            for (int i = 0; i < 4; i++) {
                Tensor like = i < 3 ? host[i] : expected;
                bytes[i] = like.elementCount() * 2;
                raw[i] = new CUdeviceptr();
                assertEquals(CUresult.CUDA_SUCCESS, cuMemAlloc(raw[i], bytes[i]));
                long address = JCudaHandles.address(raw[i]);
                Layout layout = i < 3 ? Layout.BSHD : Layout.BHSD;
                wrapped[i] = CudaTensors.wrap(dev, address, bytes[i], DType.F16, layout, like.batch(), like.heads(),
                        like.seqLen(), like.dim());
                if (i < 3) {
                    Tensor.copy(host[i], wrapped[i]);
                }
            }
            SparsePlan plan = Attention.plan(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
            try (PreparedPlan prepared = BACKEND.prepare(plan, Device.cuda(dev.ordinal()))) {
                BACKEND.forward(prepared, wrapped[0], wrapped[1], wrapped[2], wrapped[3], null, o.run());
            }
            assertArrayEquals(expected.toFloatArray(), wrapped[3].toHost().toFloatArray(), "foreign output = host path");
            for (Tensor t : wrapped) {
                t.close();
            }
            // still readable after close: Sparsa freed nothing
            assertArrayEquals(expected.toFloatArray(), wrapped[3].toHost().toFloatArray());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CudaTensors.wrap(dev,
                    JCudaHandles.address(raw[0]), bytes[0] - 2, DType.F16, Layout.BSHD, 2, 8, 700, 128));
            assertTrue(e.getMessage().contains("bytes"), e.getMessage());
        } finally {
            for (CUdeviceptr r : raw) {
                if (r != null) {
                    // the owner frees it: success proves Sparsa did not
                    assertEquals(CUresult.CUDA_SUCCESS, cuMemFree(r), "the wrapped memory was still allocated");
                }
            }
        }
    }

    @Test
    void aStreamOfAnotherLibraryTakesTheWorkAndCanBeCapturedInAGraph() {
        AttentionShape s = AttentionShape.of(1, 4, 640, 640, 128);
        Problems.Qkv p = Problems.qkv(23, s, DType.BF16, Layout.BHSD);
        Options o = Options.causalMask().withGeometry(new TileGeometry(128, 128));
        Tensor expected = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        CudaDevice dev = BACKEND.device();
        dev.makeCurrent();
        CUstream foreign = new CUstream();
        assertEquals(CUresult.CUDA_SUCCESS, cuStreamCreate(foreign, CUstream_flags.CU_STREAM_NON_BLOCKING));
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 4, 640, 128)) {
            // by raw handle, as PyTorch's torch.cuda.Stream.cuda_stream gives it; the facade queues on it
            CudaStream byHandle = CudaStream.wrap(dev, JCudaHandles.address(foreign));
            assertEquals(JCudaHandles.address(foreign), byHandle.address());
            try (CudaStream.Scope scope = byHandle.use(); Tensor viaFacade = Attention.forward(q, k, v, Dense.INSTANCE, o)) {
                byHandle.synchronize();
                assertArrayEquals(expected.toFloatArray(), viaFacade.toHost().toFloatArray(), "on the caller's stream");
            }
            byHandle.close();
            assertEquals(CUresult.CUDA_SUCCESS, cuStreamSynchronize(foreign), "closing a wrapped stream destroys nothing");

            // a JCuda stream object, captured into a graph: nothing runs until the graph is launched
            CudaStream jcuda = CudaStream.wrap(dev, foreign);
            SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
            try (PreparedPlan prepared = BACKEND.prepare(plan, Device.cuda(dev.ordinal()))) {
                ((DeviceBuffer) out.deviceMemory()).fill((byte) 0xFF);
                dev.makeCurrent();
                assertEquals(CUresult.CUDA_SUCCESS, cuStreamBeginCapture(foreign,
                        CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
                BACKEND.forwardAsync(prepared, q, k, v, out, null, o.run(), jcuda);
                CUgraph graph = new CUgraph();
                assertEquals(CUresult.CUDA_SUCCESS, cuStreamEndCapture(foreign, graph));
                assertTrue(Float.isNaN(out.toHost().get(0, 0, 0, 0)), "captured, not run");
                CUgraphExec exec = new CUgraphExec();
                assertEquals(CUresult.CUDA_SUCCESS, cuGraphInstantiate(exec, graph, 0));
                assertEquals(CUresult.CUDA_SUCCESS, cuGraphLaunch(exec, foreign));
                assertEquals(CUresult.CUDA_SUCCESS, cuStreamSynchronize(foreign));
                assertArrayEquals(expected.toFloatArray(), out.toHost().toFloatArray(), "the graph's replay");
                cuGraphExecDestroy(exec);
                cuGraphDestroy(graph);
            }
        } finally {
            dev.makeCurrent();
            cuStreamDestroy(foreign);
        }
    }

    @Test
    void streamScopesNestAndRefuseToCloseOutOfOrder() {
        CudaDevice dev = BACKEND.device();
        try (CudaStream a = new CudaStream(dev); CudaStream b = new CudaStream(dev)) {
            CudaStream.Scope sa = a.use();
            CudaStream.Scope sb = b.use();
            assertEquals(b, CudaStream.current(dev.ordinal()));
            assertThrows(IllegalStateException.class, sa::close);
            sb.close();
            assertEquals(a, CudaStream.current(dev.ordinal()));
            sa.close();
            assertEquals(null, CudaStream.current(dev.ordinal()));
        }
    }

    @Test
    void pinnedStagingRoundTripsOddSizesThroughFewSlots() {
        CudaDevice dev = BACKEND.device();
        HostStaging staging = new HostStaging(dev, 1 << 20, 3);
        // 38 chunks through a ring of 16 slots: every slot is reused
        long n = (37L << 20) + 4099;
        byte[] src = new byte[(int) n];
        new SplittableRandom(5).nextBytes(src);
        try (Arena arena = Arena.ofConfined(); CudaStream stream = new CudaStream(dev)) {
            MemorySegment nat = arena.allocate(n + 16);
            MemorySegment.copy(MemorySegment.ofArray(src), 0, nat, 16, n);
            for (boolean register : new boolean[] {false, true}) {
                staging.setRegisterNative(register);
                try (DeviceBuffer a = DeviceBuffer.scratch(dev, n); DeviceBuffer b = DeviceBuffer.scratch(dev, n + 8)) {
                    // heap to a, native (odd offset) to b at 8 bytes in
                    staging.upload(List.of(new HostStaging.Piece(MemorySegment.ofArray(src), a.pointer()),
                            new HostStaging.Piece(nat.asSlice(16, n), b.pointer(8))), stream);
                    byte[] backA = new byte[(int) n];
                    MemorySegment backB = arena.allocate(n);
                    staging.download(List.of(new HostStaging.Piece(MemorySegment.ofArray(backA), a.pointer()),
                            new HostStaging.Piece(backB, b.pointer(8))), stream);
                    assertArrayEquals(src, backA, "heap round trip, register=" + register);
                    assertEquals(-1, MemorySegment.mismatch(nat, 16, 16 + n, backB, 0, n), "native round trip");
                }
            }
        } finally {
            staging.close();
        }
    }

    @Test
    void hostTensorsInNativeMemoryAndViewsWithHolesAreStagedExactly() {
        AttentionShape s = AttentionShape.of(1, 4, 900, 1100, 64);
        Problems.Qkv p = Problems.qkv(24, s, DType.F32, Layout.BHSD);
        Options o = Options.causalMask();
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Tensor expected = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 900, 64);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), expected, null, o);
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = Tensor.allocate(arena, DType.F32, Layout.BHSD, 1, 4, 900, 64);
            Tensor.copy(p.q(), q);
            // the output is a window of a longer native tensor: the rows around it keep their NaN
            Tensor outBig = Tensor.allocate(arena, DType.F32, Layout.BSHD, 1, 4, 1000, 64);
            outBig.segment().fill((byte) 0xFF);
            Tensor out = outBig.narrowSeq(50, 900);
            BACKEND.forward(plan, q, p.k(), p.v(), out, null, o);
            assertArrayEquals(expected.toFloatArray(), out.toFloatArray());
            assertTrue(Float.isNaN(outBig.get(0, 3, 49, 63)) && Float.isNaN(outBig.get(0, 0, 950, 0)), "outside untouched");
            assertFalse(Float.isNaN(outBig.get(0, 0, 50, 0)));
        }
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        assertTrue(ref.maxRelativeError(expected) <= 1e-5);
    }

    @Test
    void freedTensorsAreReusedFromTheCache() {
        CudaDevice dev = BACKEND.device();
        long address;
        try (Tensor t = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 3, 1000, 333)) {
            address = t.deviceMemory().address();
        }
        assertTrue(dev.cachedBytes() >= 1000L * 999 * 4, "cached: " + dev.cachedBytes());
        try (Tensor t = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 3, 1000, 333)) {
            assertEquals(address, t.deviceMemory().address(), "same block again");
            assertEquals(0f, t.toHost().get(0, 2, 999, 332), "allocate clears reused memory");
        }
        dev.releaseCachedMemory();
        assertEquals(0, dev.cachedBytes());
    }
}
