package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Reading straight from a tensor gives bitwise what the flat-array helpers give. */
class VectorsTest {
    @Test
    void tensorMeanPoolAndRowRangeEqualFlatHelpers() {
        SplittableRandom rnd = new SplittableRandom(8);
        for (Layout layout : Layout.values()) {
            Tensor t = Tensor.allocate(DType.F32, layout, 2, 3, 37, 6);
            float[] row = new float[6];
            for (int b = 0; b < 2; b++) {
                for (int h = 0; h < 3; h++) {
                    for (int s = 0; s < 37; s++) {
                        for (int x = 0; x < 6; x++) {
                            row[x] = (float) rnd.nextGaussian();
                        }
                        t.writeRow(b, h, s, row, 0);
                    }
                }
            }
            float[] flat = Vectors.rows(t, 1, 2);
            for (int size : new int[] {1, 5, 8, 37, 64}) {
                assertArrayEquals(Vectors.meanPool(flat, 37, 6, size), Vectors.meanPool(t, 1, 2, size), "size " + size);
            }
            assertArrayEquals(java.util.Arrays.copyOfRange(flat, 10 * 6, 30 * 6), Vectors.rows(t, 1, 2, 10, 30));
            // panels packed from the tensor score exactly like panels packed from the flat rows
            float[] a = new float[KeyPanels.paddedLength(37)];
            float[] b = new float[KeyPanels.paddedLength(37)];
            KeyPanels.of(t, 1, 2).dots(flat, 3, 37, a);
            KeyPanels.of(flat, 37, 6).dots(flat, 3, 37, b);
            assertArrayEquals(b, a);
        }
    }
}
