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

    /** The vector scans (NaN-skipping extremes, counts, bit sets, ranges) equal plain loops. */
    @Test
    void vectorScansEqualPlainLoops() {
        SplittableRandom rnd = new SplittableRandom(12);
        for (int n : new int[] {0, 1, 7, 8, 63, 64, 65, 130, 1000}) {
            float[] a = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = rnd.nextInt(6) == 0 ? Float.NaN : rnd.nextInt(6) == 0 ? 0.5f : (float) rnd.nextGaussian();
            }
            float lo = Float.POSITIVE_INFINITY;
            float hi = Float.NEGATIVE_INFINITY;
            for (float v : a) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            org.junit.jupiter.api.Assertions.assertEquals(hi, Vectors.maxSkippingNaN(a, 0, n), "max n=" + n);
            long nonNaN = java.util.stream.IntStream.range(0, n).filter(i -> !Float.isNaN(a[i])).count();
            org.junit.jupiter.api.Assertions.assertEquals(new Vectors.Range(lo, hi, (int) nonNaN), Vectors.range(a, 0, n), "range n=" + n);
            if (n > 3) { // an offset: the scans read a[from, from + n)
                float[] shifted = new float[n + 3];
                System.arraycopy(a, 0, shifted, 3, n);
                org.junit.jupiter.api.Assertions.assertEquals(Vectors.range(a, 0, n), Vectors.range(shifted, 3, n), "offset n=" + n);
                org.junit.jupiter.api.Assertions.assertEquals(Vectors.countAtLeast(a, 0, n, 0f), Vectors.countAtLeast(shifted, 3, n, 0f));
            }
            for (float t : new float[] {-1f, 0.5f, 2f}) {
                int count = 0;
                long[] bits = new long[(n + 63) / 64];
                java.util.List<Integer> inside = new java.util.ArrayList<>();
                for (int i = 0; i < n; i++) {
                    if (a[i] >= t) {
                        count++;
                        bits[i / 64] |= 1L << i;
                    }
                    if (a[i] >= -Math.abs(t) && a[i] < Math.abs(t)) {
                        inside.add(i);
                    }
                }
                org.junit.jupiter.api.Assertions.assertEquals(count, Vectors.countAtLeast(a, 0, n, t), "count n=" + n + " t=" + t);
                long[] got = new long[bits.length];
                java.util.Arrays.fill(got, -1L); // overwritten, not or-ed
                Vectors.bitsAtLeast(a, 0, n, t, got);
                if (n % 64 != 0 && got.length > 0) {
                    got[got.length - 1] &= (1L << (n % 64)) - 1; // bits past n are not the method's
                }
                assertArrayEquals(bits, got, "bits n=" + n + " t=" + t);
                int[] out = new int[n];
                long[] split = new long[bits.length];
                java.util.Arrays.fill(split, -1L);
                int m = Vectors.split(a, 0, n, -Math.abs(t), Math.abs(t), split, out);
                assertArrayEquals(inside.stream().mapToInt(Integer::intValue).toArray(), java.util.Arrays.copyOf(out, m),
                        "inside n=" + n + " t=" + t);
                if (n % 64 != 0 && split.length > 0) {
                    split[split.length - 1] &= (1L << (n % 64)) - 1;
                }
                long[] aboveAbs = new long[bits.length];
                for (int i = 0; i < n; i++) {
                    if (a[i] >= Math.abs(t)) {
                        aboveAbs[i / 64] |= 1L << i;
                    }
                }
                assertArrayEquals(aboveAbs, split, "above n=" + n + " t=" + t);
            }
        }
    }
}
