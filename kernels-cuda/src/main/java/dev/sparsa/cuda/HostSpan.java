package dev.sparsa.cuda;

import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The bytes of a host tensor's segment its view reaches: from element (0,0,0,0) to its last element.
 * {@link #dense()} is true when the view's elements fill that span exactly (no holes, no repeats), so
 * that copying the span back cannot overwrite anything outside the view.
 */
record HostSpan(long firstElement, long elements, boolean dense, int elementBytes) {

    static HostSpan of(Tensor t) {
        int[] shape = t.shape();
        long[] st = t.strides();
        long count = t.elementCount();
        long last = 0;
        for (int i = 0; i < 4; i++) {
            last += (long) Math.max(shape[i] - 1, 0) * st[i];
        }
        long elements = count == 0 ? 0 : last + 1;
        return new HostSpan(t.offset(), elements, count == 0 || (count == elements && isPacked(shape, st)), t.dtype().byteSize());
    }

    /** True when, ordered by stride, each axis's stride is the product of the sizes of the axes under it. */
    private static boolean isPacked(int[] shape, long[] st) {
        Integer[] axes = {0, 1, 2, 3};
        java.util.Arrays.sort(axes, (a, b) -> Long.compare(st[a], st[b]));
        long expected = 1;
        for (int a : axes) {
            if (shape[a] == 1) {
                continue;
            }
            if (st[a] != expected) {
                return false;
            }
            expected *= shape[a];
        }
        return true;
    }

    long bytes() {
        return elements * elementBytes;
    }

    /** The span as a slice of the tensor's segment. */
    MemorySegment segment(Tensor t) {
        return t.segment().asSlice(firstElement * elementBytes, bytes());
    }

    /** A heap tensor with the same shape, dtype and strides over a fresh span-sized array. */
    static Tensor scratchLike(Tensor t) {
        HostSpan s = of(t);
        MemorySegment seg = MemorySegment.ofArray(new byte[(int) Math.max(s.bytes(), 1)]);
        return Tensor.wrap(seg, t.dtype(), t.shape(), t.strides(), 0);
    }

    /** Copies every element of view {@code src} to the same index of view {@code dst} (same shape). */
    static void copyView(Tensor src, Tensor dst) {
        float[] row = new float[src.dim()];
        for (int b = 0; b < src.batch(); b++) {
            for (int h = 0; h < src.heads(); h++) {
                for (int s = 0; s < src.seqLen(); s++) {
                    src.readRow(b, h, s, row, 0);
                    dst.writeRow(b, h, s, row, 0);
                }
            }
        }
    }
}
