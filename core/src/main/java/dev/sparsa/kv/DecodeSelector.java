package dev.sparsa.kv;

import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plans a {@link DecodePattern} into a {@link DecodeSelection} for one call: the rules of each
 * pattern in one place, on scores from a {@link DecodeScorer}. Backends call {@link #select(Tensor,
 * KvCache, DecodePattern, DecodeScorer)} with their own scorer; {@link #plainScorer} computes the
 * scores in plain Java on host copies (the reference, and the default for backends without one).
 *
 * <p>Rules, for a sequence of length {@code L} when selecting and a step of {@code rows} rows:
 * <ul>
 *   <li>Quest: {@code P = pageSize}, {@code n = ⌈L / P⌉} pages, budget {@code m =
 *       pattern.pageBudget(P)}. If {@code n ≤ m}, every key is chosen; else the last page and the
 *       {@code m − 1} best pages among the others by bound (ties to the lower page). As Quest's
 *       serving code: the page being filled is always attended, the others compete.
 *   <li>Top-k: the candidates are the keys outside the sinks {@code [0, sinks)} and outside the
 *       step's window {@code [L − rows − window + 1, L)}; the {@code tokens} best by score (ties to
 *       the lower position), or all candidates when there are fewer.
 *   <li>Sink + window, dense: no choice; the selection records the rule.
 * </ul>
 */
public final class DecodeSelector {
    /**
     * The calling thread's key-score arrays for top-k, one per (sequence, KV head) of a wave, kept
     * between calls: a decode loop selects every step, and fresh arrays each step (a megabyte at 32k
     * keys and 8 KV heads) keep the collector committing new heap pages, which measured 2–4 × slower
     * steps when the heap had shrunk in between. Workers write into them only while the owning call
     * waits for them.
     */
    private static final ThreadLocal<float[][]> SCORES = ThreadLocal.withInitial(() -> new float[0][]);
    /** The calling thread's working memory of {@link #best}: the keyed scores and the histogram. */
    private static final ThreadLocal<int[][]> BEST = ThreadLocal.withInitial(() -> new int[][] {new int[0], new int[1 << 11]});

    private DecodeSelector() {
    }

    /**
     * The selection with scores from {@link #plainScorer}.
     *
     * @throws IllegalArgumentException as {@link #select(Tensor, KvCache, DecodePattern, DecodeScorer)}
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern) {
        check(q, cache, pattern);
        return select(q, cache, pattern, pattern.dataDependent() ? plainScorer(q, cache) : null);
    }

    /**
     * The selection for Q {@code [batch, qHeads, rows, headDim]} on {@code cache}, with scores from
     * {@code scorer} (unused, and may be null, for static patterns).
     *
     * @throws IllegalArgumentException if Q does not fit the cache, a per-head pattern does not have
     *     one entry per KV head, or Quest runs on a cache without page bounds
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeScorer scorer) {
        return select(q, cache, pattern, scorer, Workers.callerOnly());
    }

    /**
     * As {@link #select(Tensor, KvCache, DecodePattern, DecodeScorer)}, choosing for the (sequence, KV
     * head) pairs on {@code workers} (possibly in parallel: the scorer is then called from several
     * threads, for distinct pairs or distinct ranges of one sequence's pages or keys). The result does not
     * depend on the order or the thread count.
     *
     * @throws java.util.concurrent.CancellationException if a worker was interrupted before every pair
     *     was chosen
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeScorer scorer,
                                         Workers workers) {
        return select(q, cache, pattern, scorer, workers, SCORE_WAVE);
    }

    /** As the public method, holding at most {@code wave} top-k scores at once (one sequence's at least). */
    static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeScorer scorer, Workers workers,
                                  long wave) {
        if (workers == null) {
            throw new IllegalArgumentException("workers: must not be null");
        }
        check(q, cache, pattern);
        int rows = q.seqLen();
        int[] lengths = cache.lengths();
        int heads = cache.kvHeads();
        int[][] chosen = new int[cache.batch() * heads][];
        chooseRankedTopK(cache, pattern, rows, scorer, workers, wave, chosen);
        float[][] questBound = boundRankedQuest(cache, pattern, scorer, workers);
        workers.forEach(chosen.length, u -> {
            int b = u / heads;
            int g = u % heads;
            DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
            if (chosen[u] == null) {
                chosen[u] = switch (p) {
                    case DecodePattern.Quest quest -> questBound[u] != null
                            ? questSpans((PagedKvCache) cache, lengths[b], quest, questBound[u])
                            : chooseQuest((PagedKvCache) cache, lengths[b], quest);
                    case DecodePattern.TopK top -> chooseTopK(lengths[b], rows, top, null);
                    default -> null;
                };
            }
        });
        return assemble(cache, pattern, chosen);
    }

    /**
     * The selection of {@code pattern} on {@code cache} at its current lengths from spans chosen
     * elsewhere (a backend that ranks Quest's pages or top-k's keys itself): each (sequence, KV head)
     * gets its pattern's static part (dense, or its sinks and window) and the spans {@code
     * chosen[b · kvHeads + g]} ({@code [s0, e0, s1, e1, …]}, ascending and disjoint; null for none).
     *
     * @throws IllegalArgumentException if {@code chosen} does not have one entry per (sequence, KV
     *     head), a per-head pattern does not have one entry per KV head or nests another, or a span is
     *     empty, out of order or past its sequence's length
     */
    public static DecodeSelection assemble(KvCache cache, DecodePattern pattern, int[][] chosen) {
        int heads = cache.kvHeads();
        if (chosen == null || chosen.length != cache.batch() * heads) {
            throw new IllegalArgumentException("chosen: one entry per (sequence, KV head), " + cache.batch() * heads
                    + ", got " + (chosen == null ? "null" : chosen.length));
        }
        if (pattern instanceof DecodePattern.PerKvHead per && per.heads().size() != heads) {
            throw new IllegalArgumentException("pattern: " + per.heads().size() + " per-head patterns for " + heads
                    + " KV heads");
        }
        DecodeSelection.Builder sel = DecodeSelection.builder(cache.batch(), heads, cache.lengths())
                .describe(pattern.name());
        for (int b = 0; b < cache.batch(); b++) {
            for (int g = 0; g < heads; g++) {
                DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
                switch (p) {
                    case DecodePattern.Dense d -> sel.dense(b, g);
                    case DecodePattern.SinkWindow sw -> sel.forced(b, g, sw.sinks(), sw.window());
                    case DecodePattern.Quest quest -> sel.forced(b, g, quest.sinks(), quest.window());
                    case DecodePattern.TopK top -> sel.forced(b, g, top.sinks(), top.window());
                    case DecodePattern.PerKvHead nested -> throw new IllegalArgumentException("pattern: nested per-head");
                }
                int[] spans = chosen[b * heads + g];
                if (spans != null) {
                    sel.reserve(b, g, spans.length / 2);
                }
                for (int i = 0; spans != null && i < spans.length; i += 2) {
                    sel.span(b, g, spans[i], spans[i + 1]);
                }
            }
        }
        return sel.build();
    }

    private static void check(Tensor q, KvCache cache, DecodePattern pattern) {
        if (q == null || cache == null || pattern == null) {
            throw new IllegalArgumentException("q, cache and pattern: must not be null");
        }
        if (q.batch() != cache.batch() || q.heads() % cache.kvHeads() != 0 || q.dim() != cache.headDim()) {
            throw new IllegalArgumentException("q: shape " + Arrays.toString(q.shape()) + " does not fit the cache's "
                    + cache.batch() + " sequences, " + cache.kvHeads() + " KV heads, head dim " + cache.headDim());
        }
        if (pattern instanceof DecodePattern.PerKvHead per && per.heads().size() != cache.kvHeads()) {
            throw new IllegalArgumentException("pattern: " + per.heads().size() + " per-head patterns for "
                    + cache.kvHeads() + " KV heads");
        }
        if (usesQuest(pattern) && !(cache instanceof PagedKvCache pc && pc.hasPageBounds())) {
            throw new IllegalArgumentException("pattern: " + pattern.name()
                    + " ranks pages by their key bounds; it needs a PagedKvCache made with page bounds");
        }
    }

    private static boolean usesQuest(DecodePattern p) {
        return p instanceof DecodePattern.Quest
                || (p instanceof DecodePattern.PerKvHead per && per.heads().stream().anyMatch(DecodeSelector::usesQuest));
    }

    /**
     * Quest's chosen spans {@code [s0, e0, s1, e1, …]} where it does not rank pages: every key, or none
     * (where it ranks them, {@link #questSpans} chooses from the bounds of {@link #boundRankedQuest}).
     */
    private static int[] chooseQuest(PagedKvCache cache, int length, DecodePattern.Quest quest) {
        int pageSize = cache.pageSize();
        if ((length + pageSize - 1) / pageSize > quest.pageBudget(pageSize)) {
            throw new IllegalStateException("Quest ranks the pages of a sequence of " + length + " keys"
                    + " without their bounds");
        }
        return length > 0 ? new int[] {0, length} : new int[0];
    }

    /**
     * The bounds of every (sequence {@code b}, KV head {@code g}) whose Quest pattern ranks pages, at
     * {@code [b · kvHeads + g]} (null for the others), bound {@code k} for page {@code k} of the block
     * table, {@code k < n − 1}. The heads of a sequence that rank are bounded together (they share the
     * candidates), in pieces of pages run on {@code workers} (a piece serves every head: see {@link
     * DecodeScorer#questBounds(int, int[], int[], int, int, float[][])}). A bound does not depend on the
     * pieces, so neither does the selection.
     */
    private static float[][] boundRankedQuest(KvCache cache, DecodePattern pattern, DecodeScorer scorer,
                                              Workers workers) {
        float[][] bound = new float[cache.batch() * cache.kvHeads()][];
        if (!(cache instanceof PagedKvCache paged) || !usesQuest(pattern)) {
            return bound;
        }
        int heads = cache.kvHeads();
        int[] lengths = cache.lengths();
        int pageSize = paged.pageSize();
        List<int[]> pieces = new ArrayList<>(); // {sequence, group, from, to}
        List<int[]> groups = new ArrayList<>();
        List<int[]> tables = new ArrayList<>();
        for (int b = 0; b < cache.batch(); b++) {
            int pages = (lengths[b] + pageSize - 1) / pageSize;
            List<Integer> ranking = new ArrayList<>();
            for (int g = 0; g < heads; g++) {
                DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
                if (p instanceof DecodePattern.Quest quest && pages > quest.pageBudget(pageSize)) {
                    bound[b * heads + g] = new float[pages - 1];
                    ranking.add(g);
                }
            }
            if (ranking.isEmpty()) {
                continue;
            }
            int group = groups.size();
            groups.add(ranking.stream().mapToInt(Integer::intValue).toArray());
            tables.add(paged.blockTable(b));
            int candidates = pages - 1;
            int piece = questPiece(candidates, workers.parallelism());
            for (int k0 = 0; k0 < candidates; k0 += piece) {
                pieces.add(new int[] {b, group, k0, Math.min(candidates, k0 + piece)});
            }
        }
        forEachPiece(workers, pieces, groups, heads, bound,
                (piece, gs, out) -> scorer.questBounds(piece[0], gs, tables.get(piece[1]), piece[2], piece[3], out));
        return bound;
    }

    /**
     * Pages per piece of a bounded range: about four pieces per worker, between 64 and 1024 pages, a
     * multiple of 64.
     */
    static int questPiece(int pages, int workers) {
        int perPiece = (int) Math.min(1024, Math.max(64, ((long) pages + 4L * workers - 1) / (4L * workers)));
        return (perPiece + 63) / 64 * 64;
    }

    /**
     * Quest's chosen spans where it ranks pages: the last page and the {@code budget − 1} best pages by
     * {@code bound} among the others (pages {@code 0 .. bound.length − 1}), ascending.
     */
    private static int[] questSpans(PagedKvCache cache, int length, DecodePattern.Quest quest, float[] bound) {
        int pageSize = cache.pageSize();
        int candidates = bound.length;
        int[] chosen = best(bound, candidates, quest.pageBudget(pageSize) - 1);
        int[] spans = new int[2 * chosen.length + 2];
        for (int i = 0; i < chosen.length; i++) {
            spans[2 * i] = chosen[i] * pageSize;
            spans[2 * i + 1] = (chosen[i] + 1) * pageSize;
        }
        spans[2 * chosen.length] = candidates * pageSize;
        spans[2 * chosen.length + 1] = length;
        return spans;
    }

    /**
     * The candidates of top-k, keys {@code [r[0], r[1])} (empty when {@code r[1] ≤ r[0]}), for a sequence
     * of {@code length} keys and a step of {@code rows} rows.
     */
    private static int[] topKCandidates(int length, int rows, DecodePattern.TopK top) {
        int from = Math.min(top.sinks(), length);
        int to = top.window() > 0 ? (int) Math.max(0, Math.min(length, (long) length - rows - top.window() + 1)) : length;
        return new int[] {from, to};
    }

    /** Whether top-k must rank its candidates {@code r}: more of them than it keeps, and it keeps some. */
    private static boolean ranks(int[] r, DecodePattern.TopK top) {
        return top.tokens() > 0 && r[1] - r[0] > top.tokens();
    }

    /** The most top-k scores a selection holds at once, unless one sequence alone needs more (16 MiB). */
    static final long SCORE_WAVE = 1L << 22;

    /**
     * Chooses for every (sequence, KV head) whose top-k pattern ranks its candidates, into {@code
     * chosen}: sequences in waves whose scores fit {@code wave} floats, each wave scored (in pieces
     * across heads and workers, {@link #scoreTopK}), then its heads chosen, so that a large batch never
     * holds the scores of every sequence at once.
     */
    private static void chooseRankedTopK(KvCache cache, DecodePattern pattern, int rows, DecodeScorer scorer,
                                         Workers workers, long wave, int[][] chosen) {
        int heads = cache.kvHeads();
        int[] lengths = cache.lengths();
        // each ranking unit's candidates {from, to} (null for the others), and each sequence's scores
        int[][] ranked = new int[cache.batch() * heads][];
        long[] scoreFloats = new long[cache.batch()];
        for (int u = 0; u < ranked.length; u++) {
            DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(u % heads) : pattern;
            if (p instanceof DecodePattern.TopK top) {
                int[] r = topKCandidates(lengths[u / heads], rows, top);
                if (ranks(r, top)) {
                    ranked[u] = r;
                    scoreFloats[u / heads] += r[1] - r[0];
                }
            }
        }
        for (int b0 = 0, b1; b0 < cache.batch(); b0 = b1) {
            long floats = scoreFloats[b0];
            b1 = b0 + 1;
            while (b1 < cache.batch() && floats + scoreFloats[b1] <= wave) {
                floats += scoreFloats[b1++];
            }
            if (floats == 0) {
                continue;
            }
            float[][] keyScores = scoreTopK(cache, ranked, scorer, workers, b0, b1);
            int first = b0 * heads;
            workers.forEach((b1 - b0) * heads, i -> {
                int u = first + i;
                if (ranked[u] != null) {
                    DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(u % heads) : pattern;
                    chosen[u] = chooseTopK(lengths[u / heads], rows, (DecodePattern.TopK) p, keyScores[u]);
                }
            });
        }
    }

    /**
     * The key scores of every (sequence {@code bFrom ≤ b < bTo}, KV head) with candidates in {@code
     * ranked} ({@code null} for the others), score {@code i} for key {@code from + i} of its candidates.
     * Heads of a sequence with the same candidates are scored together, in pieces of keys run on
     * {@code workers} (a piece serves every head: see {@link DecodeScorer#keyScores(int, int[], int, int,
     * float[][], int)}); a score does not depend on the pieces, so neither does the selection.
     */
    private static float[][] scoreTopK(KvCache cache, int[][] ranked, DecodeScorer scorer, Workers workers, int bFrom,
                                       int bTo) {
        int heads = cache.kvHeads();
        float[][] scores = new float[ranked.length][];
        float[][] kept = SCORES.get();
        if (kept.length < (bTo - bFrom) * heads) {
            kept = Arrays.copyOf(kept, (bTo - bFrom) * heads);
            SCORES.set(kept);
        }
        List<int[]> pieces = new ArrayList<>(); // {sequence, group, from, to, base}
        List<int[]> groups = new ArrayList<>();
        for (int b = bFrom; b < bTo; b++) {
            Map<Long, List<Integer>> byRange = new LinkedHashMap<>();
            for (int g = 0; g < heads; g++) {
                int[] r = ranked[b * heads + g];
                if (r != null) {
                    // at least the candidates' count (a sequence grows by a few keys a step: room to grow)
                    int slot = (b - bFrom) * heads + g;
                    int need = r[1] - r[0];
                    if (kept[slot] == null || kept[slot].length < need) {
                        kept[slot] = new float[need + (need >> 4) + 256];
                    }
                    scores[b * heads + g] = kept[slot];
                    byRange.computeIfAbsent(((long) r[0] << 32) | r[1], k -> new ArrayList<>()).add(g);
                }
            }
            for (Map.Entry<Long, List<Integer>> e : byRange.entrySet()) {
                int from = (int) (e.getKey() >>> 32);
                int to = (int) (long) e.getKey();
                int group = groups.size();
                groups.add(e.getValue().stream().mapToInt(Integer::intValue).toArray());
                int piece = scorePiece(to - from, workers.parallelism());
                for (int k0 = from; k0 < to; k0 += piece) {
                    pieces.add(new int[] {b, group, k0, Math.min(to, k0 + piece), from});
                }
            }
        }
        forEachPiece(workers, pieces, groups, heads, scores,
                (piece, gs, out) -> scorer.keyScores(piece[0], gs, piece[2], piece[3], out, piece[4]));
        return scores;
    }

    /** Work on one piece: {@code piece} is {sequence, group, …}, {@code out[j]} the array of head {@code heads[j]}. */
    private interface PieceWork {
        void run(int[] piece, int[] heads, float[][] out);
    }

    /**
     * Runs {@code pieces} on {@code workers}, each with the arrays {@code dst[sequence · kvHeads + g]}
     * of its group's heads {@code g} (the heads of a group share a piece's keys or pages).
     */
    private static void forEachPiece(Workers workers, List<int[]> pieces, List<int[]> groups, int kvHeads,
                                     float[][] dst, PieceWork work) {
        workers.forEach(pieces.size(), i -> {
            int[] piece = pieces.get(i);
            int[] gs = groups.get(piece[1]);
            float[][] out = new float[gs.length][];
            for (int j = 0; j < gs.length; j++) {
                out[j] = dst[piece[0] * kvHeads + gs[j]];
            }
            work.run(piece, gs, out);
        });
    }

    /**
     * Keys per piece of a scored range: about four pieces per worker, between 1024 and 8192 keys, a
     * multiple of 256 (whole pages of every power-of-two size up to 256).
     */
    static int scorePiece(int keys, int workers) {
        int perPiece = (int) Math.min(8192, Math.max(1024, ((long) keys + 4L * workers - 1) / (4L * workers)));
        return (perPiece + 255) / 256 * 256;
    }

    /**
     * Top-k's chosen spans (runs of chosen keys), ascending, from the scores of its candidates ({@code
     * score} may be null where it does not rank them: all candidates or none are kept).
     */
    private static int[] chooseTopK(int length, int rows, DecodePattern.TopK top, float[] score) {
        int[] r = topKCandidates(length, rows, top);
        if (!ranks(r, top)) {
            return r[1] > r[0] && top.tokens() > 0 ? r : new int[0];
        }
        int from = r[0];
        int n = r[1] - from;
        int[] chosen = best(score, n, top.tokens());
        // runs of consecutive keys counted first, so that the spans are allocated once, at their size
        int runs = chosen.length > 0 ? 1 : 0;
        for (int i = 1; i < chosen.length; i++) {
            runs += chosen[i] == chosen[i - 1] + 1 ? 0 : 1;
        }
        int[] spans = new int[2 * runs];
        int c = 0;
        for (int i = 0; i < chosen.length; i++) {
            int key = chosen[i] + from;
            if (c > 0 && spans[c - 1] == key) {
                spans[c - 1] = key + 1;
            } else {
                spans[c++] = key;
                spans[c++] = key + 1;
            }
        }
        return spans;
    }

    /**
     * The indices of the {@code k} highest of {@code score[0 .. n)}, ascending; ties go to the lower
     * index and NaN ranks below every number.
     */
    public static int[] best(float[] score, int n, int k) {
        if (k >= n) {
            int[] all = new int[n];
            Arrays.setAll(all, i -> i);
            return all;
        }
        if (k <= 0) {
            return new int[0];
        }
        // unsigned ints in the order of the scores (NaN lowest); the k-th largest by its bits in three
        // histogram passes (no data-dependent branches), which also count the keys equal to it that
        // the k best take (the lowest-indexed of them); then one pass for the indices
        int[][] work = BEST.get();
        if (work[0].length < n) {
            work[0] = new int[n + (n >> 4) + 256];
        }
        int[] keyed = work[0];
        int[] hist = work[1];
        Arrays.fill(hist, 0);
        for (int i = 0; i < n; i++) {
            float s = score[i];
            int u = (Float.isNaN(s) ? Integer.MIN_VALUE : order(s)) ^ Integer.MIN_VALUE;
            keyed[i] = u;
            hist[u >>> 21]++;
        }
        int prefix = 0;
        int need = k;
        for (int level = 0; level < 3; level++) {
            int shift = level == 0 ? 21 : level == 1 ? 10 : 0;
            int mask = level == 2 ? (1 << 10) - 1 : (1 << 11) - 1;
            if (level > 0) {
                Arrays.fill(hist, 0);
                int high = shift + (level == 1 ? 11 : 10);
                int want = prefix >>> high;
                for (int i = 0; i < n; i++) {
                    int v = keyed[i];
                    hist[(v >>> shift) & mask] += (v >>> high) == want ? 1 : 0;
                }
            }
            int bucket = mask;
            while (need > hist[bucket]) {
                need -= hist[bucket];
                bucket--;
            }
            prefix |= bucket << shift;
        }
        // prefix: the k-th largest; need: how many keys equal to it the k best take
        int ties = need;
        int[] out = new int[k];
        int c = 0;
        for (int i = 0; i < n; i++) {
            int cmp = Integer.compareUnsigned(keyed[i], prefix);
            if (cmp > 0 || (cmp == 0 && ties-- > 0)) {
                out[c++] = i;
            }
        }
        return out;
    }

    /** A signed int with the order of the floats (−0 and 0 equal). */
    private static int order(float s) {
        int bits = Float.floatToIntBits(s == 0f ? 0f : s);
        return bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
    }

    /**
     * Scores in plain Java (f32, channel order) from host copies of Q and of the cache's keys and
     * bounds: the definitions of {@link DecodeScorer}.
     */
    public static DecodeScorer plainScorer(Tensor q, KvCache cache) {
        Tensor qh = q.toHost();
        int group = q.heads() / cache.kvHeads();
        int rows = q.seqLen();
        int dim = cache.headDim();
        Tensor bounds = cache instanceof PagedKvCache pc && pc.hasPageBounds() ? pc.pageBounds().toHost() : null;
        return new DecodeScorer() {
            private float[] vectors(int b, int g) {
                float[] v = new float[group * rows * dim];
                for (int h = 0; h < group; h++) {
                    for (int r = 0; r < rows; r++) {
                        qh.readRow(b, g * group + h, r, v, (h * rows + r) * dim);
                    }
                }
                return v;
            }

            @Override
            public void questBounds(int b, int g, int[] pages, int count, float[] out) {
                float[] v = vectors(b, g);
                float[] min = new float[dim];
                float[] max = new float[dim];
                for (int i = 0; i < count; i++) {
                    bounds.readRow(pages[i], g, 0, min, 0);
                    bounds.readRow(pages[i], g, 1, max, 0);
                    float best = Float.NEGATIVE_INFINITY;
                    for (int x = 0; x < group * rows; x++) {
                        float s = 0f;
                        for (int c = 0; c < dim; c++) {
                            float qc = v[x * dim + c];
                            s += Math.max(qc * min[c], qc * max[c]);
                        }
                        best = Math.max(best, s);
                    }
                    out[i] = best;
                }
            }

            @Override
            public void keyScores(int b, int g, int from, int to, float[] out) {
                float[] v = vectors(b, g);
                Tensor keys = cache.keys(b).toHost();
                float[] k = new float[dim];
                for (int key = from; key < to; key++) {
                    keys.readRow(0, g, key, k, 0);
                    float best = Float.NEGATIVE_INFINITY;
                    for (int x = 0; x < group * rows; x++) {
                        float s = 0f;
                        for (int c = 0; c < dim; c++) {
                            s += v[x * dim + c] * k[c];
                        }
                        best = Math.max(best, s);
                    }
                    out[key - from] = best;
                }
            }
        };
    }
}
