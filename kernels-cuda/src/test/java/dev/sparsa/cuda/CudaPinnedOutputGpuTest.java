package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Outputs of calls on host tensors in page-locked memory, on a GPU: the facade's output is a host
 * tensor over pinned memory with the bits of the heap path, closes, goes back to the device as an
 * input without staging, and a loop of calls (closing, dropping or holding its outputs) never holds
 * more pinned memory than the bound. Skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaPinnedOutputGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    private static boolean sameBits(Tensor a, Tensor b) {
        return a.spanBytes() == b.spanBytes()
                && MemorySegment.mismatch(a.segment(), 0, a.spanBytes(), b.segment(), 0, b.spanBytes()) == -1;
    }

    @Test
    void theFacadesHostOutputIsPinnedWithTheHeapPathsBitsAndCloses() {
        AttentionShape s = new AttentionShape(1, 4, 2, 700, 900, 128, 128);
        Problems.Qkv p = Problems.qkv(31, s, DType.BF16, Layout.BHSD);
        Options o = Options.causalMask();
        SparsePlan plan = Attention.plan(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        // the heap path: Java-array outputs given, copied back through the staging ring
        Tensor heapOut = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 4, 700, 128);
        Tensor heapLse = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 700, 1);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), heapOut, heapLse, o);

        PinnedOutputs pool = BACKEND.device().pinnedOutputs();
        AttentionResult r = Attention.forwardWithLse(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        Tensor out = r.output();
        Tensor lse = r.lse();
        assertTrue(out.isHost() && lse.isHost(), "host inputs, host outputs");
        assertTrue(out.segment().isNative() && PinnedOutputs.holds(out.segment()), "the output is pinned memory");
        assertTrue(PinnedOutputs.holds(lse.segment()), "the LSE too");
        assertTrue(sameBits(heapOut, out), "pinned output = heap path, bitwise");
        assertTrue(sameBits(heapLse, lse), "LSE bitwise");
        double err = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o).maxRelativeError(out);
        assertTrue(err <= Problems.tolerance(DType.BF16), "against the oracle: " + err);
        assertTrue(BACKEND.device().pinnedOutputBytes() >= out.spanBytes() + lse.spanBytes());

        // a device tensor copied into the pinned output (the direct path of DeviceBuffer.copyTo)
        try (Tensor onDevice = CudaTensors.upload(BACKEND.device(), p.q())) {
            Tensor.copy(onDevice, out);
            assertTrue(sameBits(p.q(), out), "device to pinned copy");
        }

        long inUse = pool.inUseBytes();
        MemorySegment seg = out.segment();
        out.close();
        lse.close();
        assertThrows(IllegalStateException.class, () -> out.get(0, 0, 0, 0), "a closed output is unusable");
        assertThrows(IllegalStateException.class, () -> seg.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
        assertFalse(PinnedOutputs.holds(seg));
        assertTrue(pool.inUseBytes() <= inUse - PinnedOutputs.sizeClass(heapOut.spanBytes()), "given back on close");
        out.close();
    }

    @Test
    void aPinnedOutputGoesBackToTheDeviceAsAnInput() {
        AttentionShape s = AttentionShape.of(1, 4, 640, 640, 128);
        Problems.Qkv p = Problems.qkv(32, s, DType.F16, Layout.BHSD);
        Options o = Options.causalMask();
        try (Tensor first = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o)) {
            assertTrue(PinnedOutputs.holds(first.segment()));
            Tensor heapCopy = Tensor.allocate(DType.F16, Layout.BHSD, 1, 4, 640, 128);
            Tensor.copy(first, heapCopy);
            try (Tensor fromPinned = Attention.forward(first, p.k(), p.v(), Dense.INSTANCE, o);
                 Tensor fromHeap = Attention.forward(heapCopy, p.k(), p.v(), Dense.INSTANCE, o)) {
                assertTrue(sameBits(fromHeap, fromPinned), "a pinned input uploads in place with the same bits");
            }
        }
    }

    @Test
    void aLoopOfCallsNeverHoldsMorePinnedMemoryThanTheBound() throws InterruptedException {
        AttentionShape s = AttentionShape.of(1, 4, 512, 512, 64);
        Problems.Qkv p = Problems.qkv(33, s, DType.F32, Layout.BHSD);
        Options o = Options.causalMask();
        SparsePlan plan = Attention.plan(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
        Tensor expected = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 512, 64);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), expected, null, o);
        long block = PinnedOutputs.sizeClass(expected.spanBytes());
        long bound = 4 * block;
        PinnedOutputs pool = BACKEND.device().pinnedOutputs();
        long oldLimit = pool.limit();
        List<Tensor> held = new ArrayList<>();
        try {
            pool.setLimit(bound);
            // outputs other tests dropped come back once collected
            for (int i = 0; i < 200 && pool.heldBytes() > bound; i++) {
                System.gc();
                Thread.sleep(25);
            }
            assertTrue(pool.heldBytes() <= bound, "held " + pool.heldBytes());

            // closing each output: one block, reused every time
            Set<Long> addresses = new HashSet<>();
            for (int i = 0; i < 16; i++) {
                try (Tensor r = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o)) {
                    assertTrue(PinnedOutputs.holds(r.segment()), "call " + i);
                    assertTrue(sameBits(expected, r), "call " + i);
                    addresses.add(r.segment().address());
                }
                assertTrue(pool.heldBytes() <= bound);
            }
            assertTrue(addresses.size() <= 2, "closed outputs reuse their block: " + addresses.size() + " addresses");

            // dropping each output unclosed: the cleaner gives the blocks back, within the bound
            int pinned = 0;
            for (int i = 0; i < 24; i++) {
                Tensor r = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
                pinned += PinnedOutputs.holds(r.segment()) ? 1 : 0;
                assertTrue(sameBits(expected, r), "call " + i);
                assertTrue(pool.heldBytes() <= bound, "held " + pool.heldBytes() + " after call " + i);
            }
            assertTrue(pinned > 4, "collected outputs were reused: " + pinned + " of 24 pinned");

            // holding every output: pinned up to the bound, heap tensors beyond, the same bits
            for (int i = 0; i < 8; i++) {
                Tensor r = Attention.forward(p.q(), p.k(), p.v(), Dense.INSTANCE, o);
                held.add(r);
                assertTrue(sameBits(expected, r), "held call " + i);
                assertTrue(pool.heldBytes() <= bound);
            }
            long pinnedHeld = held.stream().filter(t -> PinnedOutputs.holds(t.segment())).count();
            assertTrue(pinnedHeld <= 4, pinnedHeld + " pinned");
            assertTrue(held.stream().anyMatch(t -> !t.segment().isNative()), "beyond the bound: heap outputs");
        } finally {
            held.forEach(Tensor::close);
            pool.setLimit(oldLimit);
        }
        assertTrue(pool.heldBytes() <= oldLimit);
    }
}
