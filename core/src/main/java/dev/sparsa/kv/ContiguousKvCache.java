package dev.sparsa.kv;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * A KV cache with one slab per sequence: K is {@code [batch, kvHeads, capacity, headDim]} and V
 * {@code [batch, kvHeads, capacity, valueDim]}, in any strides with a unit last axis (BHSD, BSHD),
 * on the host or a device; sequence {@code b}'s token {@code t} is row {@code (b, ·, t)}.
 *
 * <p>Made by {@link #allocate} (zeroed heap tensors), {@link #allocateE4m3} (e4m3 codes with fixed
 * scales) or {@link #wrap} (the caller's tensors, for example device tensors from {@code
 * CudaTensors.allocate}, which the caller closes, or e4m3 tensors that carry their scales).
 */
public final class ContiguousKvCache implements KvCache {
    private final Tensor k;
    private final Tensor v;
    private final int[] lengths;

    private ContiguousKvCache(Tensor k, Tensor v, int[] lengths) {
        this.k = k;
        this.v = v;
        this.lengths = lengths;
    }

    /**
     * An empty host cache of {@code batch} sequences of up to {@code capacity} tokens, in BHSD heap
     * tensors.
     *
     * @throws IllegalArgumentException if a size is not positive, the slab does not fit a Java array or
     *     the dtype is e4m3 (whose cache needs its scales: {@link #allocateE4m3})
     */
    public static ContiguousKvCache allocate(DType dtype, int batch, int kvHeads, int capacity, int headDim,
                                             int valueDim) {
        if (dtype != null && dtype.isScaled()) {
            throw new IllegalArgumentException("dtype: an e4m3 cache needs its scales; use ContiguousKvCache.allocateE4m3");
        }
        return allocate(dtype, batch, kvHeads, capacity, headDim, valueDim, null, null);
    }

    /**
     * An empty host cache of e4m3 codes, as {@link #allocate}: appended keys are stored as {@code
     * floatToE4m3(value / kScales[head])} and values under {@code vScales} (saturating at ±448 × scale),
     * and read back as code × scale. Scales are fixed for the cache's life, as FP8 KV caches calibrate
     * them (vLLM's {@code k_scale}, {@code v_scale}).
     *
     * @param kScales one scale for every KV head, or one per KV head
     * @param vScales likewise for the values
     * @throws IllegalArgumentException if a size is not positive, the slab does not fit a Java array,
     *     or a scale count is neither 1 nor {@code kvHeads} or a scale is not positive and finite
     */
    public static ContiguousKvCache allocateE4m3(int batch, int kvHeads, int capacity, int headDim, int valueDim,
                                                 float[] kScales, float[] vScales) {
        return allocate(DType.E4M3, batch, kvHeads, capacity, headDim, valueDim, kScales, vScales);
    }

    private static ContiguousKvCache allocate(DType dtype, int batch, int kvHeads, int capacity, int headDim,
                                              int valueDim, float[] kScales, float[] vScales) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity: must be >= 1, got " + capacity);
        }
        Tensor k = Tensor.allocate(dtype, Layout.BHSD, batch, kvHeads, capacity, headDim);
        Tensor v = Tensor.allocate(dtype, Layout.BHSD, batch, kvHeads, capacity, valueDim);
        if (dtype.isScaled()) {
            k = k.withScales(CacheViews.checkScales("kScales", kScales, kvHeads));
            v = v.withScales(CacheViews.checkScales("vScales", vScales, kvHeads));
        }
        return new ContiguousKvCache(k, v, new int[batch]);
    }

    /**
     * A cache over the caller's tensors, sequence {@code b} holding its first {@code lengths[b]}
     * tokens.
     *
     * @throws IllegalArgumentException if K and V disagree (batch, heads, capacity, dtype, device),
     *     a last axis is not unit-stride, or a length is negative or beyond the capacity (naming the
     *     sequence)
     */
    public static ContiguousKvCache wrap(Tensor k, Tensor v, int[] lengths) {
        CacheViews.checkStorage("k", k);
        CacheViews.checkStorage("v", v);
        if (k.batch() != v.batch() || k.heads() != v.heads() || k.seqLen() != v.seqLen()) {
            throw new IllegalArgumentException("v: shape " + Arrays.toString(v.shape()) + " does not match k's "
                    + Arrays.toString(k.shape()) + " in batch, heads and capacity");
        }
        if (k.dtype() != v.dtype()) {
            throw new IllegalArgumentException("v: dtype " + v.dtype() + " differs from k's " + k.dtype());
        }
        if (!k.device().equals(v.device())) {
            throw new IllegalArgumentException("v: on " + v.device() + " but k is on " + k.device());
        }
        if (lengths == null || lengths.length != k.batch()) {
            throw new IllegalArgumentException("lengths: expected " + k.batch() + " lengths, got "
                    + (lengths == null ? "null" : lengths.length));
        }
        ContiguousKvCache c = new ContiguousKvCache(k, v, lengths.clone());
        c.validate();
        return c;
    }

    /** Keys {@code [batch, kvHeads, capacity, headDim]} (shared, not copied). */
    public Tensor keyStorage() {
        return k;
    }

    /** Values {@code [batch, kvHeads, capacity, valueDim]} (shared, not copied). */
    public Tensor valueStorage() {
        return v;
    }

    /** Tokens each sequence can hold. */
    public int capacity() {
        return k.seqLen();
    }

    @Override
    public int batch() {
        return k.batch();
    }

    @Override
    public int kvHeads() {
        return k.heads();
    }

    @Override
    public int headDim() {
        return k.dim();
    }

    @Override
    public int valueDim() {
        return v.dim();
    }

    @Override
    public DType dtype() {
        return k.dtype();
    }

    @Override
    public Device device() {
        return k.device();
    }

    @Override
    public boolean paged() {
        return false;
    }

    @Override
    public int length(int sequence) {
        CacheViews.checkSequence(sequence, batch());
        return lengths[sequence];
    }

    @Override
    public int[] lengths() {
        return lengths.clone();
    }

    @Override
    public void append(int sequence, Tensor kRows, Tensor vRows) {
        CacheViews.checkSequence(sequence, batch());
        CacheViews.checkAppended(this, 1, kRows, vRows);
        requireRoom(sequence, kRows.seqLen());
        write(sequence, 0, kRows, vRows);
    }

    @Override
    public void appendStep(Tensor kRows, Tensor vRows) {
        CacheViews.checkAppended(this, batch(), kRows, vRows);
        for (int b = 0; b < batch(); b++) {
            requireRoom(b, kRows.seqLen());
        }
        for (int b = 0; b < batch(); b++) {
            write(b, b, kRows, vRows);
        }
    }

    private void write(int sequence, int srcBatch, Tensor kRows, Tensor vRows) {
        int n = kRows.seqLen();
        if (n == 0) {
            return;
        }
        Tensor ks = CacheViews.staged(kRows, k);
        Tensor vs = CacheViews.staged(vRows, v);
        int at = lengths[sequence];
        Tensor.copy(CacheViews.view(ks, srcBatch, 0, n), CacheViews.view(k, sequence, at, n));
        Tensor.copy(CacheViews.view(vs, srcBatch, 0, n), CacheViews.view(v, sequence, at, n));
        lengths[sequence] = at + n;
    }

    private void requireRoom(int sequence, int n) {
        if ((long) lengths[sequence] + n > capacity()) {
            throw new IllegalArgumentException("sequence " + sequence + ": appending " + n + " tokens to "
                    + lengths[sequence] + " exceeds the capacity of " + capacity());
        }
    }

    @Override
    public void truncate(int sequence, int length) {
        CacheViews.checkSequence(sequence, batch());
        if (length < 0 || length > lengths[sequence]) {
            throw new IllegalArgumentException("length: sequence " + sequence + " holds " + lengths[sequence]
                    + " tokens; cannot truncate to " + length);
        }
        lengths[sequence] = length;
    }

    @Override
    public Tensor keys(int sequence) {
        return CacheViews.view(k, sequence, 0, length(sequence));
    }

    @Override
    public Tensor values(int sequence) {
        return CacheViews.view(v, sequence, 0, length(sequence));
    }

    @Override
    public void validate() {
        for (int b = 0; b < lengths.length; b++) {
            if (lengths[b] < 0 || lengths[b] > capacity()) {
                throw new IllegalArgumentException("lengths: sequence " + b + " has length " + lengths[b]
                        + " outside [0, " + capacity() + "]");
            }
        }
    }

    @Override
    public String toString() {
        return "ContiguousKvCache[" + batch() + " x " + kvHeads() + " heads x " + capacity() + " tokens, " + dtype()
                + " on " + device() + ", lengths " + Arrays.toString(lengths) + "]";
    }
}
