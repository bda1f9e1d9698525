package dev.sparsa.spec;

import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * A batch of sequences of different lengths, in one of two memory layouts:
 *
 * <ul>
 *   <li><b>packed</b> ({@link #packed(int[], int[])}): the tokens of every sequence one after the
 *       other, as FlashAttention's varlen calls take them. Q is {@code [1, qHeads, totalQueries,
 *       headDim]} (usually {@link dev.sparsa.tensor.Layout#BSHD}: total tokens × heads × dim), K
 *       and V {@code [1, kvHeads, totalKeys, …]}; sequence {@code i}'s queries are tokens {@code
 *       [cuQ[i], cuQ[i+1])} and its keys {@code [cuK[i], cuK[i+1])}, where the cumulative offsets
 *       hold {@code B + 1} non-decreasing ints starting at 0 ({@code cu_seqlens});
 *   <li><b>padded</b> ({@link #padded(int[], int[])}): Q is {@code [B, qHeads, Nq, headDim]} and K,
 *       V are {@code [B, kvHeads, Nk, …]}; sequence {@code b} uses its first {@code queryLength(b)}
 *       query rows and its first {@code keyLength(b)} keys. Key padding alone (every query row
 *       counts) is {@code padded(all Nq, keyLengths)}.
 * </ul>
 *
 * <p>Each sequence is attended as if it were alone: its positions start at 0, it is planned on its
 * own ({@code PlanContext} of batch 1 and its own lengths, so causal alignment is bottom-right per
 * sequence), and it never sees another sequence's keys. A sequence without queries or keys
 * contributes nothing; output rows without keys (and, in the padded layout, rows past a sequence's
 * query length) are 0 with LSE −∞. Immutable.
 *
 * <p>Throws {@link IllegalArgumentException} from every factory for offsets or lengths that do not describe
 *     at least one sequence, naming the sequence and the values
 */
public final class RaggedBatch {

    /** Where each sequence's tokens sit. */
    public enum Layout {
        /** Tokens of all sequences concatenated along the sequence axis of a batch-1 tensor. */
        PACKED,
        /** One batch entry per sequence, padded to a common length. */
        PADDED
    }

    private final Layout layout;
    /** Cumulative offsets, {@code B + 1} entries from 0 (for the padded layout: of the lengths, as if packed). */
    private final int[] queryOffsets;
    private final int[] keyOffsets;

    private RaggedBatch(Layout layout, int[] queryOffsets, int[] keyOffsets) {
        this.layout = layout;
        this.queryOffsets = queryOffsets;
        this.keyOffsets = keyOffsets;
    }

    /**
     * A packed batch with FlashAttention's cumulative sequence offsets for queries and keys.
     *
     * @param cuSeqlensQ {@code B + 1} non-decreasing offsets from 0 into Q's sequence axis
     * @param cuSeqlensK {@code B + 1} non-decreasing offsets from 0 into K's and V's sequence axis
     * @throws IllegalArgumentException if either is null, shorter than 2, does not start at 0,
     *     decreases, or the two disagree on the number of sequences
     */
    public static RaggedBatch packed(int[] cuSeqlensQ, int[] cuSeqlensK) {
        int[] q = checkOffsets("cuSeqlensQ", cuSeqlensQ);
        int[] k = checkOffsets("cuSeqlensK", cuSeqlensK);
        if (q.length != k.length) {
            throw new IllegalArgumentException("cuSeqlensQ has " + q.length + " entries (" + (q.length - 1)
                    + " sequences) but cuSeqlensK has " + k.length + " (" + (k.length - 1) + " sequences)");
        }
        return new RaggedBatch(Layout.PACKED, q, k);
    }

    /** A packed batch whose queries and keys share one set of offsets (self-attention prefill). */
    public static RaggedBatch packed(int[] cuSeqlens) {
        return packed(cuSeqlens, cuSeqlens);
    }

    /**
     * A packed batch of sequences of these lengths, queries and keys alike.
     *
     * @throws IllegalArgumentException if there is no length, a length is negative, or the total
     *     exceeds {@code Integer.MAX_VALUE}
     */
    public static RaggedBatch packedLengths(int... lengths) {
        int[] cu = offsetsOf("lengths", lengths);
        return new RaggedBatch(Layout.PACKED, cu, cu);
    }

    /**
     * A padded batch: sequence {@code b} uses the first {@code queryLengths[b]} query rows and the
     * first {@code keyLengths[b]} keys of batch entry {@code b}.
     *
     * @throws IllegalArgumentException if either is null or empty, a length is negative, or they
     *     differ in count
     */
    public static RaggedBatch padded(int[] queryLengths, int[] keyLengths) {
        int[] q = offsetsOf("queryLengths", queryLengths);
        int[] k = offsetsOf("keyLengths", keyLengths);
        if (q.length != k.length) {
            throw new IllegalArgumentException("queryLengths has " + (q.length - 1) + " sequences but keyLengths has "
                    + (k.length - 1));
        }
        return new RaggedBatch(Layout.PADDED, q, k);
    }

    /** A padded batch whose sequences have as many queries as keys (right-padded self-attention). */
    public static RaggedBatch padded(int... lengths) {
        return padded(lengths, lengths);
    }

    private static int[] checkOffsets(String name, int[] cu) {
        if (cu == null || cu.length < 2) {
            throw new IllegalArgumentException(name + ": need B + 1 >= 2 cumulative offsets, got "
                    + (cu == null ? "null" : Arrays.toString(cu)));
        }
        if (cu[0] != 0) {
            throw new IllegalArgumentException(name + ": must start at 0, got " + name + "[0] = " + cu[0]);
        }
        for (int i = 0; i + 1 < cu.length; i++) {
            if (cu[i + 1] < cu[i]) {
                throw new IllegalArgumentException(name + ": sequence " + i + " would have a negative length: " + name
                        + "[" + i + "] = " + cu[i] + " > " + name + "[" + (i + 1) + "] = " + cu[i + 1]);
            }
        }
        return cu.clone();
    }

    private static int[] offsetsOf(String name, int[] lengths) {
        if (lengths == null || lengths.length == 0) {
            throw new IllegalArgumentException(name + ": need at least one sequence, got "
                    + (lengths == null ? "null" : "none"));
        }
        int[] cu = new int[lengths.length + 1];
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] < 0) {
                throw new IllegalArgumentException(name + ": sequence " + i + " has negative length " + lengths[i]);
            }
            long next = (long) cu[i] + lengths[i];
            if (next > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + ": the lengths up to sequence " + i + " add up to " + next
                        + ", more than a tensor axis holds");
            }
            cu[i + 1] = (int) next;
        }
        return cu;
    }

    /** The memory layout. */
    public Layout layout() {
        return layout;
    }

    /** Number of sequences {@code B}. */
    public int sequences() {
        return queryOffsets.length - 1;
    }

    /** Query rows of sequence {@code i}. */
    public int queryLength(int i) {
        return queryOffsets[check(i) + 1] - queryOffsets[i];
    }

    /** Keys of sequence {@code i}. */
    public int keyLength(int i) {
        return keyOffsets[check(i) + 1] - keyOffsets[i];
    }

    /** Where sequence {@code i}'s queries start on Q's sequence axis: its offset when packed, 0 when padded. */
    public int queryStart(int i) {
        check(i);
        return layout == Layout.PACKED ? queryOffsets[i] : 0;
    }

    /** Where sequence {@code i}'s keys start on K's sequence axis: its offset when packed, 0 when padded. */
    public int keyStart(int i) {
        check(i);
        return layout == Layout.PACKED ? keyOffsets[i] : 0;
    }

    /** A copy of the cumulative query offsets ({@code B + 1}, from 0; in the padded layout: of the lengths). */
    public int[] queryOffsets() {
        return queryOffsets.clone();
    }

    /** A copy of the cumulative key offsets ({@code B + 1}, from 0; in the padded layout: of the lengths). */
    public int[] keyOffsets() {
        return keyOffsets.clone();
    }

    /** Query rows of all sequences together. */
    public int totalQueries() {
        return queryOffsets[queryOffsets.length - 1];
    }

    /** Keys of all sequences together. */
    public int totalKeys() {
        return keyOffsets[keyOffsets.length - 1];
    }

    /** The longest sequence's query length. */
    public int maxQueryLength() {
        int m = 0;
        for (int i = 0; i < sequences(); i++) {
            m = Math.max(m, queryLength(i));
        }
        return m;
    }

    /** The longest sequence's key length. */
    public int maxKeyLength() {
        int m = 0;
        for (int i = 0; i < sequences(); i++) {
            m = Math.max(m, keyLength(i));
        }
        return m;
    }

    /**
     * The shape of sequence {@code i} alone: batch 1, its lengths, and the heads and dims of {@code
     * whole} (the shape {@link #shapeOf} reads from the tensors).
     */
    public AttentionShape sequenceShape(int i, AttentionShape whole) {
        return new AttentionShape(1, whole.qHeads(), whole.kvHeads(), queryLength(i), keyLength(i), whole.headDim(),
                whole.valueDim());
    }

    /**
     * Checks that Q, K and V hold this batch and returns their shape (for the packed layout: batch 1
     * and the total lengths; for the padded layout: {@code B} and the padded lengths).
     *
     * @throws IllegalArgumentException naming the tensor, the axis and the sequence that do not fit
     */
    public AttentionShape shapeOf(Tensor q, Tensor k, Tensor v) {
        AttentionShape s = AttentionShape.of(q, k, v);
        if (layout == Layout.PACKED) {
            if (s.batch() != 1) {
                throw new IllegalArgumentException("q: a packed batch has batch axis 1 (the sequences lie along the "
                        + "sequence axis), got batch " + s.batch());
            }
            if (s.queryLength() != totalQueries()) {
                throw new IllegalArgumentException("q: holds " + s.queryLength() + " tokens but cuSeqlensQ ends at "
                        + totalQueries());
            }
            if (s.keyLength() != totalKeys()) {
                throw new IllegalArgumentException("k: holds " + s.keyLength() + " tokens but cuSeqlensK ends at "
                        + totalKeys());
            }
            return s;
        }
        if (s.batch() != sequences()) {
            throw new IllegalArgumentException("q: a padded batch of " + sequences() + " sequences needs batch axis "
                    + sequences() + ", got " + s.batch());
        }
        for (int i = 0; i < sequences(); i++) {
            if (queryLength(i) > s.queryLength()) {
                throw new IllegalArgumentException("queryLengths: sequence " + i + " has " + queryLength(i)
                        + " queries but q holds " + s.queryLength() + " rows per sequence");
            }
            if (keyLength(i) > s.keyLength()) {
                throw new IllegalArgumentException("keyLengths: sequence " + i + " has " + keyLength(i)
                        + " keys but k holds " + s.keyLength() + " per sequence");
            }
        }
        return s;
    }

    /**
     * Sequence {@code i}'s rows of a query-side tensor (Q, the output, the LSE): a view of batch 1,
     * without copying.
     */
    public Tensor queries(Tensor t, int i) {
        return entry(t, i).narrowSeq(queryStart(i), queryLength(i));
    }

    /** Sequence {@code i}'s keys of a key-side tensor (K or V): a view of batch 1, without copying. */
    public Tensor keys(Tensor t, int i) {
        return entry(t, i).narrowSeq(keyStart(i), keyLength(i));
    }

    private Tensor entry(Tensor t, int i) {
        check(i);
        return layout == Layout.PACKED ? t : t.narrowBatch(i, 1);
    }

    private int check(int i) {
        if (i < 0 || i >= sequences()) {
            throw new IllegalArgumentException("sequence: index " + i + " outside [0, " + sequences() + ")");
        }
        return i;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RaggedBatch r && r.layout == layout && Arrays.equals(r.queryOffsets, queryOffsets)
                && Arrays.equals(r.keyOffsets, keyOffsets);
    }

    @Override
    public int hashCode() {
        return (layout.hashCode() * 31 + Arrays.hashCode(queryOffsets)) * 31 + Arrays.hashCode(keyOffsets);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("RaggedBatch[").append(layout.name().toLowerCase()).append(", ");
        b.append(sequences()).append(" sequences, lengths ");
        int shown = Math.min(sequences(), 8);
        for (int i = 0; i < shown; i++) {
            b.append(i == 0 ? "" : ",").append(queryLength(i));
            if (keyLength(i) != queryLength(i)) {
                b.append("/").append(keyLength(i));
            }
        }
        return b.append(sequences() > shown ? ",…]" : "]").toString();
    }
}
