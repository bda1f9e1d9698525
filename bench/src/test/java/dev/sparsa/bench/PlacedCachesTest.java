package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Copies of the benchmarks' host tensors where a backend runs (the CPU backend's host here). */
class PlacedCachesTest {

    @Test
    void anE4m3CopyKeepsItsCodesAndScales() {
        byte[] codes = new byte[2 * 3 * 16];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (i * 37 % 254 < 127 ? i * 37 % 254 : i * 37 % 254 + 1); // finite codes only
        }
        Tensor host = Tensor.ofE4m3(codes, new float[] {0.01f, 0.02f}, Layout.BHSD, 1, 2, 3, 16);
        List<Tensor> owned = new ArrayList<>();
        Tensor copy = PlacedCaches.copy(new CpuBackend(), Device.CPU, host, owned);
        assertArrayEquals(host.scales(), copy.scales());
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 3; s++) {
                for (int d = 0; d < 16; d++) {
                    assertEquals(host.get(0, h, s, d), copy.get(0, h, s, d), "element " + h + "," + s + "," + d);
                }
            }
        }
        assertEquals(1, owned.size());
        owned.forEach(Tensor::close);
    }

    @Test
    void aBf16CopyIsTheSameValues() {
        Tensor host = Tensor.allocate(DType.BF16, Layout.BSHD, 1, 2, 3, 8);
        host.set(0, 1, 2, 7, 1.5f);
        List<Tensor> owned = new ArrayList<>();
        Tensor copy = PlacedCaches.copy(new CpuBackend(), Device.CPU, host, owned);
        assertEquals(1.5f, copy.get(0, 1, 2, 7));
        assertEquals(DType.BF16, copy.dtype());
    }

    @Test
    void aCopyKeepsItsHostsOrderWhereItHasOne() {
        Tensor nhd = Tensor.allocate(DType.F32, Layout.BSHD, 3, 2, 4, 8);
        nhd.set(2, 1, 3, 5, 2.5f);
        List<Tensor> owned = new ArrayList<>();
        Tensor copy = PlacedCaches.copy(new CpuBackend(), Device.CPU, nhd, owned);
        assertArrayEquals(nhd.strides(), copy.strides());
        assertEquals(2.5f, copy.get(2, 1, 3, 5));
        // no order of its own (a slice): BHSD
        Tensor slice = PlacedCaches.copy(new CpuBackend(), Device.CPU, nhd.narrowSeq(2, 2), owned);
        assertArrayEquals(Layout.BHSD.strides(3, 2, 2, 8), slice.strides());
        assertEquals(2.5f, slice.get(2, 1, 1, 5));
    }
}
