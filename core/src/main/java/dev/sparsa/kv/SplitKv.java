package dev.sparsa.kv;

/**
 * How a decode call cuts each (sequence, KV head)'s keys into chunks that run as separate work items
 * and are merged exactly through their log-sum-exps, in a fixed order (split-KV, as FlashDecoding). The
 * cut only reassociates f32 sums; for a fixed chunk length the result is bitwise reproducible.
 *
 * <p>The rule ({@link #rule()}): with {@code units = batch · kvHeads} work units (a unit is one
 * sequence's KV head with its query group) and {@code target = workers · itemsPerWorker} items to
 * keep {@code workers} cores (or SMs) busy and balanced,
 * <ul>
 *   <li>no split when {@code units ≥ target} or the longest key list is at most {@code
 *       minChunkKeys};
 *   <li>else {@code splits = ⌊target / units⌋} (no split when that is 1) and {@code chunk =
 *       max(minChunkKeys, ⌈maxKeys / splits⌉)} rounded up to a multiple of {@value #GRANULE} keys.
 * </ul>
 * Rounding the splits down keeps the items at most {@code target}: on a GPU running one work item
 * per SM at a time ({@code itemsPerWorker = 1}), every item starts in the first wave, where
 * rounding up would leave a short second wave.
 *
 * <p>{@link #rule()} is the default: chunks of at least 1024 keys, 4 items per core, so that a CPU
 * pool's threads balance their work. The CUDA backend runs the default rule with its own
 * parameters, {@link #GPU_DEFAULT} (256 keys, 1 item per SM: its decode kernel runs one item per SM
 * at a time); an explicit {@link #rule(int, int)} is run as given on every backend.
 * Chunks count keys in visiting order (positions for dense decode, the selection's keys in order for
 * sparse decode), from key 0 of each (sequence, head).
 *
 * <p>{@link #fixed(int)} and {@link #none()} override the rule (tests, reproducing a run on another
 * machine).
 *
 * <p>Throws {@link IllegalArgumentException} if a parameter is out of range.
 *
 * @param fixedChunkKeys {@code 0} for the rule, else the chunk length ({@link Integer#MAX_VALUE}: no
 *                       split)
 * @param minChunkKeys   the rule's shortest chunk
 * @param itemsPerWorker the rule's work items per worker
 */
public record SplitKv(int fixedChunkKeys, int minChunkKeys, int itemsPerWorker) {
    /** Chunk lengths of the rule are multiples of this many keys. */
    public static final int GRANULE = 256;

    public SplitKv {
        if (fixedChunkKeys < 0) {
            throw new IllegalArgumentException("fixedChunkKeys: must be >= 0 (0 = the rule), got " + fixedChunkKeys);
        }
        if (minChunkKeys < 1 || itemsPerWorker < 1) {
            throw new IllegalArgumentException("minChunkKeys and itemsPerWorker: must be >= 1, got " + minChunkKeys
                    + " and " + itemsPerWorker);
        }
    }

    /** The rule a GPU backend runs for {@link #rule()}: chunks of at least 256 keys, 1 item per SM. */
    public static final SplitKv GPU_DEFAULT = new SplitKv(0, 256, 1);

    /** The default rule: chunks of at least 1024 keys and 4 items per worker (see {@link #GPU_DEFAULT}). */
    public static SplitKv rule() {
        return new SplitKv(0, 1024, 4);
    }

    /** {@code GPU_DEFAULT} in place of the default rule, anything else as it is. */
    public SplitKv onGpu() {
        return equals(rule()) ? GPU_DEFAULT : this;
    }

    /** The rule with the given shortest chunk and items per worker. */
    public static SplitKv rule(int minChunkKeys, int itemsPerWorker) {
        return new SplitKv(0, minChunkKeys, itemsPerWorker);
    }

    /**
     * Always chunks of {@code chunkKeys} keys.
     *
     * @throws IllegalArgumentException if {@code chunkKeys < 1}
     */
    public static SplitKv fixed(int chunkKeys) {
        if (chunkKeys < 1) {
            throw new IllegalArgumentException("chunkKeys: must be >= 1, got " + chunkKeys);
        }
        return new SplitKv(chunkKeys, 1024, 4);
    }

    /** Never split. */
    public static SplitKv none() {
        return new SplitKv(Integer.MAX_VALUE, 1024, 4);
    }

    /**
     * The chunk length, in keys, for a call of {@code batch} sequences of {@code kvHeads} heads whose
     * longest key list is {@code maxKeys}, on {@code workers} cores or SMs; {@link Integer#MAX_VALUE}
     * when the keys are not split.
     *
     * @throws IllegalArgumentException if a count is not positive ({@code maxKeys} may be 0)
     */
    public int chunkKeys(int batch, int kvHeads, int maxKeys, int workers) {
        if (batch < 1 || kvHeads < 1 || workers < 1 || maxKeys < 0) {
            throw new IllegalArgumentException("split: need batch, kvHeads, workers >= 1 and maxKeys >= 0, got " + batch
                    + ", " + kvHeads + ", " + workers + ", " + maxKeys);
        }
        if (fixedChunkKeys > 0) {
            return fixedChunkKeys;
        }
        long units = (long) batch * kvHeads;
        long target = (long) workers * itemsPerWorker;
        if (units >= target || maxKeys <= minChunkKeys) {
            return Integer.MAX_VALUE;
        }
        long splits = target / units;
        if (splits <= 1) {
            return Integer.MAX_VALUE;
        }
        long chunk = Math.max(minChunkKeys, (maxKeys + splits - 1) / splits);
        chunk = (chunk + GRANULE - 1) / GRANULE * GRANULE;
        return chunk >= maxKeys ? Integer.MAX_VALUE : (int) chunk;
    }

    /** Chunks that {@code keys} keys make at {@code chunkKeys} keys per chunk (at least 1). */
    public static int chunks(long keys, int chunkKeys) {
        return (int) Math.max(1, (keys + chunkKeys - 1) / chunkKeys);
    }

    @Override
    public String toString() {
        return fixedChunkKeys == 0 ? "split-kv rule (min " + minChunkKeys + " keys, " + itemsPerWorker + " items/worker)"
                : fixedChunkKeys == Integer.MAX_VALUE ? "no split" : "split-kv every " + fixedChunkKeys + " keys";
    }
}
