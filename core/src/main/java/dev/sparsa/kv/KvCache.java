package dev.sparsa.kv;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * The keys and values of a batch of sequences, as every backend reads them for decode and for
 * chunked prefill: {@link ContiguousKvCache} (one {@code [batch, kvHeads, capacity, dim]} tensor
 * each for K and V) or {@link PagedKvCache} (pages of a power-of-two size in a shared pool, a block
 * table per sequence). Storage is {@link Tensor}s, so a cache lives on the host or on a device
 * ({@link #device()}) through the same type.
 *
 * <p>Positions: sequence {@code b} holds keys {@code 0 .. length(b) − 1}; key position = index in
 * the sequence. Slots past a sequence's length may hold anything (NaN included); no kernel reads them
 * into an output.
 *
 * <p>Appending: {@link #append} writes the K/V rows of new tokens after a sequence's last token
 * (rounding them to the cache's dtype); a decode step appends its tokens first and then attends,
 * so the step's query rows are the last positions of the sequence.
 *
 * <p>Not thread-safe: appends must not race with each other or with reads (decode calls).
 */
public sealed interface KvCache permits ContiguousKvCache, PagedKvCache {

    /** Number of sequences (batch slots). */
    int batch();

    /** Key/value heads. */
    int kvHeads();

    /** Key head dimension. */
    int headDim();

    /** Value head dimension. */
    int valueDim();

    /** The storage type of K and V (f32, f16 or bf16). */
    DType dtype();

    /** Where K and V live. */
    Device device();

    /** True for {@link PagedKvCache}. */
    boolean paged();

    /**
     * Tokens held by sequence {@code sequence}.
     *
     * @throws IllegalArgumentException if the sequence index is out of range
     */
    int length(int sequence);

    /** A copy of every sequence's length. */
    int[] lengths();

    /** The largest length over the sequences. */
    default int maxLength() {
        int m = 0;
        for (int b = 0; b < batch(); b++) {
            m = Math.max(m, length(b));
        }
        return m;
    }

    /**
     * Appends {@code k.seqLen()} tokens to sequence {@code sequence}: {@code k} is {@code [1, kvHeads,
     * n, headDim]} and {@code v} is {@code [1, kvHeads, n, valueDim]}, of any dtype and on the host or
     * on the cache's device; values are rounded to the cache's dtype. A paged cache takes new pages
     * from its allocator as needed and keeps its per-page key bounds up to date.
     *
     * @throws IllegalArgumentException naming the argument if a shape does not fit, the sequence is
     *     out of range, or the sequence has no room (capacity or pages exhausted); nothing is
     *     written then
     */
    void append(int sequence, Tensor k, Tensor v);

    /**
     * Appends {@code n = k.seqLen()} tokens to every sequence: {@code k} is {@code [batch, kvHeads, n,
     * headDim]}, {@code v} {@code [batch, kvHeads, n, valueDim]}.
     *
     * @throws IllegalArgumentException as {@link #append}; room is checked for every sequence before
     *     anything is written
     */
    void appendStep(Tensor k, Tensor v);

    /**
     * Shortens sequence {@code sequence} to {@code length} tokens (rejected speculative tokens, a
     * finished sequence with {@code length} 0). A paged cache recomputes the bounds of the page that
     * now ends the sequence and, when it owns an allocator, frees the pages past the end.
     *
     * @throws IllegalArgumentException if the sequence is out of range or {@code length} is negative
     *     or beyond the current length
     */
    void truncate(int sequence, int length);

    /**
     * Sequence {@code sequence}'s keys {@code [1, kvHeads, length, headDim]}: a view of the cache
     * for a contiguous cache, a new gathered copy (on the cache's device) for a paged one.
     */
    Tensor keys(int sequence);

    /** Sequence {@code sequence}'s values {@code [1, kvHeads, length, valueDim]}, as {@link #keys}. */
    Tensor values(int sequence);

    /**
     * Checks the cache's bookkeeping: lengths within capacity, block tables naming pages of the pool
     * and covering each length.
     *
     * @throws IllegalArgumentException naming the sequence (and the page) that is wrong
     */
    void validate();

    /** Bytes of K and V a dense pass over sequence {@code sequence} reads. */
    default long bytesOf(int sequence) {
        return (long) length(sequence) * kvHeads() * (headDim() + valueDim()) * dtype().byteSize();
    }
}
