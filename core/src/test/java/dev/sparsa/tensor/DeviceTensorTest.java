package dev.sparsa.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.testing.HostBackedDeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Device tensors through {@link DeviceMemory}, against a stand-in device whose memory is a host
 * segment that Java code may only reach through the interface's copies.
 */
class DeviceTensorTest {
    private static final Device FAKE = new Device("fake", 0);

    private static Tensor random(DType dtype, Layout layout, int b, int h, int s, int d, long seed) {
        Tensor t = Tensor.allocate(dtype, layout, b, h, s, d);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < h; j++) {
                for (int k = 0; k < s; k++) {
                    for (int l = 0; l < d; l++) {
                        t.set(i, j, k, l, (float) rnd.nextGaussian());
                    }
                }
            }
        }
        return t;
    }

    @Test
    void valuesTravelToTheDeviceAndBackInAnyLayout() {
        for (DType dtype : DType.values()) {
            for (Layout layout : Layout.values()) {
                Tensor host = random(dtype, layout, 2, 3, 5, 8, 7);
                HostBackedDeviceMemory mem = new HostBackedDeviceMemory(FAKE, host.spanBytes());
                Tensor dev = Tensor.onDevice(mem, dtype, layout, 2, 3, 5, 8);
                assertEquals(new Device("fake", 0), dev.device());
                assertFalse(dev.isHost());
                Tensor.copy(host, dev);
                assertArrayEquals(host.toFloatArray(), dev.toHost().toFloatArray(), dtype + " " + layout);
                Tensor back = Tensor.allocate(dtype, Layout.BHSD, 2, 3, 5, 8);
                Tensor.copy(dev, back);
                assertArrayEquals(host.toFloatArray(), back.toFloatArray());
                dev.close();
                assertTrue(mem.released(), "an owning device tensor frees its memory");
            }
        }
    }

    @Test
    void writingAViewWithHolesLeavesTheHolesAlone() {
        // a device buffer of [1, 4, 6, 8]; the view is heads 1..2 of it (a BHSD slice with holes)
        HostBackedDeviceMemory mem = new HostBackedDeviceMemory(FAKE, 4L * 4 * 6 * 8);
        Tensor whole = Tensor.onDevice(mem, DType.F32, Layout.BHSD, 1, 4, 6, 8);
        Tensor filler = random(DType.F32, Layout.BHSD, 1, 4, 6, 8, 1);
        Tensor.copy(filler, whole);
        Tensor view = Tensor.wrapDevice(mem, DType.F32, new int[] {1, 2, 6, 8}, new long[] {4 * 6 * 8, 2 * 6 * 8, 8, 1},
                6 * 8);
        assertFalse(view.spanIsDense());
        Tensor values = random(DType.F32, Layout.BSHD, 1, 2, 6, 8, 2);
        Tensor.copy(values, view);
        Tensor after = whole.toHost();
        for (int h = 0; h < 4; h++) {
            for (int s = 0; s < 6; s++) {
                for (int d = 0; d < 8; d++) {
                    float expected = h == 1 ? values.get(0, 0, s, d) : h == 3 ? values.get(0, 1, s, d) : filler.get(0, h, s, d);
                    assertEquals(expected, after.get(0, h, s, d), "h=" + h + " s=" + s + " d=" + d);
                }
            }
        }
        view.close();
        assertFalse(mem.released(), "a view frees nothing");
    }

    @Test
    void hostAccessToADeviceTensorSaysToCopyIt() {
        Tensor dev = Tensor.onDevice(new HostBackedDeviceMemory(FAKE, 4 * 16), DType.F32, Layout.BHSD, 1, 1, 2, 8);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.get(0, 0, 0, 0));
        assertTrue(e.getMessage().contains("fake:0") && e.getMessage().contains("toHost()"), e.getMessage());
        assertThrows(IllegalStateException.class, dev::segment);
        assertThrows(IllegalStateException.class, () -> Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 1, 1).deviceMemory());
    }

    @Test
    void viewsThatLeaveTheirMemoryOrOverflowAreRefused() {
        HostBackedDeviceMemory mem = new HostBackedDeviceMemory(FAKE, 4 * 16);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Tensor.onDevice(mem, DType.F32, Layout.BHSD, 1, 1, 3, 8));
        assertTrue(e.getMessage().startsWith("memory:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(MemorySegment.ofArray(new float[16]), DType.F32,
                new int[] {1, 1, 2, 8}, new long[] {16, 16, 8, 1}, 1L << 62));
        assertTrue(e.getMessage().contains("overflows") || e.getMessage().startsWith("segment:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tensor.of(new float[0], Layout.BHSD, 65536, 65536, 65536, 65536));
        assertTrue(e.getMessage().startsWith("shape:"), e.getMessage());
    }
}
