package dev.sparsa.kv;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/** Views into cache storage and staging of appended rows, for host and device tensors alike. */
final class CacheViews {
    private CacheViews() {
    }

    /**
     * A {@code [1, t.heads(), n, t.dim()]} view of {@code t} at (axis0 {@code a}, sequence {@code s}),
     * owning nothing.
     */
    static Tensor view(Tensor t, int a, int s, int n) {
        int[] shape = {1, t.heads(), n, t.dim()};
        long offset = t.index(a, 0, s, 0);
        Tensor w = t.isHost() ? Tensor.wrap(t.segment(), t.dtype(), shape, t.strides(), offset)
                : Tensor.wrapDevice(t.deviceMemory(), t.dtype(), shape, t.strides(), offset);
        return t.dtype().isScaled() ? w.withScales(t.scales()) : w;
    }

    /**
     * {@code src}'s values as a host tensor of {@code storage}'s dtype, and for e4m3 of its scales, so
     * that they are the values the storage will hold ({@code src} itself when it already is one).
     */
    static Tensor staged(Tensor src, Tensor storage) {
        Tensor host = src.toHost();
        if (host.dtype() == storage.dtype() && host.sameScales(storage)) {
            return host;
        }
        Tensor t = allocateLike(storage, host.batch(), host.seqLen(), host.dim());
        Tensor.convert(host, t);
        return t;
    }

    /** A zeroed host BHSD tensor {@code [batch, storage.heads(), n, dim]} of {@code storage}'s dtype and scales. */
    static Tensor allocateLike(Tensor storage, int batch, int n, int dim) {
        Tensor t = Tensor.allocate(storage.dtype(), Layout.BHSD, batch, storage.heads(), n, dim);
        return storage.dtype().isScaled() ? t.withScales(storage.scales()) : t;
    }

    /**
     * The scales an e4m3 cache tensor gets: one per tensor or one per KV head, positive and finite.
     *
     * @throws IllegalArgumentException naming {@code name} otherwise
     */
    static float[] checkScales(String name, float[] scales, int kvHeads) {
        if (scales == null || scales.length != 1 && scales.length != kvHeads) {
            throw new IllegalArgumentException(name + ": expected 1 (per tensor) or " + kvHeads + " (per KV head) scales, got "
                    + (scales == null ? "null" : scales.length));
        }
        for (int i = 0; i < scales.length; i++) {
            if (!(scales[i] > 0f) || !Float.isFinite(scales[i])) {
                throw new IllegalArgumentException(name + ": scale " + i + " is " + scales[i]
                        + "; scales must be positive and finite");
            }
        }
        return scales;
    }

    /**
     * Refuses appended rows that do not fit: {@code [batch, kvHeads, n, dim]}, unit last stride.
     *
     * @throws IllegalArgumentException naming the argument and both shapes
     */
    static void checkRows(String name, Tensor t, int batch, int kvHeads, int dim) {
        if (t == null) {
            throw new IllegalArgumentException(name + ": must not be null");
        }
        if (t.batch() != batch || t.heads() != kvHeads || t.dim() != dim) {
            throw new IllegalArgumentException(name + ": expected [" + batch + ", " + kvHeads + ", n, " + dim + "], got "
                    + Arrays.toString(t.shape()));
        }
    }

    /**
     * Refuses appended key and value rows that do not fit {@code cache}: {@code k} must be
     * {@code [batch, kvHeads, n, headDim]}, {@code v} {@code [batch, kvHeads, n, valueDim]}, both with
     * the same {@code n}.
     *
     * @throws IllegalArgumentException naming the argument and the mismatch
     */
    static void checkAppended(KvCache cache, int batch, Tensor k, Tensor v) {
        checkRows("k", k, batch, cache.kvHeads(), cache.headDim());
        checkRows("v", v, batch, cache.kvHeads(), cache.valueDim());
        if (k.seqLen() != v.seqLen()) {
            throw new IllegalArgumentException("v: " + v.seqLen() + " rows but k has " + k.seqLen());
        }
    }

    /** Refuses a sequence index outside {@code [0, batch)}. */
    static void checkSequence(int sequence, int batch) {
        if (sequence < 0 || sequence >= batch) {
            throw new IllegalArgumentException("sequence: index " + sequence + " outside [0, " + batch + ")");
        }
    }

    /** Refuses storage whose last axis is not unit-stride (kernels read rows in bulk). */
    static void checkStorage(String name, Tensor t) {
        if (t == null) {
            throw new IllegalArgumentException(name + ": must not be null");
        }
        if (!t.isRowContiguous()) {
            throw new IllegalArgumentException(name + ": the last axis must have stride 1, got strides "
                    + Arrays.toString(t.strides()));
        }
    }
}
