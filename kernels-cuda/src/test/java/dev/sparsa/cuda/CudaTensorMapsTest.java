package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.sparsa.tensor.DType;
import org.junit.jupiter.api.Test;

/**
 * When the Hopper kernel's tensor maps are made and when its chunks fall back to {@code cp.async}, without a GPU:
 * the byte strides handed to the driver, the layouts TMA cannot describe, the off switch and the parameter's
 * size (sizeof(WgMaps) in sparsa_prefill_wgmma.cuh). {@link CudaTmaGpuTest} checks the maps on a device.
 */
class CudaTensorMapsTest {
    private static final long[] DIMS = {128, 1650, 2, 3};  // head dim, keys, KV heads, batch

    @Test
    void stridesGoToTheDriverInBytesInTheOrderKeyHeadBatch() {
        // BHSD: batch 2·1650·128, head 1650·128, key 128 elements
        assertArrayEquals(new long[] {256, 1650L * 256, 2L * 1650 * 256},
                CudaTensorMaps.strideBytes(new long[] {2L * 1650 * 128, 1650L * 128, 128}, DIMS, 128, 2));
        // BSHD: head 128, key 2·128
        assertArrayEquals(new long[] {512, 256, 2L * 1650 * 256},
                CudaTensorMaps.strideBytes(new long[] {2L * 1650 * 128, 128, 256}, DIMS, 128, 2));
    }

    @Test
    void aStrideTmaCannotStepRefusesTheMaps() {
        // 8 bytes between keys (not a multiple of 16), a zero or negative stride, 2^40 bytes or more
        assertNull(CudaTensorMaps.strideBytes(new long[] {1 << 20, 1 << 14, 4}, DIMS, 128, 2));
        assertNull(CudaTensorMaps.strideBytes(new long[] {1 << 20, 0, 128}, DIMS, 128, 2));
        assertNull(CudaTensorMaps.strideBytes(new long[] {1 << 20, -128, 128}, DIMS, 128, 2));
        assertNull(CudaTensorMaps.strideBytes(new long[] {1L << 39, 1 << 14, 128}, DIMS, 128, 2));
    }

    @Test
    void theStrideOfALengthOneDimensionIsNeverSteppedSoAnyValueIsReplaced() {
        long[] one = {128, 1650, 1, 1};
        assertArrayEquals(new long[] {256, 256, 256}, CudaTensorMaps.strideBytes(new long[] {0, 3, 128}, one, 128, 2));
    }

    @Test
    void offWithoutTheSwitchAndForOtherElementSizes() {
        long[] s = {2L * 1650 * 128, 1650L * 128, 128};
        String before = System.getProperty(CudaTensorMaps.PROPERTY);
        try {
            System.setProperty(CudaTensorMaps.PROPERTY, "false");
            assertArrayEquals(CudaTensorMaps.off(), CudaTensorMaps.of(1 << 20, 1 << 21, 1 << 22, s, s, s, 128, 1650, 1650, 2, 2, 3, DType.BF16));
        } finally {
            if (before == null) {
                System.clearProperty(CudaTensorMaps.PROPERTY);
            } else {
                System.setProperty(CudaTensorMaps.PROPERTY, before);
            }
        }
        // f32 is not mapped, nor rows that are not whole 128-byte blocks (e4m3 at head dim 64)
        assertArrayEquals(CudaTensorMaps.off(), CudaTensorMaps.of(1 << 20, 1 << 21, 1 << 22, s, s, s, 128, 1650, 1650, 2, 2, 3, DType.F32));
        assertArrayEquals(CudaTensorMaps.off(), CudaTensorMaps.of(1 << 20, 1 << 21, 1 << 22, s, s, s, 64, 1650, 1650, 2, 2, 3, DType.E4M3));
        assertEquals(448, CudaTensorMaps.off().length);
        for (byte b : CudaTensorMaps.off()) {
            assertEquals(0, b);
        }
    }
}
