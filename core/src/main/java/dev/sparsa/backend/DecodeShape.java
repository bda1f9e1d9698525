package dev.sparsa.backend;

import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * What a backend needs to know to say whether it decodes a problem, without the problem's data: where
 * the cache lives (or will live), its dtype, the query's dtype, the key and value head dims, and the
 * query rows per sequence of a step. {@link AttentionBackend#decodeRefusal(DecodeShape)} answers from
 * this alone, so a caller can ask before it allocates or copies a cache for a backend (for example
 * before copying host caches to a GPU); a backend's {@code decode} refuses a call with the answer for
 * the call's own shape ({@link #of(KvCache, Tensor)}), so the two cannot disagree. Immutable.
 *
 * @param device     where the cache and the call's tensors live
 * @param dtype      the cache's dtype
 * @param queryDType Q's dtype: the cache's, except for a scaled (e4m3) cache, which any query may read
 *                   (the five-argument constructor and {@link #of(KvCache, int)} assume bf16 there)
 * @param headDim    the cache's key head dimension (Q's last axis)
 * @param valueDim   the cache's value head dimension (the output's last axis)
 * @param queryRows  query rows per sequence in a step, 1 to {@value DecodeArguments#MAX_QUERY_ROWS}
 *
 * <p>Throws {@link IllegalArgumentException} if the device or a dtype is null, the query's dtype differs
 *     from an unscaled cache's, a dim is below 1, or the row count is outside {@code [1, }{@value
 *     DecodeArguments#MAX_QUERY_ROWS}{@code ]}
 */
public record DecodeShape(Device device, DType dtype, DType queryDType, int headDim, int valueDim, int queryRows) {

    public DecodeShape {
        if (device == null || dtype == null || queryDType == null) {
            throw new IllegalArgumentException("device and dtype: must not be null (got " + device + ", " + dtype + ", query "
                    + queryDType + ")");
        }
        if (queryDType != dtype && !dtype.isScaled()) {
            throw new IllegalArgumentException("queryDType: a " + dtype + " cache is read by a " + dtype + " query, got "
                    + queryDType);
        }
        if (headDim < 1 || valueDim < 1) {
            throw new IllegalArgumentException("dim: need headDim >= 1 and valueDim >= 1, got " + headDim + " and "
                    + valueDim);
        }
        if (queryRows < 1 || queryRows > DecodeArguments.MAX_QUERY_ROWS) {
            throw new IllegalArgumentException("queryRows: " + queryRows + " query rows per sequence; decode takes 1 to "
                    + DecodeArguments.MAX_QUERY_ROWS + " (prefill longer chunks against the cache instead)");
        }
    }

    /**
     * A shape whose query has the usual dtype for the cache: the cache's own, or bf16 for a scaled
     * (e4m3) cache.
     *
     * @throws IllegalArgumentException as the canonical constructor
     */
    public DecodeShape(Device device, DType dtype, int headDim, int valueDim, int queryRows) {
        this(device, dtype, dtype == null || !dtype.isScaled() ? dtype : DType.BF16, headDim, valueDim, queryRows);
    }

    /**
     * The shape of decode steps of {@code queryRows} rows on {@code cache}: its device, dtype and
     * dims (nothing is read from its storage), with the usual query dtype for it (the cache's, or
     * bf16 for an e4m3 cache).
     *
     * @throws IllegalArgumentException if the cache is null or the row count is out of range
     */
    public static DecodeShape of(KvCache cache, int queryRows) {
        if (cache == null) {
            throw new IllegalArgumentException("cache: must not be null");
        }
        return new DecodeShape(cache.device(), cache.dtype(), cache.headDim(), cache.valueDim(), queryRows);
    }

    /**
     * The shape of the decode call of {@code q} on {@code cache}: the cache's device, dtype and dims,
     * Q's dtype and row count (what a backend's {@code decode} checks a call against).
     *
     * @throws IllegalArgumentException if either is null, Q's dtype does not fit the cache, or its row
     *     count is out of range
     */
    public static DecodeShape of(KvCache cache, Tensor q) {
        if (cache == null || q == null) {
            throw new IllegalArgumentException("cache and q: must not be null (got " + cache + ", " + q + ")");
        }
        return new DecodeShape(cache.device(), cache.dtype(), q.dtype(), cache.headDim(), cache.valueDim(), q.seqLen());
    }

    /** This shape on {@code other} (for a caller that asks before placing host caches there). */
    public DecodeShape on(Device other) {
        return new DecodeShape(other, dtype, queryDType, headDim, valueDim, queryRows);
    }

    @Override
    public String toString() {
        return dtype + " cache on " + device + (queryDType != dtype ? " read by a " + queryDType + " query" : "")
                + ", head dim " + headDim + ", value dim " + valueDim + ", " + queryRows + " query row(s)";
    }
}
