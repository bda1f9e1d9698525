package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sparsa.backend.DecodeShape;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's decode rule from the shape alone (host caches, head and value dims multiples of 8
 * from 8 to 256, any dtype and row count), and that a decode call refuses with the rule's own words.
 */
class CpuDecodeRefusalTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    private static DecodeShape shape(Device device, DType dtype, int headDim, int valueDim, int rows) {
        return new DecodeShape(device, dtype, headDim, valueDim, rows);
    }

    @Test
    void hostShapesWithDimsInTheRuleAreAccepted() {
        for (DType t : DType.values()) {
            for (int[] dims : new int[][] {{8, 8}, {64, 64}, {128, 128}, {256, 256}, {16, 40}, {192, 128}}) {
                for (int rows : new int[] {1, 7, 64}) {
                    assertNull(CPU.decodeRefusal(shape(Device.CPU, t, dims[0], dims[1], rows)),
                            t + " " + dims[0] + "/" + dims[1] + " rows " + rows);
                }
            }
        }
    }

    @Test
    void everyDimIsJudgedAsMultipleOfEightUpTo256() {
        for (int d = 1; d <= 300; d++) {
            boolean runs = d % 8 == 0 && d <= 256;
            String head = CPU.decodeRefusal(shape(Device.CPU, DType.F32, d, 64, 1));
            String value = CPU.decodeRefusal(shape(Device.CPU, DType.BF16, 64, d, 1));
            assertEquals(runs ? null : "headDim: the cpu backend runs multiples of 8 from 8 to 256, got " + d, head);
            assertEquals(runs ? null : "valueDim: the cpu backend runs multiples of 8 from 8 to 256, got " + d, value);
        }
    }

    @Test
    void refusalsSayWhy() {
        assertEquals("device: the cpu backend decodes host caches, this one is on cuda:1",
                CPU.decodeRefusal(shape(Device.cuda(1), DType.F16, 64, 64, 1)));
        // the device first, then the head dim, then the value dim
        assertEquals("device: the cpu backend decodes host caches, this one is on cuda:0",
                CPU.decodeRefusal(shape(Device.cuda(0), DType.F16, 12, 12, 1)));
        assertEquals("headDim: the cpu backend runs multiples of 8 from 8 to 256, got 12",
                CPU.decodeRefusal(shape(Device.CPU, DType.F16, 12, 4, 1)));
        assertThrows(IllegalArgumentException.class, () -> CPU.decodeRefusal((DecodeShape) null));
    }

    @Test
    void aCallIsRefusedWithTheShapesReason() {
        KvCache cache = ContiguousKvCache.allocate(DType.F32, 1, 1, 16, 12, 12);
        cache.appendStep(Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 3, 12),
                Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 3, 12));
        String reason = CPU.decodeRefusal(DecodeShape.of(cache, 2));
        assertEquals("headDim: the cpu backend runs multiples of 8 from 8 to 256, got 12", reason);
        assertEquals(reason, CPU.decodeRefusal(cache, 2));
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 2, 12);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 2, 12);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CPU.decode(q, cache, null, out, null, DecodeOptions.defaults()));
        assertEquals(reason, e.getMessage());
    }
}
