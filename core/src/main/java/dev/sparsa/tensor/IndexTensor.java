package dev.sparsa.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * A strided, four-axis view {@code [batch, heads, rows, width]} of 32-bit signed integers: index
 * lists such as an indexer's top-k key positions per query row ({@code [B, H, Nq, k]}), a gate's
 * selected key blocks per query block, or their lengths ({@code width} 1). The memory is the host's
 * (a {@link MemorySegment}: an {@code int[]} or a native segment) or an accelerator's (a {@link
 * DeviceMemory} view); {@link #device()} says which, and {@link #toHost()} copies a device view to
 * the host, so that a selection computed on a GPU can be handed over in the same type.
 *
 * <p>Strides are in elements and non-negative (a stride of 0 broadcasts an axis). Views never own
 * their memory. Elements are read through {@link #get} and {@link #readRow}; only host views can be
 * read.
 *
 * <p>Throws {@link IllegalArgumentException} from every factory when an axis is not positive (rows may be 0),
 *     a stride or the offset is negative, or the view would reach outside its memory; the message
 *     names the argument
 */
public final class IndexTensor {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    private final MemorySegment segment;
    private final DeviceMemory memory;
    private final int[] shape;
    private final long[] strides;
    private final long offset;

    private IndexTensor(MemorySegment segment, DeviceMemory memory, int[] shape, long[] strides, long offset) {
        this.segment = segment;
        this.memory = memory;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    /** A contiguous view {@code [batch, heads, rows, width]} (row-major) over {@code data}, without copying. */
    public static IndexTensor of(int[] data, int batch, int heads, int rows, int width) {
        Objects.requireNonNull(data, "data");
        long n = checkShape(batch, heads, rows, width);
        if (data.length != n) {
            throw new IllegalArgumentException("data: length " + data.length + " does not match the shape's " + n
                    + " elements [" + batch + ", " + heads + ", " + rows + ", " + width + "]");
        }
        return new IndexTensor(MemorySegment.ofArray(data), null, new int[] {batch, heads, rows, width},
                contiguous(batch, heads, rows, width), 0);
    }

    /** One list per row of one (batch, head): {@code [1, 1, rows.length, width]} padded with −1 to the longest row. */
    public static IndexTensor ofRows(int[][] rows) {
        Objects.requireNonNull(rows, "rows");
        int width = 1;
        for (int r = 0; r < rows.length; r++) {
            if (rows[r] == null) {
                throw new IllegalArgumentException("rows: row " + r + " is null");
            }
            width = Math.max(width, rows[r].length);
        }
        int[] data = new int[rows.length * width];
        Arrays.fill(data, -1);
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, data, r * width, rows[r].length);
        }
        return of(data, 1, 1, rows.length, width);
    }

    /**
     * A view over host memory with explicit element strides and element offset.
     *
     * @throws IllegalArgumentException if a stride is negative or the view reaches past the segment
     */
    public static IndexTensor wrap(MemorySegment segment, int[] shape, long[] strides, long offset) {
        Objects.requireNonNull(segment, "segment");
        checkView(segment.byteSize(), "segment", shape, strides, offset);
        return new IndexTensor(segment, null, shape.clone(), strides.clone(), offset);
    }

    /**
     * A view over accelerator memory (not owned: the caller frees it), for selections computed on a
     * device. Backends that cannot read it on the device copy it with {@link #toHost()}.
     *
     * @throws IllegalArgumentException if a stride is negative or the view reaches past the memory
     */
    public static IndexTensor wrapDevice(DeviceMemory memory, int[] shape, long[] strides, long offset) {
        Objects.requireNonNull(memory, "memory");
        checkView(memory.byteSize(), "memory", shape, strides, offset);
        return new IndexTensor(null, memory, shape.clone(), strides.clone(), offset);
    }

    public int batch() {
        return shape[0];
    }

    public int heads() {
        return shape[1];
    }

    /** Axis 2: query rows, or query blocks. */
    public int rows() {
        return shape[2];
    }

    /** Axis 3: the list capacity of each row. */
    public int width() {
        return shape[3];
    }

    /** A copy of the shape. */
    public int[] shape() {
        return shape.clone();
    }

    /** A copy of the element strides. */
    public long[] strides() {
        return strides.clone();
    }

    /** Where the memory lives. */
    public Device device() {
        return memory == null ? Device.CPU : memory.device();
    }

    public boolean isHost() {
        return memory == null;
    }

    /** The host segment. @throws IllegalStateException for a device view */
    public MemorySegment segment() {
        requireHost();
        return segment;
    }

    /** The device memory. @throws IllegalStateException for a host view */
    public DeviceMemory deviceMemory() {
        if (memory == null) {
            throw new IllegalStateException("index tensor: this view is on the host");
        }
        return memory;
    }

    /** Element index of (b, h, r, i) from the start of the memory. */
    public long index(int b, int h, int r, int i) {
        return offset + b * strides[0] + h * strides[1] + r * strides[2] + i * strides[3];
    }

    /** One element. @throws IllegalStateException for a device view */
    public int get(int b, int h, int r, int i) {
        requireHost();
        Objects.checkIndex(b, shape[0]);
        Objects.checkIndex(h, shape[1]);
        Objects.checkIndex(r, shape[2]);
        Objects.checkIndex(i, shape[3]);
        return segment.getAtIndex(I32, index(b, h, r, i));
    }

    /** Copies row (b, h, r) into {@code dst[dstOffset .. dstOffset + width)}. @throws IllegalStateException for a device view */
    public void readRow(int b, int h, int r, int[] dst, int dstOffset) {
        requireHost();
        Objects.checkIndex(b, shape[0]);
        Objects.checkIndex(h, shape[1]);
        Objects.checkIndex(r, shape[2]);
        Objects.checkFromIndexSize(dstOffset, shape[3], dst.length);
        long at = index(b, h, r, 0);
        if (strides[3] == 1) {
            MemorySegment.copy(segment, I32, at * 4, dst, dstOffset, shape[3]);
            return;
        }
        for (int i = 0; i < shape[3]; i++) {
            dst[dstOffset + i] = segment.getAtIndex(I32, at + i * strides[3]);
        }
    }

    /**
     * This view's values in host memory: itself when it is on the host, else a contiguous copy of the
     * same shape (element by element through the memory's span).
     */
    public IndexTensor toHost() {
        if (memory == null) {
            return this;
        }
        long last = offset;
        for (int a = 0; a < 4; a++) {
            last += (long) Math.max(shape[a] - 1, 0) * strides[a];
        }
        long span = shape[2] == 0 ? 0 : last + 1 - offset;
        if (span > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("index tensor: a span of " + span + " ints does not fit a Java array");
        }
        int[] staged = new int[(int) span];
        if (span > 0) {
            memory.copyToHost(MemorySegment.ofArray(staged), offset * 4);
        }
        return new IndexTensor(MemorySegment.ofArray(staged), null, shape.clone(), strides.clone(), 0);
    }

    private void requireHost() {
        if (memory != null) {
            throw new IllegalStateException("index tensor: on " + memory.device() + "; copy it with toHost() first");
        }
    }

    @Override
    public String toString() {
        return "IndexTensor" + Arrays.toString(shape) + " strides " + Arrays.toString(strides)
                + (memory == null ? "" : " on " + memory.device());
    }

    private static long[] contiguous(int batch, int heads, int rows, int width) {
        return new long[] {(long) heads * rows * width, (long) rows * width, width, 1};
    }

    private static long checkShape(int batch, int heads, int rows, int width) {
        if (batch < 1 || heads < 1 || rows < 0 || width < 1) {
            throw new IllegalArgumentException("shape: need batch >= 1, heads >= 1, rows >= 0, width >= 1, got [" + batch
                    + ", " + heads + ", " + rows + ", " + width + "]");
        }
        try {
            return Math.multiplyExact(Math.multiplyExact((long) batch * heads, (long) rows), (long) width);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("shape: [" + batch + ", " + heads + ", " + rows + ", " + width
                    + "] has more elements than a view can address");
        }
    }

    private static void checkView(long byteSize, String what, int[] shape, long[] strides, long offset) {
        if (shape == null || shape.length != 4) {
            throw new IllegalArgumentException("shape: expected 4 axes [batch, heads, rows, width], got "
                    + Arrays.toString(shape));
        }
        if (strides == null || strides.length != 4) {
            throw new IllegalArgumentException("strides: expected 4 strides, got " + Arrays.toString(strides));
        }
        checkShape(shape[0], shape[1], shape[2], shape[3]);
        if (offset < 0) {
            throw new IllegalArgumentException("offset: must be >= 0, got " + offset);
        }
        try {
            long last = offset;
            for (int a = 0; a < 4; a++) {
                if (strides[a] < 0) {
                    throw new IllegalArgumentException("strides: axis " + a + " has negative stride " + strides[a]);
                }
                last = Math.addExact(last, Math.multiplyExact((long) Math.max(shape[a] - 1, 0), strides[a]));
            }
            if (shape[2] > 0 && Math.multiplyExact(last + 1, 4L) > byteSize) {
                throw new IllegalArgumentException(what + ": view " + Arrays.toString(shape) + " strides "
                        + Arrays.toString(strides) + " offset " + offset + " needs " + (last + 1) * 4 + " bytes, "
                        + what + " has " + byteSize);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": view " + Arrays.toString(shape) + " strides "
                    + Arrays.toString(strides) + " offset " + offset + " overflows a 64-bit byte index");
        }
    }
}
