package dev.sparsa.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * A strided, four-axis view {@code [batch, heads, seq, dim]} in f32, f16, bf16 or e4m3, over host memory
 * (a {@link MemorySegment}: a Java array or a native segment) or over an accelerator's memory (a
 * {@link DeviceMemory} that a backend provides). {@link #device()} says which; the facade, the
 * backend SPI and the argument checks take both, and a call returns its output where its inputs
 * live.
 *
 * <p>Ownership: heap tensors are collected with their arrays; native host tensors live as long as
 * the {@link Arena} they were allocated in; a device tensor made by {@link #onDevice} owns its
 * memory and frees it on {@link #close()}, and a host tensor made by {@link #onHost} (memory a
 * backend allocated, such as page-locked memory) gives its memory back on {@link #close()}, while
 * views ({@link #narrowSeq}, {@link #narrowBatch}, {@link #narrowHeads}, {@link #wrapDevice}) own
 * nothing. {@link #close()} on any other tensor does nothing.
 *
 * <p>Strides are in elements, non-negative, and may describe {@link Layout#BHSD}, {@link
 * Layout#BSHD} or any other order (a slice, a head-broadcast view with stride 0), so kernels read
 * either layout without copying. Kernels require a unit stride on the last axis and say so when
 * it is not.
 *
 * <p>Tensors are immutable as views; the elements they point to are not. Element access goes
 * through {@link #get}/{@link #set}; rows are copied in bulk through {@link #readRow}/{@link
 * #writeRow}, converting to and from f32.
 *
 * <p>An e4m3 tensor also carries scales, one per tensor or one per head ({@link #scale(int)}): element
 * {@code (b, h, s, d)} holds the value {@code e4m3ToFloat(code) × scale(h)} (an f32 product), which
 * {@link #get} and {@link #readRow} return, the oracle computes with and every backend must honour;
 * {@link #set} and {@link #writeRow} store {@code floatToE4m3(value / scale(h))}. A factory that makes an
 * e4m3 tensor without scales gives scale 1; {@link #withScales} gives a view with others.
 *
 * <p>Throws {@link IllegalArgumentException} from every factory when a shape is not positive, a stride is
 *     negative or the view would reach outside its segment; the message names the argument
 */
public final class Tensor implements AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;
    private static final float[] UNIT_SCALE = {1f};

    /** Host memory, or null for a device tensor. */
    private final MemorySegment segment;
    /** Device memory, or null for a host tensor. */
    private final DeviceMemory memory;
    /** True when {@link #close()} releases {@link #memory}, or runs {@link #release} for a host tensor. */
    private final boolean owner;
    /** What {@link #close()} runs for an owning host tensor ({@link #onHost}); null otherwise. */
    private final Runnable release;
    private final DType dtype;
    private final int[] shape;
    private final long[] strides;
    private final long offset;
    /** e4m3 only: one scale, or one per head; null for the other types. Never modified. */
    private final float[] scales;

    private Tensor(MemorySegment segment, DType dtype, int[] shape, long[] strides, long offset) {
        this(segment, null, false, dtype, shape, strides, offset);
    }

    private Tensor(MemorySegment segment, DeviceMemory memory, boolean owner, DType dtype, int[] shape, long[] strides,
                   long offset) {
        this(segment, memory, owner, null, dtype, shape, strides, offset, null);
    }

    private Tensor(MemorySegment segment, DeviceMemory memory, boolean owner, Runnable release, DType dtype, int[] shape,
                   long[] strides, long offset, float[] scales) {
        this.scales = dtype.isScaled() ? (scales == null ? UNIT_SCALE : scales) : null;
        this.segment = segment;
        this.memory = memory;
        this.owner = owner;
        this.release = release;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    // ---------------------------------------------------------------- factories

    /** An f32 tensor over {@code data} in the given layout, without copying. */
    public static Tensor of(float[] data, Layout layout, int batch, int heads, int seq, int dim) {
        Objects.requireNonNull(data, "data");
        requireLength("data", data.length, checkShape(batch, heads, seq, dim));
        return new Tensor(MemorySegment.ofArray(data), DType.F32, new int[] {batch, heads, seq, dim},
                layout.strides(batch, heads, seq, dim), 0);
    }

    /** An f32 BHSD tensor over {@code data}, without copying. */
    public static Tensor of(float[] data, int batch, int heads, int seq, int dim) {
        return of(data, Layout.BHSD, batch, heads, seq, dim);
    }

    /** An f16 or bf16 tensor over the raw 16-bit patterns in {@code bits}, without copying. */
    public static Tensor ofBits(short[] bits, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        Objects.requireNonNull(bits, "bits");
        if (dtype.byteSize() != 2) {
            throw new IllegalArgumentException("dtype: 16-bit patterns cannot hold " + dtype + "; use "
                    + (dtype == DType.F32 ? "Tensor.of(float[], ...)" : "Tensor.ofE4m3(byte[], float[], ...)"));
        }
        requireLength("bits", bits.length, checkShape(batch, heads, seq, dim));
        return new Tensor(MemorySegment.ofArray(bits), dtype, new int[] {batch, heads, seq, dim},
                layout.strides(batch, heads, seq, dim), 0);
    }

    /**
     * An e4m3 tensor over the codes in {@code codes}, without copying, whose values are {@code code ×
     * scale}: {@code scales} holds one scale for the whole tensor or one per head (copied).
     *
     * @throws IllegalArgumentException if the lengths do not match the shape or a scale is not a
     *     positive finite number
     */
    public static Tensor ofE4m3(byte[] codes, float[] scales, Layout layout, int batch, int heads, int seq, int dim) {
        Objects.requireNonNull(codes, "codes");
        requireLength("codes", codes.length, checkShape(batch, heads, seq, dim));
        return new Tensor(MemorySegment.ofArray(codes), null, false, null, DType.E4M3, new int[] {batch, heads, seq, dim},
                layout.strides(batch, heads, seq, dim), 0, checkScales(scales, heads));
    }

    /**
     * The values of {@code source} quantised to e4m3 with a scale per head that maps each head's
     * largest magnitude to 448 (the type's largest finite value); a head of zeros gets scale 1. The
     * usual per-head absmax quantisation: a new contiguous heap tensor in {@code layout}.
     *
     * @throws IllegalArgumentException if {@code source} holds a non-finite value
     */
    public static Tensor quantizeE4m3PerHead(Tensor source, Layout layout) {
        Objects.requireNonNull(source, "source");
        float[] scales = new float[source.heads()];
        float[] row = new float[source.dim()];
        for (int h = 0; h < source.heads(); h++) {
            float max = 0f;
            for (int b = 0; b < source.batch(); b++) {
                for (int s = 0; s < source.seqLen(); s++) {
                    source.readRow(b, h, s, row, 0);
                    for (float x : row) {
                        if (!Float.isFinite(x)) {
                            throw new IllegalArgumentException("source: non-finite value " + x + " at [b=" + b + ", h="
                                    + h + ", s=" + s + "]; e4m3 scales need finite values");
                        }
                        max = Math.max(max, Math.abs(x));
                    }
                }
            }
            float scale = max / DType.E4M3_MAX;
            scales[h] = scale > 0f ? scale : 1f; // 1 for a head of zeros (or of values that underflow here)
        }
        Tensor t = allocate(DType.E4M3, layout, source.batch(), source.heads(), source.seqLen(), source.dim())
                .withScales(scales);
        copyRows(source, t);
        return t;
    }

    /**
     * A zero-filled heap tensor (backed by a Java array) of the given type and layout (e4m3: scale 1).
     * Where the array's address can be read (native access granted), the array is 64 bytes longer
     * than the tensor and the {@linkplain #segment() segment} is the slice of it that starts on a
     * 64-byte boundary, so that rows of whole cache lines start on a line; {@code
     * -Dsparsa.tensor.alignHostArrays=false} gives the whole array instead.
     *
     * @throws IllegalArgumentException if the shape is not valid (batch, heads or dim below 1, seq below 0) or
     *     its elements do not fit a Java array
     */
    public static Tensor allocate(DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        long n = checkShape(batch, heads, seq, dim);
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("shape: " + n + " elements do not fit a Java array; allocate in an Arena");
        }
        MemorySegment seg = hostSpan(dtype, n);
        return new Tensor(seg, dtype, new int[] {batch, heads, seq, dim}, layout.strides(batch, heads, seq, dim), 0);
    }

    /** A zero-filled off-heap tensor, 64-byte aligned, living as long as {@code arena}. */
    public static Tensor allocate(Arena arena, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        Objects.requireNonNull(arena, "arena");
        long bytes = checkShape(batch, heads, seq, dim) * dtype.byteSize();
        MemorySegment seg = arena.allocate(Math.max(bytes, 1), 64);
        return new Tensor(seg, dtype, new int[] {batch, heads, seq, dim}, layout.strides(batch, heads, seq, dim), 0);
    }

    /**
     * A view over any segment with explicit element strides and element offset.
     *
     * @throws IllegalArgumentException if a stride is negative or the view reaches past the segment
     */
    public static Tensor wrap(MemorySegment segment, DType dtype, int[] shape, long[] strides, long offset) {
        Objects.requireNonNull(segment, "segment");
        checkView(segment.byteSize(), "segment", dtype, shape, strides, offset);
        return new Tensor(segment, dtype, shape.clone(), strides.clone(), offset);
    }

    /**
     * A contiguous host tensor at the start of {@code segment} that owns the memory behind it: {@link
     * #close()} runs {@code release}, which frees or recycles that memory and must tolerate running
     * more than once. Backends return outputs this way when their host memory is special (the CUDA
     * backend's page-locked outputs); views made from the tensor own nothing.
     *
     * @throws IllegalArgumentException if the segment is smaller than the shape needs
     */
    public static Tensor onHost(MemorySegment segment, Runnable release, DType dtype, Layout layout, int batch, int heads,
                                int seq, int dim) {
        Objects.requireNonNull(segment, "segment");
        Objects.requireNonNull(release, "release");
        Objects.requireNonNull(layout, "layout");
        int[] shape = {batch, heads, seq, dim};
        long[] strides = layout.strides(batch, heads, seq, dim);
        checkView(segment.byteSize(), "segment", dtype, shape, strides, 0);
        return new Tensor(segment, null, true, release, dtype, shape, strides, 0, null);
    }

    /**
     * A contiguous tensor over all of {@code memory}, which it owns: {@link #close()} releases it.
     * Backends make device tensors this way ({@code CudaTensors.allocate}).
     *
     * @throws IllegalArgumentException if the memory is smaller than the shape needs
     */
    public static Tensor onDevice(DeviceMemory memory, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        Objects.requireNonNull(memory, "memory");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(layout, "layout");
        int[] shape = {batch, heads, seq, dim};
        long[] strides = layout.strides(batch, heads, seq, dim);
        checkView(memory.byteSize(), "memory", dtype, shape, strides, 0);
        return new Tensor(null, memory, true, dtype, shape, strides, 0);
    }

    /**
     * A tensor with explicit element strides at offset 0 of {@code memory}, which it owns: {@link
     * #close()} releases it.
     *
     * @throws IllegalArgumentException if a stride is negative or the view reaches past the memory
     */
    public static Tensor onDeviceStrided(DeviceMemory memory, DType dtype, int[] shape, long[] strides) {
        return onDeviceStrided(memory, dtype, shape, strides, null);
    }

    /**
     * As {@link #onDeviceStrided(DeviceMemory, DType, int[], long[])}, with the scales of an e4m3
     * tensor (one, or one per head; copied; null for scale 1).
     *
     * @throws IllegalArgumentException as that method, or for scales of a type without them, a count
     *     other than 1 or the heads, or a scale that is not a positive finite number
     */
    public static Tensor onDeviceStrided(DeviceMemory memory, DType dtype, int[] shape, long[] strides, float[] scales) {
        Objects.requireNonNull(memory, "memory");
        checkView(memory.byteSize(), "memory", dtype, shape, strides, 0);
        if (scales != null && !dtype.isScaled()) {
            throw new IllegalArgumentException("scales: a " + dtype + " tensor has no scales (only e4m3 tensors do)");
        }
        return new Tensor(null, memory, true, null, dtype, shape.clone(), strides.clone(), 0,
                scales == null ? null : checkScales(scales, shape[1]));
    }

    /**
     * A view over device memory with explicit element strides and element offset; the view does not
     * own the memory (closing it does nothing), so memory of another library can be wrapped.
     *
     * @throws IllegalArgumentException if a stride is negative or the view reaches past the memory
     */
    public static Tensor wrapDevice(DeviceMemory memory, DType dtype, int[] shape, long[] strides, long offset) {
        Objects.requireNonNull(memory, "memory");
        checkView(memory.byteSize(), "memory", dtype, shape, strides, offset);
        return new Tensor(null, memory, false, dtype, shape.clone(), strides.clone(), offset);
    }

    /** Validates a view in {@code long} arithmetic, refusing any overflow. */
    private static void checkView(long byteSize, String what, DType dtype, int[] shape, long[] strides, long offset) {
        Objects.requireNonNull(dtype, "dtype");
        if (shape == null || shape.length != 4) {
            throw new IllegalArgumentException("shape: expected 4 axes [batch, heads, seq, dim], got " + Arrays.toString(shape));
        }
        if (strides == null || strides.length != 4) {
            throw new IllegalArgumentException("strides: expected 4 strides, got " + Arrays.toString(strides));
        }
        checkShape(shape[0], shape[1], shape[2], shape[3]);
        if (offset < 0) {
            throw new IllegalArgumentException("offset: must be >= 0, got " + offset);
        }
        long last = offset;
        try {
            for (int i = 0; i < 4; i++) {
                if (strides[i] < 0) {
                    throw new IllegalArgumentException("strides: axis " + i + " has negative stride " + strides[i]);
                }
                last = Math.addExact(last, Math.multiplyExact((long) Math.max(shape[i] - 1, 0), strides[i]));
            }
            boolean empty = shape[2] == 0;
            if (!empty && Math.multiplyExact(last + 1, (long) dtype.byteSize()) > byteSize) {
                throw new IllegalArgumentException(what + ": view " + Arrays.toString(shape) + " strides "
                        + Arrays.toString(strides) + " offset " + offset + " needs " + (last + 1) * dtype.byteSize()
                        + " bytes, " + what + " has " + byteSize);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": view " + Arrays.toString(shape) + " strides "
                    + Arrays.toString(strides) + " offset " + offset + " overflows a 64-bit byte index");
        }
    }

    // ---------------------------------------------------------------- shape

    /** Axis 0. */
    public int batch() {
        return shape[0];
    }

    /** Axis 1. */
    public int heads() {
        return shape[1];
    }

    /** Axis 2: sequence length (queries or keys). */
    public int seqLen() {
        return shape[2];
    }

    /** Axis 3: head dimension. */
    public int dim() {
        return shape[3];
    }

    /** The element type. */
    public DType dtype() {
        return dtype;
    }

    /**
     * The scale of head {@code h} of an e4m3 tensor (the same for every head when it has one scale).
     *
     * @throws IllegalStateException for the other types, which have no scales
     */
    public float scale(int h) {
        if (scales == null) {
            throw new IllegalStateException("tensor " + this + " has no scales (only e4m3 tensors do)");
        }
        return scales.length == 1 ? scales[0] : scales[h];
    }

    /** A copy of the scales of an e4m3 tensor (one, or one per head); an empty array for the other types. */
    public float[] scales() {
        return scales == null ? new float[0] : scales.clone();
    }

    /**
     * The same e4m3 codes under other scales: one for the whole tensor or one per head (copied). The
     * view shares memory and owns nothing.
     *
     * @throws IllegalArgumentException if this tensor is not e4m3, or a scale is not a positive finite
     *     number, or the count is neither 1 nor {@link #heads()}
     */
    public Tensor withScales(float... scales) {
        if (!dtype.isScaled()) {
            throw new IllegalArgumentException("scales: a " + dtype + " tensor has no scales (only e4m3 tensors do)");
        }
        return new Tensor(segment, memory, false, null, dtype, shape, strides, offset, checkScales(scales, shape[1]));
    }

    /**
     * True when both tensors have no scales, or both are e4m3 with scales that give every head the same
     * value (one scale and per-head scales of that value agree).
     */
    public boolean sameScales(Tensor other) {
        if (scales == null || other.scales == null) {
            return scales == other.scales;
        }
        for (int h = 0; h < shape[1]; h++) {
            if (Float.floatToRawIntBits(scale(h)) != Float.floatToRawIntBits(other.scale(h))) {
                return false;
            }
        }
        return true;
    }

    private static float[] checkScales(float[] scales, int heads) {
        Objects.requireNonNull(scales, "scales");
        if (scales.length != 1 && scales.length != heads) {
            throw new IllegalArgumentException("scales: expected 1 (per tensor) or " + heads + " (per head), got "
                    + scales.length);
        }
        for (int i = 0; i < scales.length; i++) {
            if (!(scales[i] > 0f) || !Float.isFinite(scales[i])) {
                throw new IllegalArgumentException("scales: scale " + i + " is " + scales[i]
                        + "; scales must be positive and finite");
            }
        }
        return scales.clone();
    }

    /** A copy of the shape {@code [batch, heads, seq, dim]}. */
    public int[] shape() {
        return shape.clone();
    }

    /** Element stride of an axis (0..3). */
    public long stride(int axis) {
        return strides[axis];
    }

    /** A copy of the four element strides. */
    public long[] strides() {
        return strides.clone();
    }

    /**
     * The layout whose contiguous strides for this shape are this tensor's strides ({@link Layout#strides}), or
     * empty for any other strides (a slice, padded rows, a broadcast view). Where both give these strides (one
     * head and one position), BHSD.
     */
    public Optional<Layout> layout() {
        for (Layout l : Layout.values()) {
            if (Arrays.equals(strides, l.strides(shape[0], shape[1], shape[2], shape[3]))) {
                return Optional.of(l);
            }
        }
        return Optional.empty();
    }

    /** Element offset of element (0,0,0,0) in the segment. */
    public long offset() {
        return offset;
    }

    /**
     * The backing host segment (shared, not copied).
     *
     * @throws IllegalStateException for a device tensor (copy it with {@link #toHost()})
     */
    public MemorySegment segment() {
        return host();
    }

    /** Where the memory lives: {@link Device#CPU} for host tensors. */
    public Device device() {
        return memory == null ? Device.CPU : memory.device();
    }

    /** True for host tensors (heap or native), whose elements Java code can read. */
    public boolean isHost() {
        return memory == null;
    }

    /**
     * The device memory behind a device tensor (shared, not copied).
     *
     * @throws IllegalStateException for a host tensor
     */
    public DeviceMemory deviceMemory() {
        if (memory == null) {
            throw new IllegalStateException("tensor " + this + " is on the host; it has no device memory");
        }
        return memory;
    }

    /** Byte offset of element (0, 0, 0, 0) from the start of its memory. */
    public long byteOffset() {
        return offset * dtype.byteSize();
    }

    private MemorySegment host() {
        if (segment == null) {
            throw new IllegalStateException("tensor " + this + " is on " + memory.device()
                    + "; Java code reads only host tensors (copy it with toHost())");
        }
        return segment;
    }

    /** Number of logical elements. */
    public long elementCount() {
        return (long) shape[0] * shape[1] * shape[2] * shape[3];
    }

    /** True when the last axis has unit stride, which every kernel requires. */
    public boolean isRowContiguous() {
        return strides[3] == 1 || shape[3] == 1;
    }

    /** Element index (not byte offset) of (b, h, s, d) in the segment. */
    public long index(int b, int h, int s, int d) {
        return offset + b * strides[0] + h * strides[1] + s * strides[2] + d * strides[3];
    }

    /**
     * A view of {@code length} positions of the sequence axis starting at {@code start} (length 0
     * gives an empty view), over the same memory: it owns nothing.
     *
     * @throws IllegalArgumentException if the range leaves {@code [0, seqLen)}
     */
    public Tensor narrowSeq(int start, int length) {
        if (start < 0 || length < 0 || (long) start + length > shape[2]) {
            throw new IllegalArgumentException("narrowSeq: range [" + start + ", " + ((long) start + length)
                    + ") outside sequence of length " + shape[2]);
        }
        int[] s = shape.clone();
        s[2] = length;
        return new Tensor(segment, memory, false, null, dtype, s, strides, offset + start * strides[2], scales);
    }

    /** A view of {@code length} heads starting at head {@code start} (shares memory, owns nothing). */
    public Tensor narrowHeads(int start, int length) {
        if (start < 0 || length < 1 || (long) start + length > shape[1]) {
            throw new IllegalArgumentException("narrowHeads: range [" + start + ", " + ((long) start + length)
                    + ") outside " + shape[1] + " heads (or empty)");
        }
        int[] s = shape.clone();
        s[1] = length;
        float[] sc = scales == null || scales.length == 1 ? scales : Arrays.copyOfRange(scales, start, start + length);
        return new Tensor(segment, memory, false, null, dtype, s, strides, offset + start * strides[1], sc);
    }

    /**
     * A view of {@code length} entries of the batch axis starting at {@code start}, over the same
     * memory: it owns nothing. A ragged batch's padded layout reads sequence {@code b} as {@code
     * narrowBatch(b, 1).narrowSeq(0, length)}.
     *
     * @throws IllegalArgumentException if {@code length < 1} or the range leaves {@code [0, batch)}
     */
    public Tensor narrowBatch(int start, int length) {
        if (start < 0 || length < 1 || (long) start + length > shape[0]) {
            throw new IllegalArgumentException("narrowBatch: range [" + start + ", " + ((long) start + length)
                    + ") must hold at least one entry inside batch of " + shape[0]);
        }
        int[] s = shape.clone();
        s[0] = length;
        return new Tensor(segment, memory, false, null, dtype, s, strides, offset + start * strides[0], scales);
    }

    // ---------------------------------------------------------------- elements

    /** Reads one element as f32. */
    public float get(int b, int h, int s, int d) {
        long i = index(b, h, s, d);
        MemorySegment segment = host();
        return switch (dtype) {
            case F32 -> segment.getAtIndex(F32, i);
            case F16 -> Float.float16ToFloat(segment.getAtIndex(I16, i));
            case BF16 -> DType.bf16ToFloat(segment.getAtIndex(I16, i));
            case E4M3 -> DType.e4m3ToFloat(segment.getAtIndex(I8, i)) * scale(h);
        };
    }

    /** Writes one element, rounding to this tensor's type (for e4m3: {@code value / scale(h)}, saturating). */
    public void set(int b, int h, int s, int d, float value) {
        long i = index(b, h, s, d);
        MemorySegment segment = host();
        switch (dtype) {
            case F32 -> segment.setAtIndex(F32, i, value);
            case F16 -> segment.setAtIndex(I16, i, Float.floatToFloat16(value));
            case BF16 -> segment.setAtIndex(I16, i, DType.floatToBf16(value));
            case E4M3 -> segment.setAtIndex(I8, i, DType.floatToE4m3(value / scale(h)));
        }
    }

    /** Copies row (b, h, s) into {@code dst[dstOffset .. dstOffset + dim)} as f32. */
    public void readRow(int b, int h, int s, float[] dst, int dstOffset) {
        int n = shape[3];
        long i = index(b, h, s, 0);
        MemorySegment segment = host();
        if (dtype == DType.F32 && strides[3] == 1) {
            MemorySegment.copy(segment, F32, i * 4, dst, dstOffset, n);
            return;
        }
        long st = strides[3];
        float scale = scales == null ? 1f : scale(h);
        for (int d = 0; d < n; d++, i += st) {
            dst[dstOffset + d] = switch (dtype) {
                case F32 -> segment.getAtIndex(F32, i);
                case F16 -> Float.float16ToFloat(segment.getAtIndex(I16, i));
                case BF16 -> DType.bf16ToFloat(segment.getAtIndex(I16, i));
                case E4M3 -> DType.e4m3ToFloat(segment.getAtIndex(I8, i)) * scale;
            };
        }
    }

    /** Writes {@code src[srcOffset .. srcOffset + dim)} into row (b, h, s), rounding to this type. */
    public void writeRow(int b, int h, int s, float[] src, int srcOffset) {
        int n = shape[3];
        long i = index(b, h, s, 0);
        MemorySegment segment = host();
        if (dtype == DType.F32 && strides[3] == 1) {
            MemorySegment.copy(src, srcOffset, segment, F32, i * 4, n);
            return;
        }
        long st = strides[3];
        float scale = scales == null ? 1f : scale(h);
        for (int d = 0; d < n; d++, i += st) {
            float x = src[srcOffset + d];
            switch (dtype) {
                case F32 -> segment.setAtIndex(F32, i, x);
                case F16 -> segment.setAtIndex(I16, i, Float.floatToFloat16(x));
                case BF16 -> segment.setAtIndex(I16, i, DType.floatToBf16(x));
                case E4M3 -> segment.setAtIndex(I8, i, DType.floatToE4m3(x / scale));
            }
        }
    }

    /** Sets every element of row (b, h, s) to {@code value}. */
    public void fillRow(int b, int h, int s, float value) {
        for (int d = 0; d < shape[3]; d++) {
            set(b, h, s, d, value);
        }
    }

    /**
     * A new contiguous heap tensor of another type (or layout) holding this tensor's values, rounded. An
     * e4m3 target gets this tensor's scales when this tensor is e4m3 (the codes are kept), else scale 1.
     */
    public Tensor to(DType target, Layout layout) {
        Tensor t = allocate(target, layout, shape[0], shape[1], shape[2], shape[3]);
        if (target.isScaled() && scales != null) {
            t = t.withScales(scales);
        }
        float[] row = new float[shape[3]];
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int s = 0; s < shape[2]; s++) {
                    readRow(b, h, s, row, 0);
                    t.writeRow(b, h, s, row, 0);
                }
            }
        }
        return t;
    }

    /** The values as f32 in BHSD order (a copy). */
    public float[] toFloatArray() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("tensor of " + n + " elements does not fit a Java array");
        }
        float[] out = new float[(int) n];
        int dim = shape[3];
        int at = 0;
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int s = 0; s < shape[2]; s++, at += dim) {
                    readRow(b, h, s, out, at);
                }
            }
        }
        return out;
    }

    /**
     * Throws unless every element is finite.
     *
     * @param name the argument name the message uses ("q", "k", ...)
     * @throws IllegalArgumentException naming the tensor, the index and the value of the first
     *     non-finite element
     */
    public void requireFinite(String name) {
        float[] row = new float[shape[3]];
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int s = 0; s < shape[2]; s++) {
                    readRow(b, h, s, row, 0);
                    for (int d = 0; d < row.length; d++) {
                        if (!Float.isFinite(row[d])) {
                            throw new IllegalArgumentException(name + ": non-finite value " + row[d] + " at [b=" + b
                                    + ", h=" + h + ", s=" + s + ", d=" + d + "]");
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- host and device

    /**
     * Elements from element (0, 0, 0, 0) to the view's last element, inclusive: the stretch of memory
     * the view reaches (0 for an empty view).
     */
    public long spanElements() {
        if (elementCount() == 0) {
            return 0;
        }
        long last = 0;
        for (int i = 0; i < 4; i++) {
            last += (long) (shape[i] - 1) * strides[i];
        }
        return last + 1;
    }

    /** {@link #spanElements()} in bytes. */
    public long spanBytes() {
        return spanElements() * dtype.byteSize();
    }

    /**
     * True when the view's elements fill its span exactly (no holes, no element reached twice), so
     * that writing the whole span cannot touch memory outside the view.
     */
    public boolean spanIsDense() {
        long count = elementCount();
        if (count == 0) {
            return true;
        }
        if (count != spanElements()) {
            return false;
        }
        Integer[] axes = {0, 1, 2, 3};
        Arrays.sort(axes, (a, b) -> Long.compare(strides[a], strides[b]));
        long expected = 1;
        for (int a : axes) {
            if (shape[a] == 1) {
                continue;
            }
            if (strides[a] != expected) {
                return false;
            }
            expected *= shape[a];
        }
        return true;
    }

    /**
     * This tensor's values in host memory: the tensor itself when it is on the host, else a new host
     * tensor with the same shape, dtype and strides over a fresh copy of the span (a Java array when
     * it fits one, else native memory the garbage collector frees).
     */
    public Tensor toHost() {
        if (memory == null) {
            return this;
        }
        MemorySegment seg = hostSpan(dtype, spanElements());
        if (seg.byteSize() > 0) {
            memory.copyToHost(seg, byteOffset());
        }
        return new Tensor(seg, null, false, null, dtype, shape.clone(), strides.clone(), 0, scales);
    }

    /** Zeroed host memory for {@code elements} of {@code dtype}: a Java array when it fits one. */
    private static MemorySegment hostSpan(DType dtype, long elements) {
        if (elements <= Integer.MAX_VALUE - 16) {
            return HostArrays.zeroed(dtype, (int) elements);
        }
        return Arena.ofAuto().allocate(elements * dtype.byteSize(), 64);
    }

    /**
     * Copies the values of {@code src} into {@code dst}, which has the same shape and dtype, wherever
     * each lives (host or device, any strides). Memory of {@code dst}'s segment outside its view is
     * left as it was. Device-to-device copies go through the host. Between e4m3 tensors of different
     * scales the values are requantised to {@code dst}'s scales (codes are copied as they are only
     * when the scales agree).
     *
     * @throws IllegalArgumentException if the shapes or dtypes differ
     */
    public static void copy(Tensor src, Tensor dst) {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(dst, "dst");
        if (!Arrays.equals(src.shape, dst.shape) || src.dtype != dst.dtype) {
            throw new IllegalArgumentException("copy: src is " + src + " but dst is " + dst
                    + " (shape and dtype must agree)");
        }
        if (src.elementCount() == 0) {
            return;
        }
        boolean sameDenseSpan = Arrays.equals(src.strides, dst.strides) && src.spanIsDense()
                && src.sameScales(dst);
        if (src.isHost() && dst.isHost()) {
            copyRows(src, dst);
        } else if (src.isHost()) {
            if (sameDenseSpan) {
                dst.memory.copyFromHost(src.segment.asSlice(src.byteOffset(), src.spanBytes()), dst.byteOffset());
                return;
            }
            // stage in dst's own strides; a view with holes is read first so that the holes survive
            Tensor stage = dst.spanIsDense() ? new Tensor(hostSpan(dst.dtype, dst.spanElements()), null, false, null,
                    dst.dtype, dst.shape.clone(), dst.strides.clone(), 0, dst.scales) : dst.toHost();
            copyRows(src, stage);
            dst.memory.copyFromHost(stage.segment.asSlice(0, stage.spanBytes()), dst.byteOffset());
        } else if (dst.isHost()) {
            if (sameDenseSpan) {
                src.memory.copyToHost(dst.segment.asSlice(dst.byteOffset(), dst.spanBytes()), src.byteOffset());
                return;
            }
            copyRows(src.toHost(), dst);
        } else {
            copy(src.toHost(), dst);
        }
    }

    /**
     * Copies the values of host tensor {@code src} into host tensor {@code dst} of the same shape,
     * rounding them to {@code dst}'s type (for e4m3, under {@code dst}'s scales, saturating); any strides.
     *
     * @throws IllegalArgumentException if the shapes differ
     * @throws IllegalStateException if either tensor is on a device
     */
    public static void convert(Tensor src, Tensor dst) {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(dst, "dst");
        if (!Arrays.equals(src.shape, dst.shape)) {
            throw new IllegalArgumentException("convert: src is " + src + " but dst is " + dst + " (shapes must agree)");
        }
        copyRows(src, dst);
    }

    private static void copyRows(Tensor src, Tensor dst) {
        float[] row = new float[src.shape[3]];
        for (int b = 0; b < src.shape[0]; b++) {
            for (int h = 0; h < src.shape[1]; h++) {
                for (int s = 0; s < src.shape[2]; s++) {
                    src.readRow(b, h, s, row, 0);
                    dst.writeRow(b, h, s, row, 0);
                }
            }
        }
    }

    /**
     * Releases the memory of a tensor made by {@link #onDevice} or {@link #onHost}; does nothing for
     * any other tensor.
     */
    @Override
    public void close() {
        if (!owner) {
            return;
        }
        if (memory != null) {
            memory.release();
        } else {
            release.run();
        }
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + dtype + (scales == null ? "" : " scales "
                + (scales.length == 1 ? String.valueOf(scales[0]) : "per head")) + " strides " + Arrays.toString(strides)
                + (memory == null ? "" : " on " + memory.device());
    }

    /** Checks the axis sizes and returns the element count, refusing counts past {@code 2^62}. */
    private static long checkShape(int batch, int heads, int seq, int dim) {
        if (batch < 1 || heads < 1 || seq < 0 || dim < 1) {
            throw new IllegalArgumentException("shape: need batch >= 1, heads >= 1, seq >= 0, dim >= 1, got [" + batch
                    + ", " + heads + ", " + seq + ", " + dim + "]");
        }
        try {
            long n = Math.multiplyExact(Math.multiplyExact((long) batch * heads, (long) seq), (long) dim);
            if (n > (1L << 62)) {
                throw new ArithmeticException();
            }
            return n;
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("shape: [" + batch + ", " + heads + ", " + seq + ", " + dim
                    + "] has more elements than a tensor can address");
        }
    }

    private static void requireLength(String name, long actual, long expected) {
        if (actual != expected) {
            throw new IllegalArgumentException(name + ": length " + actual + " does not match the shape's " + expected
                    + " elements");
        }
    }
}
