package dev.sparsa.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.testing.HostBackedDeviceMemory;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** Index lists as strided int32 views: layouts, padding, bounds, and the device form read through toHost. */
class IndexTensorTest {

    @Test
    void contiguousViewsReadRowMajor() {
        int[] data = new int[2 * 3 * 4 * 5];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        IndexTensor t = IndexTensor.of(data, 2, 3, 4, 5);
        assertEquals(((1 * 3 + 2) * 4 + 3) * 5 + 4, t.get(1, 2, 3, 4));
        int[] row = new int[7];
        t.readRow(1, 0, 2, row, 2);
        assertArrayEquals(new int[] {0, 0, 70, 71, 72, 73, 74}, row);
        assertSame(t, t.toHost());
        assertEquals(Device.CPU, t.device());
    }

    @Test
    void stridedViewsReadTheirElements() {
        int[] data = new int[40];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        // [1, 2, 3, 2]: rows 10 apart, entries 3 apart, heads broadcast (stride 0), offset 1
        IndexTensor t = IndexTensor.wrap(MemorySegment.ofArray(data), new int[] {1, 2, 3, 2}, new long[] {0, 0, 10, 3}, 1);
        int[] row = new int[2];
        t.readRow(0, 1, 2, row, 0);
        assertArrayEquals(new int[] {21, 24}, row);
        assertEquals(11, t.get(0, 0, 1, 0));
    }

    @Test
    void raggedRowsArePaddedWithMinusOne() {
        IndexTensor t = IndexTensor.ofRows(new int[][] {{3}, {}, {1, 2, 5}});
        assertArrayEquals(new int[] {1, 1, 3, 3}, t.shape());
        int[] row = new int[3];
        t.readRow(0, 0, 0, row, 0);
        assertArrayEquals(new int[] {3, -1, -1}, row);
        t.readRow(0, 0, 1, row, 0);
        assertArrayEquals(new int[] {-1, -1, -1}, row);
    }

    @Test
    void badShapesAndViewsAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> IndexTensor.of(new int[5], 1, 1, 2, 3));
        assertTrue(e.getMessage().startsWith("data: length 5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexTensor.of(new int[0], 1, 0, 0, 1));
        assertTrue(e.getMessage().startsWith("shape:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexTensor.wrap(MemorySegment.ofArray(new int[10]),
                new int[] {1, 1, 3, 4}, new long[] {12, 12, 4, 1}, 0));
        assertTrue(e.getMessage().contains("needs 48 bytes, segment has 40"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexTensor.wrap(MemorySegment.ofArray(new int[10]),
                new int[] {1, 1, 2, 2}, new long[] {4, 4, -2, 1}, 0));
        assertTrue(e.getMessage().contains("negative stride"), e.getMessage());
        assertThrows(IndexOutOfBoundsException.class, () -> IndexTensor.of(new int[6], 1, 1, 2, 3).get(0, 0, 2, 0));
    }

    @Test
    void deviceViewsAreReadThroughAHostCopy() {
        int[] data = new int[30];
        for (int i = 0; i < data.length; i++) {
            data[i] = 100 + i;
        }
        HostBackedDeviceMemory memory = new HostBackedDeviceMemory(Device.cuda(1), MemorySegment.ofArray(data));
        IndexTensor dev = IndexTensor.wrapDevice(memory, new int[] {1, 2, 2, 3}, new long[] {0, 7, 3, 1}, 4);
        assertEquals(Device.cuda(1), dev.device());
        assertThrows(IllegalStateException.class, () -> dev.get(0, 0, 0, 0));
        assertThrows(IllegalStateException.class, dev::segment);
        IndexTensor host = dev.toHost();
        assertEquals(100 + 4 + 7 + 3 + 2, host.get(0, 1, 1, 2));
        assertEquals(104, host.get(0, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> IndexTensor.wrapDevice(memory,
                new int[] {1, 1, 10, 4}, new long[] {40, 40, 4, 1}, 0));
    }
}
