package dev.sparsa.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.HostBackedDeviceMemory;
import dev.sparsa.testing.KvProblems;
import org.junit.jupiter.api.Test;

/**
 * Caches whose storage is device memory (a stand-in whose bytes Java reaches only through copies):
 * appends, gathers and Quest's bounds go through the same Tensor views and copies as on a GPU.
 */
class DeviceKvCacheTest {
    private static final Device STANDIN = new Device("standin", 0);

    private static Tensor device(DType dtype, int a, int h, int s, int d) {
        HostBackedDeviceMemory memory = new HostBackedDeviceMemory(STANDIN, (long) a * h * s * d * dtype.byteSize());
        return Tensor.onDevice(memory, dtype, Layout.BHSD, a, h, s, d);
    }

    @Test
    void pagedAndContiguousCachesOnADeviceHoldWhatWasAppended() {
        int[] lengths = {30, 0, 75};
        KvProblems.Caches host = KvProblems.caches(9, DType.BF16, lengths, 2, 16, 8, 8, 11);
        int pages = 20;
        PagedKvCache paged = PagedKvCache.wrap(device(DType.BF16, pages, 2, 8, 16), device(DType.BF16, pages, 2, 8, 8),
                device(DType.BF16, pages, 2, 2, 16), 8, 3, new PageAllocator(pages));
        ContiguousKvCache flat = ContiguousKvCache.wrap(device(DType.BF16, 3, 2, 80, 16), device(DType.BF16, 3, 2, 80, 8),
                new int[3]);
        assertEquals(new Device("standin", 0), paged.device());
        for (int b = 0; b < 3; b++) {
            for (int t = 0; t < lengths[b]; t += 7) {
                int n = Math.min(7, lengths[b] - t);
                // rows from the host, converted from f32 on the way in
                Tensor k = host.keys()[b].narrowSeq(t, n).to(DType.F32, Layout.BSHD);
                Tensor v = host.values()[b].narrowSeq(t, n);
                paged.append(b, k, v);
                flat.append(b, k, v);
            }
        }
        for (int b = 0; b < 3; b++) {
            assertArrayEquals(host.keys()[b].toFloatArray(), paged.keys(b).toFloatArray());
            assertArrayEquals(host.values()[b].toFloatArray(), paged.values(b).toFloatArray());
            assertArrayEquals(host.keys()[b].toFloatArray(), flat.keys(b).toHost().toFloatArray());
            // the device's bounds equal the host cache's (which equal bounds from scratch, see KvCacheTest)
            for (int p = 0; p < paged.pageCount(b); p++) {
                Tensor dev = paged.pageBounds().toHost();
                Tensor ref = host.paged().pageBounds();
                float[] a = new float[16];
                float[] e = new float[16];
                for (int g = 0; g < 2; g++) {
                    for (int side = 0; side < 2; side++) {
                        dev.readRow(paged.blockTable(b)[p], g, side, a, 0);
                        ref.readRow(host.paged().blockTable(b)[p], g, side, e, 0);
                        assertArrayEquals(e, a, "sequence " + b + " page " + p);
                    }
                }
            }
        }
        paged.truncate(2, 70);
        assertEquals(9, paged.pageCount(2));
        var full = assertThrows(IllegalArgumentException.class, () -> flat.append(2, Tensor.allocate(DType.F32,
                Layout.BHSD, 1, 2, 6, 16), Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 6, 8)));
        assertEquals(true, full.getMessage().contains("sequence 2"), full.getMessage());
    }
}
