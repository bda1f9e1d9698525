package dev.sparsa.kv;

import java.util.List;

/**
 * What the query rows of a decode step attend to in the cache. Immutable records with value
 * semantics. A step's query rows sit at the end of their sequence (positions {@code L − rows .. L −
 * 1} for a sequence of length {@code L}) and every pattern is causal: a row never sees a key after
 * its own position.
 *
 * <ul>
 *   <li>{@link Dense}: every key.
 *   <li>{@link SinkWindow} (StreamingLLM): the first {@code sinks} keys and the last {@code window}
 *       keys up to the row ({@code p − window < k ≤ p}).
 *   <li>{@link Quest} (Tang et al., 2024): pages of a {@link PagedKvCache} ranked by the upper
 *       bound {@code Σ_c max(q_c·min_c, q_c·max_c)} of their keys' scores, from the per-page bounds
 *       the cache keeps; {@code tokenBudget / pageSize} pages (at least 1) including, always, the last
 *       page; when the sequence has no more pages than that, every page. Plus optional sinks and window.
 *   <li>{@link TopK}: the {@code tokens} keys of highest score {@code q·k} outside the sinks and
 *       window, plus those.
 *   <li>{@link PerKvHead}: one pattern per KV head (DuoAttention / RazorAttention: retrieval heads
 *       {@link Dense}, streaming heads {@link SinkWindow}).
 * </ul>
 *
 * <p>Grouped heads: the query heads of one KV group share a selection (so one read of the group's
 * keys serves them all); a page's or key's score is the largest over the group's query heads and the
 * step's rows. With one query head per KV head and one row this is exactly the per-head rule of the
 * papers. Ties go to the lower position.
 *
 * <p>NaN and infinities: products and maxima follow Java's {@code Math.max} on every backend, so a
 * channel whose products include NaN ({@code 0·∞}, a NaN key or query) makes its page's or key's score
 * NaN, the largest over the group is NaN when any vector's is, and a NaN score ranks below every number
 * (a page or key scoring {@code +∞} ranks first).
 *
 * <p>Patterns are planned into a {@link DecodeSelection} by a backend's {@code select}; a selection
 * may be reused for later steps or layers ({@link SelectionReuse}).
 */
public sealed interface DecodePattern permits DecodePattern.Dense, DecodePattern.SinkWindow, DecodePattern.Quest,
        DecodePattern.TopK, DecodePattern.PerKvHead {

    /** A short name for tables and logs. */
    String name();

    /** True when the selection depends on Q and the cache's keys (Quest, top-k). */
    boolean dataDependent();

    /** Every key. */
    static Dense dense() {
        return Dense.INSTANCE;
    }

    /**
     * The first {@code sinks} keys and a window of {@code window} keys ending at the row. A step of one
     * row under StreamingLLM's {@code StartRecentKVCache(start_size, recent_size)}, or on a DuoAttention
     * streaming head, attends to what {@code sinkWindow(start_size, recent_size + 1)} admits: the cache
     * keeps {@code recent_size} tokens and the step adds its own.
     *
     * @throws IllegalArgumentException if a size is negative or both are 0
     */
    static SinkWindow sinkWindow(int sinks, int window) {
        return new SinkWindow(sinks, window);
    }

    /** Quest over the cache's pages with a budget of {@code tokenBudget} tokens (whole pages). */
    static Quest quest(int tokenBudget) {
        return new Quest(tokenBudget, 0, 0);
    }

    /** The {@code tokens} keys of highest score. */
    static TopK topK(int tokens) {
        return new TopK(tokens, 0, 0);
    }

    /** One pattern per KV head, in head order. */
    static PerKvHead perKvHead(List<? extends DecodePattern> heads) {
        return new PerKvHead(List.copyOf(heads));
    }

    /** Every key (dense decode). */
    record Dense() implements DecodePattern {
        static final Dense INSTANCE = new Dense();

        @Override
        public String name() {
            return "dense";
        }

        @Override
        public boolean dataDependent() {
            return false;
        }
    }

    /**
     * StreamingLLM's attention sinks plus a recent window.
     *
     * <p>Throws {@link IllegalArgumentException} if a size is negative or both are 0.
     */
    record SinkWindow(int sinks, int window) implements DecodePattern {
        public SinkWindow {
            requireForced(sinks, window, 1);
        }

        @Override
        public String name() {
            return "sinks(" + sinks + ")+window(" + window + ")";
        }

        @Override
        public boolean dataDependent() {
            return false;
        }
    }

    /**
     * Quest's page selection with optional forced sinks and window.
     *
     * <p>Throws {@link IllegalArgumentException} if {@code tokenBudget < 1} or a forced size is negative.
     */
    record Quest(int tokenBudget, int sinks, int window) implements DecodePattern {
        public Quest {
            if (tokenBudget < 1) {
                throw new IllegalArgumentException("tokenBudget: must be >= 1, got " + tokenBudget);
            }
            requireForced(sinks, window, 0);
        }

        /** With the first {@code s} keys always admitted. */
        public Quest withSinks(int s) {
            return new Quest(tokenBudget, s, window);
        }

        /** With a window of {@code w} keys always admitted. */
        public Quest withWindow(int w) {
            return new Quest(tokenBudget, sinks, w);
        }

        /** Pages selected for a page size: {@code max(1, tokenBudget / pageSize)}, the last page included. */
        public int pageBudget(int pageSize) {
            return Math.max(1, tokenBudget / pageSize);
        }

        @Override
        public String name() {
            return "quest(" + tokenBudget + ")" + forcedName(sinks, window);
        }

        @Override
        public boolean dataDependent() {
            return true;
        }
    }

    /**
     * Exact top-k tokens by score with optional forced sinks and window.
     *
     * <p>Throws {@link IllegalArgumentException} if {@code tokens < 0}, a forced size is negative, or
     * nothing at all would be admitted.
     */
    record TopK(int tokens, int sinks, int window) implements DecodePattern {
        public TopK {
            if (tokens < 0) {
                throw new IllegalArgumentException("tokens: must be >= 0, got " + tokens);
            }
            requireForced(sinks, window, tokens == 0 ? 1 : 0);
        }

        /** With the first {@code s} keys always admitted. */
        public TopK withSinks(int s) {
            return new TopK(tokens, s, window);
        }

        /** With a window of {@code w} keys always admitted. */
        public TopK withWindow(int w) {
            return new TopK(tokens, sinks, w);
        }

        @Override
        public String name() {
            return "topk(" + tokens + ")" + forcedName(sinks, window);
        }

        @Override
        public boolean dataDependent() {
            return true;
        }
    }

    /**
     * One pattern per KV head.
     *
     * <p>Throws {@link IllegalArgumentException} if the list is empty, holds null, or nests another
     * {@code PerKvHead}.
     */
    record PerKvHead(List<DecodePattern> heads) implements DecodePattern {
        public PerKvHead {
            if (heads == null || heads.isEmpty()) {
                throw new IllegalArgumentException("heads: need one pattern per KV head, got none");
            }
            heads = List.copyOf(heads);
            for (int i = 0; i < heads.size(); i++) {
                if (heads.get(i) instanceof PerKvHead) {
                    throw new IllegalArgumentException("heads: entry " + i + " is itself per-head; give one pattern per head");
                }
            }
        }

        /** The pattern of KV head {@code kvHead}. */
        public DecodePattern head(int kvHead) {
            return heads.get(kvHead);
        }

        @Override
        public String name() {
            return "per-kv-head" + heads.stream().map(DecodePattern::name).toList();
        }

        @Override
        public boolean dataDependent() {
            return heads.stream().anyMatch(DecodePattern::dataDependent);
        }
    }

    private static void requireForced(int sinks, int window, int atLeast) {
        if (sinks < 0 || window < 0) {
            throw new IllegalArgumentException("sinks and window: must be >= 0, got " + sinks + " and " + window);
        }
        if ((long) sinks + window < atLeast) {
            throw new IllegalArgumentException("sinks and window: at least one must be positive, got " + sinks + " and "
                    + window);
        }
    }

    private static String forcedName(int sinks, int window) {
        return (sinks > 0 ? "+sinks(" + sinks + ")" : "") + (window > 0 ? "+window(" + window + ")" : "");
    }
}
