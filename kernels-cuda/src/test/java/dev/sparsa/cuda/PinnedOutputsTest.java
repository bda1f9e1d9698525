package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * The bookkeeping of page-locked output memory, over a stand-in for the driver's allocator (native
 * memory of shared arenas, each freed exactly once or the test fails): blocks owned by tensors,
 * given back on close or when collected, kept for reuse, bounded, with null (the heap) beyond.
 */
class PinnedOutputsTest {
    /** 1 × 2 × 300 × 64 f32: 153 600 bytes, a 256 KiB block. */
    private static final long SMALL = PinnedOutputs.sizeClass(1L * 2 * 300 * 64 * 4);

    /** Stands in for cuMemHostAlloc / cuMemFreeHost; fails a double or unknown free. */
    static final class FakePinned implements PinnedOutputs.HostMemory {
        final Map<Long, Arena> blocks = new ConcurrentHashMap<>();
        final AtomicInteger allocations = new AtomicInteger();
        final AtomicInteger frees = new AtomicInteger();
        final AtomicInteger badFrees = new AtomicInteger();
        volatile boolean exhausted;

        @Override
        public long allocate(long bytes) {
            if (exhausted) {
                return 0;
            }
            Arena a = Arena.ofShared();
            long address = a.allocate(bytes, 4096).address();
            blocks.put(address, a);
            allocations.incrementAndGet();
            return address;
        }

        @Override
        public void free(long address) {
            Arena a = blocks.remove(address);
            if (a == null) {
                badFrees.incrementAndGet();
                return;
            }
            a.close();
            frees.incrementAndGet();
        }
    }

    private static Tensor small(PinnedOutputs pool) {
        return pool.allocate(DType.F32, Layout.BHSD, 1, 2, 300, 64);
    }

    @Test
    void sizeClassesArePagesThenPowersOfTwoThenMultiplesOfTwoMiB() {
        assertEquals(4096, PinnedOutputs.sizeClass(1));
        assertEquals(4096, PinnedOutputs.sizeClass(4096));
        assertEquals(8192, PinnedOutputs.sizeClass(4097));
        assertEquals(256 << 10, SMALL);
        assertEquals(2L << 20, PinnedOutputs.sizeClass(2L << 20));
        assertEquals(4L << 20, PinnedOutputs.sizeClass((2L << 20) + 1));
        assertEquals(268_435_456L, PinnedOutputs.sizeClass(32L * 32768 * 128 * 2), "the serving shape's bf16 output");
        long d = PinnedOutputs.defaultLimit();
        assertTrue(d > 0 && d <= 4L << 30, "default bound " + d);
    }

    @Test
    void anOutputIsAHostTensorOverItsBlockAndCloseGivesTheBlockBackForTheNextOutput() {
        FakePinned fake = new FakePinned();
        PinnedOutputs pool = new PinnedOutputs(fake, 64L << 20, () -> { });
        Tensor t = pool.allocate(DType.BF16, Layout.BSHD, 1, 2, 300, 64);
        assertNotNull(t);
        assertTrue(t.isHost());
        assertArrayEquals(new int[] {1, 2, 300, 64}, t.shape());
        assertArrayEquals(Layout.BSHD.strides(1, 2, 300, 64), t.strides());
        assertEquals(1L * 2 * 300 * 64 * 2, t.segment().byteSize(), "the segment is the tensor's bytes, not the block's");
        t.set(0, 1, 299, 63, 1.5f);
        assertEquals(1.5f, t.get(0, 1, 299, 63));
        MemorySegment seg = t.segment();
        assertTrue(PinnedOutputs.holds(seg));
        assertTrue(PinnedOutputs.holds(seg.asSlice(1000, 5000)), "a part of the block");
        assertTrue(PinnedOutputs.holds(t.narrowSeq(10, 5).segment()));
        assertFalse(PinnedOutputs.holds(MemorySegment.ofArray(new short[100])), "heap memory");
        try (Arena other = Arena.ofConfined()) {
            assertFalse(PinnedOutputs.holds(other.allocate(1000)), "other native memory");
        }
        assertEquals(SMALL / 2, pool.inUseBytes());

        long address = seg.address();
        t.close();
        assertThrows(IllegalStateException.class, () -> t.get(0, 0, 0, 0), "closed: the memory is no longer reachable");
        assertFalse(PinnedOutputs.holds(seg), "a closed tensor's memory is not copied into");
        assertEquals(0, pool.inUseBytes());
        assertEquals(SMALL / 2, pool.keptBytes());
        t.close();
        assertEquals(SMALL / 2, pool.keptBytes(), "a second close gives nothing back twice");

        Tensor u = pool.allocate(DType.F16, Layout.BHSD, 2, 1, 300, 64);
        assertEquals(address, u.segment().address(), "the kept block again");
        assertEquals(1, fake.allocations.get());
        Tensor v = small(pool);
        assertNotEquals(address, v.segment().address(), "another size class: a new block");
        assertEquals(2, fake.allocations.get());
        u.close();
        v.close();
        assertEquals(SMALL + SMALL / 2, pool.trim());
        assertEquals(0, pool.heldBytes());
        assertEquals(2, fake.frees.get());
        assertEquals(0, fake.badFrees.get());
    }

    @Test
    void aTensorClosedDuringAnInPlaceCopyGivesItsBlockBackOnlyWhenTheCopyEnds() throws InterruptedException {
        FakePinned fake = new FakePinned();
        PinnedOutputs pool = new PinnedOutputs(fake, 64L << 20, () -> { });
        Tensor t = small(pool);
        MemorySegment seg = t.segment();
        assertNull(PinnedOutputs.use(MemorySegment.ofArray(new float[100])), "heap memory is not held");
        PinnedOutputs.Use copy = PinnedOutputs.use(seg.asSlice(4096, 8192));
        assertNotNull(copy, "a part of an open output's block");
        // another thread closes the tensor while the copy runs: Java's access ends at once, the block stays
        Thread closer = new Thread(t::close);
        closer.start();
        closer.join();
        assertThrows(IllegalStateException.class, () -> t.get(0, 0, 0, 0));
        assertNull(PinnedOutputs.use(seg), "a closed tensor's memory is not handed to new copies");
        assertEquals(SMALL, pool.inUseBytes(), "held by the copy");
        assertEquals(0, pool.keptBytes());
        Tensor other = small(pool);
        assertNotEquals(seg.address(), other.segment().address(), "the held block is not handed to another output");
        assertEquals(2, fake.allocations.get());
        copy.close();
        assertEquals(SMALL, pool.inUseBytes(), "the other output's block only");
        assertEquals(SMALL, pool.keptBytes(), "given back when the copy ended");
        copy.close();
        assertEquals(SMALL, pool.keptBytes(), "a second close of the hold gives nothing back twice");
        // a hold that ends before the tensor closes changes nothing
        try (PinnedOutputs.Use u = PinnedOutputs.use(other.segment())) {
            assertNotNull(u);
        }
        other.close();
        assertEquals(0, pool.inUseBytes());
        assertEquals(2 * SMALL, pool.keptBytes());
        pool.trim();
        assertEquals(2, fake.frees.get());
        assertEquals(0, fake.badFrees.get());
    }

    @Test
    void anOutputNeverClosedComesBackOnceNothingReachesItsMemory() throws InterruptedException {
        FakePinned fake = new FakePinned();
        PinnedOutputs pool = new PinnedOutputs(fake, 64L << 20, () -> { });
        MemorySegment slice = sliceOfAnUnclosedOutput(pool);
        // the tensor is gone but a slice of its memory is held: the block stays in use
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(SMALL, pool.inUseBytes(), "a slice keeps the block");
        assertEquals(7f, slice.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 3));
        Reference.reachabilityFence(slice);
        slice = null;
        assertTrue(eventually(() -> pool.inUseBytes() == 0), "given back once unreachable");
        assertEquals(SMALL, pool.keptBytes());
        assertEquals(0, fake.frees.get(), "kept for reuse, not freed");
        Tensor again = small(pool);
        assertEquals(1, fake.allocations.get(), "reused");
        again.close();
    }

    private static MemorySegment sliceOfAnUnclosedOutput(PinnedOutputs pool) {
        Tensor t = small(pool);
        t.set(0, 0, 0, 3, 7f);
        return t.segment().asSlice(0, 64);
    }

    @Test
    void theBoundHoldsAndACollectionThatBringsNothingBackIsNotRepeated() {
        FakePinned fake = new FakePinned();
        AtomicInteger collections = new AtomicInteger();
        PinnedOutputs pool = new PinnedOutputs(fake, 3 * SMALL, collections::incrementAndGet);
        List<Tensor> held = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            held.add(small(pool));
        }
        assertEquals(3 * SMALL, pool.heldBytes());
        assertNull(small(pool), "over the bound: the caller allocates on the heap");
        assertEquals(1, collections.get(), "the collector was asked once");
        assertNull(small(pool));
        assertEquals(1, collections.get(), "not again while nothing came back");
        assertEquals(3 * SMALL, pool.heldBytes());

        held.remove(0).close();
        Tensor t = small(pool);
        assertNotNull(t, "the block given back is reused");
        assertEquals(3, fake.allocations.get());
        held.add(t);
        assertNull(small(pool));
        assertEquals(2, collections.get(), "a block came back since the last futile collection: ask again");
        assertTrue(pool.heldBytes() <= pool.limit());
        held.forEach(Tensor::close);
        pool.trim();
        assertEquals(0, fake.badFrees.get());
    }

    @Test
    void unclosedOutputsInALoopAreCollectedWithinTheBound() {
        FakePinned fake = new FakePinned();
        PinnedOutputs pool = new PinnedOutputs(fake, 3 * SMALL, System::gc);
        int pinned = 0;
        for (int i = 0; i < 30; i++) {
            Tensor t = small(pool);
            if (t != null) {
                pinned++;
                t.set(0, 1, 299, 63, i);
            }
            assertTrue(pool.heldBytes() <= 3 * SMALL, "held " + pool.heldBytes() + " at call " + i);
        }
        assertTrue(pinned > 3, "outputs nobody held came back through the collector: " + pinned + " of 30 pinned");
        assertTrue(fake.allocations.get() <= 3, fake.allocations.get() + " blocks allocated");
        assertEquals(0, fake.badFrees.get());
    }

    @Test
    void keptBlocksOfOtherSizesAreFreedToMakeRoom() {
        FakePinned fake = new FakePinned();
        long four = PinnedOutputs.sizeClass(4L << 20);
        long six = PinnedOutputs.sizeClass(1100L * 1024 * 4);
        assertEquals(6L << 20, six);
        PinnedOutputs pool = new PinnedOutputs(fake, six + SMALL, () -> { });
        small(pool).close();
        pool.allocate(DType.F32, Layout.BHSD, 1, 1, 1024, 1024).close();
        assertEquals(four + SMALL, pool.keptBytes());
        Tensor other = pool.allocate(DType.F32, Layout.BHSD, 1, 1, 1100, 1024);
        assertNotNull(other, "room made by freeing kept blocks");
        assertEquals(2, fake.frees.get(), "both kept blocks freed to fit 6 MiB under 6.25");
        assertEquals(six, pool.heldBytes());
        pool.setLimit(0);
        other.close();
        assertEquals(0, pool.heldBytes(), "a block given back over a lowered bound is freed");
        assertNull(small(pool), "bound 0: pinned outputs off");
        assertEquals(0, fake.badFrees.get());
        assertTrue(fake.blocks.isEmpty());
    }

    @Test
    void whenTheHostPinsNoMoreKeptBlocksAreFreedAndThenTheCallerGetsNull() {
        FakePinned fake = new FakePinned();
        PinnedOutputs pool = new PinnedOutputs(fake, 1L << 30, () -> { });
        small(pool).close();
        fake.exhausted = true;
        assertNull(pool.allocate(DType.F32, Layout.BHSD, 1, 1, 1024, 1024));
        assertEquals(1, fake.frees.get(), "the kept block was freed before giving up");
        assertEquals(0, pool.heldBytes());
        fake.exhausted = false;
        assertNotNull(small(pool));
    }

    @Test
    void emptyInvalidAndOversizedRequestsGetNullWithoutAskingTheCollector() {
        FakePinned fake = new FakePinned();
        AtomicInteger collections = new AtomicInteger();
        PinnedOutputs pool = new PinnedOutputs(fake, SMALL, collections::incrementAndGet);
        assertNull(pool.allocate(DType.F32, Layout.BHSD, 1, 2, 0, 64), "no rows: nothing to pin");
        assertNull(pool.allocate(DType.F32, Layout.BHSD, 0, 2, 5, 64), "the heap allocation reports the bad shape");
        assertNull(pool.allocate(DType.F32, Layout.BHSD, 1, 4, 300, 64), "larger than the whole bound");
        assertEquals(0, collections.get());
        assertEquals(0, fake.allocations.get());
    }

    private static boolean eventually(BooleanSupplier condition) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            if (condition.getAsBoolean()) {
                return true;
            }
            System.gc();
            Thread.sleep(25);
        }
        return condition.getAsBoolean();
    }
}
