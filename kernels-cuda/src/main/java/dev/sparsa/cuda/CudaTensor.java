package dev.sparsa.cuda;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * A strided four-axis view {@code [batch, heads, seq, dim]} over device memory, the GPU twin of
 * {@link Tensor}: callers that keep Q, K, V and the output on the GPU pass these to {@link
 * CudaBackend#forward(dev.sparsa.plan.SparsePlan, CudaTensor, CudaTensor, CudaTensor, CudaTensor,
 * CudaTensor, dev.sparsa.attention.Options)} and no copy happens.
 *
 * <p>A tensor made by {@link #allocate} or {@link #upload} owns its buffer and frees it on {@link
 * #close()}; views ({@link #narrowSeq}) share it and close nothing.
 *
 * @throws IllegalArgumentException from every factory when a size is not positive or the view leaves
 *     its buffer
 */
public final class CudaTensor implements AutoCloseable {
    private final DeviceBuffer buffer;
    private final boolean owner;
    private final DType dtype;
    private final int[] shape;
    private final long[] strides;
    private final long offset;

    private CudaTensor(DeviceBuffer buffer, boolean owner, DType dtype, int[] shape, long[] strides, long offset) {
        this.buffer = buffer;
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    /** A new zero-filled contiguous device tensor. */
    public static CudaTensor allocate(CudaDevice device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        if (batch < 1 || heads < 1 || seq < 0 || dim < 1) {
            throw new IllegalArgumentException("shape: need batch >= 1, heads >= 1, seq >= 0, dim >= 1, got [" + batch + ", "
                    + heads + ", " + seq + ", " + dim + "]");
        }
        long bytes = (long) batch * heads * seq * dim * dtype.byteSize();
        DeviceBuffer buf = new DeviceBuffer(device, bytes);
        buf.fill((byte) 0);
        return new CudaTensor(buf, true, dtype, new int[] {batch, heads, seq, dim}, layout.strides(batch, heads, seq, dim), 0);
    }

    /** A new device tensor with the host tensor's shape, dtype and strides, holding a copy of its values. */
    public static CudaTensor upload(CudaDevice device, Tensor host) {
        HostSpan span = HostSpan.of(host);
        DeviceBuffer buf = new DeviceBuffer(device, span.bytes());
        try {
            buf.copyFrom(span.segment(host), 0);
        } catch (RuntimeException e) {
            buf.close();
            throw e;
        }
        return new CudaTensor(buf, true, host.dtype(), host.shape(), host.strides(), 0);
    }

    /**
     * Copies this tensor's elements into {@code host}, which must have the same shape, dtype and
     * strides (as a tensor made by {@link #upload} from it has). Elements of the host segment outside
     * the view are left as they were.
     *
     * @throws IllegalArgumentException if shape, dtype or strides differ
     */
    public void download(Tensor host) {
        if (!Arrays.equals(host.shape(), shape) || host.dtype() != dtype || !Arrays.equals(host.strides(), strides)) {
            throw new IllegalArgumentException("host: expected " + this + ", got " + host);
        }
        HostSpan span = HostSpan.of(host);
        if (span.dense()) {
            buffer.copyTo(span.segment(host), offset * dtype.byteSize());
        } else {
            // a view with holes: move the whole span back, then restore only the view's rows
            Tensor scratch = HostSpan.scratchLike(host);
            buffer.copyTo(scratch.segment().asSlice(0, span.bytes()), offset * dtype.byteSize());
            HostSpan.copyView(scratch, host);
        }
    }

    /** A view of {@code length} positions of the sequence axis starting at {@code start} (shares memory). */
    public CudaTensor narrowSeq(int start, int length) {
        if (start < 0 || length < 0 || start + length > shape[2]) {
            throw new IllegalArgumentException("narrowSeq: range [" + start + ", " + (start + length)
                    + ") outside sequence of length " + shape[2]);
        }
        int[] s = shape.clone();
        s[2] = length;
        return new CudaTensor(buffer, false, dtype, s, strides, offset + start * strides[2]);
    }

    public DType dtype() {
        return dtype;
    }

    public int[] shape() {
        return shape.clone();
    }

    public long[] strides() {
        return strides.clone();
    }

    public int batch() {
        return shape[0];
    }

    public int heads() {
        return shape[1];
    }

    public int seqLen() {
        return shape[2];
    }

    public int dim() {
        return shape[3];
    }

    long stride(int axis) {
        return strides[axis];
    }

    /** Device pointer of element (0, 0, 0, 0). */
    jcuda.driver.CUdeviceptr pointer() {
        return buffer.pointer(offset * dtype.byteSize());
    }

    /** Byte address alignment of element 0 relative to the buffer's 256-byte-aligned start. */
    long byteOffset() {
        return offset * dtype.byteSize();
    }

    @Override
    public String toString() {
        return "CudaTensor" + Arrays.toString(shape) + " " + dtype + " strides " + Arrays.toString(strides);
    }

    @Override
    public void close() {
        if (owner) {
            buffer.close();
        }
    }
}
