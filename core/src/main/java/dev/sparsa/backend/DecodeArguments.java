package dev.sparsa.backend;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * The checks every backend runs before a decode kernel, in one place as {@link ForwardArguments} is
 * for prefill: Q against the cache, the output and LSE, one device for all, unit last-axis strides,
 * outputs that overlap an input, the cache's block tables and lengths, and the selection against the
 * cache.
 */
public final class DecodeArguments {
    /** The most query rows a decode step may have per sequence (speculative decoding drafts). */
    public static final int MAX_QUERY_ROWS = 64;

    private DecodeArguments() {
    }

    /**
     * @param q         {@code [batch, qHeads, rows, headDim]} in the cache's dtype (any dtype against an
     *                  e4m3 cache: an FP8 cache's query need not be quantised), {@code 1 ≤ rows ≤}
     *                  {@value #MAX_QUERY_ROWS}, {@code qHeads} a multiple of the cache's KV heads
     * @param cache     the cache; its {@code batch()} is Q's batch
     * @param selection the sparse selection, or null for dense decode
     * @param out       {@code [batch, qHeads, rows, valueDim]}, f32 or Q's {@code DType.defaultOutput()} (Q's dtype; bf16 for e4m3)
     * @param lse       {@code [batch, qHeads, rows, 1]} f32, or null
     * @return the shape of the call as an {@link AttentionShape} whose {@code queryLength} is the rows
     *     per sequence and {@code keyLength} the longest sequence
     * @throws IllegalArgumentException naming the first argument that does not fit (for a bad block
     *     table: the sequence and the page)
     */
    public static AttentionShape validate(Tensor q, KvCache cache, DecodeSelection selection, Tensor out, Tensor lse,
                                          DecodeOptions options) {
        if (q == null || cache == null || out == null || options == null) {
            throw new IllegalArgumentException("q, cache, out and options: must not be null (got q=" + q + ", cache="
                    + cache + ", out=" + out + ", options=" + options + ")");
        }
        cache.validate();
        if (q.batch() != cache.batch()) {
            throw new IllegalArgumentException("q: batch " + q.batch() + " but the cache holds " + cache.batch()
                    + " sequences");
        }
        if (q.heads() % cache.kvHeads() != 0) {
            throw new IllegalArgumentException("q: " + q.heads() + " heads is not a multiple of the cache's "
                    + cache.kvHeads() + " KV heads");
        }
        if (q.seqLen() < 1 || q.seqLen() > MAX_QUERY_ROWS) {
            throw new IllegalArgumentException("q: " + q.seqLen() + " query rows per sequence; decode takes 1 to "
                    + MAX_QUERY_ROWS + " (prefill longer chunks against the cache instead)");
        }
        if (q.dim() != cache.headDim()) {
            throw new IllegalArgumentException("q: head dim " + q.dim() + " but the cache's keys have " + cache.headDim());
        }
        if (q.dtype() != cache.dtype() && !cache.dtype().isScaled()) {
            throw new IllegalArgumentException("q: dtype " + q.dtype() + " differs from the cache's " + cache.dtype()
                    + ForwardArguments.roundingHint(q, cache.dtype()));
        }
        AttentionShape s = new AttentionShape(q.batch(), q.heads(), cache.kvHeads(), q.seqLen(), cache.maxLength(),
                cache.headDim(), cache.valueDim());
        if (out.batch() != s.batch() || out.heads() != s.qHeads() || out.seqLen() != s.queryLength()
                || out.dim() != s.valueDim()) {
            throw new IllegalArgumentException("out: expected shape [" + s.batch() + ", " + s.qHeads() + ", "
                    + s.queryLength() + ", " + s.valueDim() + "], got " + Arrays.toString(out.shape()));
        }
        if (out.dtype() != DType.F32 && out.dtype() != q.dtype().defaultOutput()) {
            throw new IllegalArgumentException("out: dtype must be f32 or " + q.dtype().defaultOutput() + " for "
                    + q.dtype() + " inputs, got " + out.dtype());
        }
        if (lse != null && (lse.dtype() != DType.F32 || lse.batch() != s.batch() || lse.heads() != s.qHeads()
                || lse.seqLen() != s.queryLength() || lse.dim() != 1)) {
            throw new IllegalArgumentException("lse: expected f32 [" + s.batch() + ", " + s.qHeads() + ", "
                    + s.queryLength() + ", 1], got " + lse.dtype() + " " + Arrays.toString(lse.shape()));
        }
        Device where = ForwardArguments.device(q, null, null, out, lse);
        if (!where.equals(cache.device())) {
            throw new IllegalArgumentException("device: q and the outputs are on " + where + " but the cache is on "
                    + cache.device() + "; a call's tensors live on one device");
        }
        if (!q.isRowContiguous() || !out.isRowContiguous()) {
            throw new IllegalArgumentException((q.isRowContiguous() ? "out" : "q")
                    + ": the last axis must have stride 1, got strides "
                    + Arrays.toString((q.isRowContiguous() ? out : q).strides()));
        }
        Tensor[] storage = storage(cache);
        String[] names = {"q", "cache keys", "cache values", "page bounds"};
        Tensor[] inputs = {q, storage[0], storage[1], storage[2]};
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] == null) {
                continue;
            }
            if (ForwardArguments.overlap(out, inputs[i]) || (lse != null && ForwardArguments.overlap(lse, inputs[i]))) {
                throw new IllegalArgumentException((ForwardArguments.overlap(out, inputs[i]) ? "out" : "lse")
                        + ": overlaps the memory of " + names[i] + "; outputs must not alias inputs");
            }
        }
        if (lse != null && ForwardArguments.overlap(lse, out)) {
            throw new IllegalArgumentException("lse: overlaps out's memory");
        }
        if (selection != null) {
            selection.requireFits(cache);
        }
        if (options.run().validateFinite()) {
            if (!q.isHost()) {
                throw new IllegalArgumentException("options: validateFinite scans host tensors; q is on " + q.device());
            }
            q.requireFinite("q");
        }
        return s;
    }

    /** The cache's K, V and bounds storage tensors (bounds null when absent). */
    private static Tensor[] storage(KvCache cache) {
        return switch (cache) {
            case ContiguousKvCache c -> new Tensor[] {c.keyStorage(), c.valueStorage(), null};
            case PagedKvCache p -> new Tensor[] {p.keyPages(), p.valuePages(), p.pageBounds()};
        };
    }
}
