package dev.sparsa.io;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * An array of any rank in C order (the last axis varies fastest), little-endian, over a memory
 * segment: what a {@code .npy} file or one {@code .safetensors} entry holds. Reading a file gives an
 * array over the mapped file itself; {@link #asTensor} views it as an attention tensor without
 * copying.
 *
 * @param dtype the element type
 * @param shape the axis lengths, outermost first (rank 0 is a scalar); each ≥ 0
 * @param data the elements, exactly {@code elementCount() * dtype.byteSize()} bytes
 * @throws IllegalArgumentException if an axis is negative, the element count overflows, or {@code
 *     data} has another size
 */
public record NdArray(DType dtype, long[] shape, MemorySegment data) {
    public NdArray {
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(data, "data");
        shape = shape.clone();
        long bytes = Math.multiplyExact(count(shape), (long) dtype.byteSize());
        if (data.byteSize() != bytes) {
            throw new IllegalArgumentException("data: shape " + Arrays.toString(shape) + " of " + dtype + " needs " + bytes
                    + " bytes, the segment has " + data.byteSize());
        }
    }

    /** Elements in {@code shape}. @throws IllegalArgumentException for a negative axis or an overflow */
    static long count(long[] shape) {
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("shape: axis " + i + " is negative in " + Arrays.toString(shape));
            }
            try {
                n = Math.multiplyExact(n, shape[i]);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("shape: " + Arrays.toString(shape) + " overflows a 64-bit element count");
            }
        }
        return n;
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of axes. */
    public int rank() {
        return shape.length;
    }

    /** Number of elements. */
    public long elementCount() {
        return count(shape);
    }

    /** Element {@code i} (in C order) widened to f32 (e4m3: the code's value, unscaled). */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case F16 -> Float.float16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case BF16 -> DType.bf16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case E4M3 -> DType.e4m3ToFloat(data.getAtIndex(ValueLayout.JAVA_BYTE, i));
        };
    }

    /**
     * A view of this array as a {@code [batch, heads, seq, dim]} tensor, without copying. The axes
     * are read in the order the layout names: rank 4 is {@code [B, H, S, D]} for {@link Layout#BHSD}
     * and {@code [B, S, H, D]} for {@link Layout#BSHD}; rank 3 drops the batch axis ({@code [H, S, D]}
     * or {@code [S, H, D]}); rank 2 is {@code [S, D]}, one head. The tensor shares this array's memory.
     *
     * @throws IllegalArgumentException for rank below 2 or above 4, an axis of length 0 or above
     *     {@link Integer#MAX_VALUE}
     */
    public Tensor asTensor(Layout layout) {
        Objects.requireNonNull(layout, "layout");
        long[] s = switch (shape.length) {
            case 4 -> shape;
            case 3 -> new long[] {1, shape[0], shape[1], shape[2]};
            case 2 -> layout == Layout.BHSD ? new long[] {1, 1, shape[0], shape[1]} : new long[] {1, shape[0], 1, shape[1]};
            default -> throw new IllegalArgumentException("array: an attention tensor needs rank 2, 3 or 4 ([S, D], "
                    + (layout == Layout.BHSD ? "[H, S, D], [B, H, S, D]" : "[S, H, D], [B, S, H, D]") + "), got shape "
                    + Arrays.toString(shape));
        };
        for (int i = 0; i < 4; i++) {
            if (s[i] < 1 || s[i] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("array: axis of length " + s[i] + " in shape " + Arrays.toString(shape)
                        + " cannot be a tensor axis");
            }
        }
        int b = (int) s[0];
        int h = (int) (layout == Layout.BHSD ? s[1] : s[2]);
        int n = (int) (layout == Layout.BHSD ? s[2] : s[1]);
        int d = (int) s[3];
        return Tensor.wrap(data, dtype, new int[] {b, h, n, d}, layout.strides(b, h, n, d), 0);
    }

    /**
     * A new heap array holding a tensor's values in the given layout's axis order ({@code [B, H, S,
     * D]} or {@code [B, S, H, D]}), in the tensor's type: what {@link Npy#write} and {@link
     * Safetensors#write} store for a tensor. An e4m3 tensor gives its codes; its scales ({@link
     * Tensor#scales()}) are not part of the array, so store them beside it.
     *
     * @throws IllegalStateException for a device tensor (copy it to the host first)
     */
    public static NdArray of(Tensor t, Layout layout) {
        Objects.requireNonNull(t, "t");
        Objects.requireNonNull(layout, "layout");
        int b = t.batch();
        int h = t.heads();
        int n = t.seqLen();
        int d = t.dim();
        long elements = t.elementCount();
        if (elements > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("t: " + elements + " elements do not fit a heap array");
        }
        MemorySegment seg = switch (t.dtype()) {
            case F32 -> MemorySegment.ofArray(new float[(int) elements]);
            case F16, BF16 -> MemorySegment.ofArray(new short[(int) elements]);
            case E4M3 -> MemorySegment.ofArray(new byte[(int) elements]);
        };
        Tensor dst = Tensor.wrap(seg, t.dtype(), new int[] {b, h, n, d}, layout.strides(b, h, n, d), 0);
        if (t.dtype().isScaled()) {
            dst = dst.withScales(t.scales()); // the same scales: the codes are copied as they are
        }
        Tensor.copy(t, dst);
        long[] shape = layout == Layout.BHSD ? new long[] {b, h, n, d} : new long[] {b, n, h, d};
        return new NdArray(t.dtype(), shape, seg);
    }

    /** A heap f32 array over {@code values} (not copied) with the given shape. */
    public static NdArray ofFloats(float[] values, long... shape) {
        return new NdArray(DType.F32, shape, MemorySegment.ofArray(values));
    }

    /** A heap f16 or bf16 array over the bit patterns in {@code bits} (not copied). */
    public static NdArray ofBits(DType dtype, short[] bits, long... shape) {
        if (dtype.byteSize() != 2) {
            throw new IllegalArgumentException("dtype: 16-bit patterns cannot hold " + dtype);
        }
        return new NdArray(dtype, shape, MemorySegment.ofArray(bits));
    }

    /** A heap e4m3 array over the codes in {@code codes} (not copied). */
    public static NdArray ofE4m3(byte[] codes, long... shape) {
        return new NdArray(DType.E4M3, shape, MemorySegment.ofArray(codes));
    }

    /** The elements widened to f32, in C order (a copy; e4m3: the codes' values, unscaled). */
    public float[] toFloatArray() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("array of " + n + " elements does not fit a Java array");
        }
        float[] out = new float[(int) n];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, out, 0, out.length);
            return out;
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = getFloat(i);
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NdArray a && a.dtype == dtype && Arrays.equals(a.shape, shape)
                && data.byteSize() == a.data.byteSize() && data.mismatch(a.data) < 0;
    }

    @Override
    public int hashCode() {
        return 31 * dtype.hashCode() + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return "NdArray[" + dtype + " " + Arrays.toString(shape) + "]";
    }
}
