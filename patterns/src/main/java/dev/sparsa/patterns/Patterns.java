package dev.sparsa.patterns;

import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.adaptive.CumulativeMassBlocks;
import dev.sparsa.patterns.adaptive.CumulativeMassVerticalSlash;
import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.patterns.moba.MobaSelection;
import dev.sparsa.patterns.nsa.NativeSparseAttention;
import dev.sparsa.patterns.nsa.NsaSelection;
import dev.sparsa.patterns.routing.RoutingAttention;
import dev.sparsa.patterns.xattention.XAttention;
import dev.sparsa.patterns.blocksparse.BlockSparse;
import dev.sparsa.patterns.blocksparse.GateBlockSelect;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.blocksparse.RandomBlockSparse;
import dev.sparsa.patterns.compose.CompensationToken;
import dev.sparsa.patterns.compose.GlobalTokens;
import dev.sparsa.patterns.compose.MInferenceConfig;
import dev.sparsa.patterns.compose.PerHead;
import dev.sparsa.patterns.compose.PatternConfig;
import dev.sparsa.patterns.compose.PerLayer;
import dev.sparsa.patterns.compose.Union;
import dev.sparsa.patterns.lsh.ReformerLsh;
import dev.sparsa.patterns.lsh.SortLsh;
import dev.sparsa.patterns.selection.QueryBlockIndices;
import dev.sparsa.patterns.selection.RowBlockIndices;
import dev.sparsa.patterns.selection.TokenIndices;
import dev.sparsa.patterns.strided.DilatedWindow;
import dev.sparsa.patterns.strided.S2Strided;
import dev.sparsa.patterns.strided.SparseTransformer;
import dev.sparsa.patterns.topk.DoubleSparsity;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.QuestPages;
import dev.sparsa.patterns.topk.TokenSelectVote;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.patterns.verticalslash.VerticalSlash;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.patterns.window.NeighbourhoodWindow;
import dev.sparsa.patterns.window.PerHeadWindows;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.patterns.window.SymmetricWindow;
import dev.sparsa.tensor.IndexTensor;
import java.util.List;

/**
 * Static factories for every pattern family; the entry point users and the command line call.
 * Every factory validates its parameters and throws {@link IllegalArgumentException} naming the bad
 * one. Definitions and sources: docs/patterns.md.
 */
public final class Patterns {
    private Patterns() {
    }

    /** Dense attention (causal or not as the call says). */
    public static Pattern dense() {
        return Dense.INSTANCE;
    }

    // ------------------------------------------------------------------ block-sparse

    /** An explicit block mask {@code [queryBlocks][keyBlocks]} of square {@code blockSize} blocks, for all heads. */
    public static Pattern blockSparse(boolean[][] mask, int blockSize) {
        return BlockSparse.fromMask(mask, blockSize, blockSize);
    }

    /** Explicit block masks per query head, in blocks of {@code queryBlock} rows × {@code keyBlock} keys. */
    public static Pattern blockSparse(boolean[][][] masksPerHead, int queryBlock, int keyBlock) {
        return BlockSparse.fromMasks(masksPerHead, queryBlock, keyBlock);
    }

    /** Explicit index lists {@code [heads][queryBlocks][]} of key blocks (one head for all). */
    public static Pattern blockSparseLists(int[][][] lists, int keyBlocks, int queryBlock, int keyBlock) {
        return BlockSparse.fromLists(lists, keyBlocks, queryBlock, keyBlock);
    }

    /**
     * Each causally admissible (query tile, key block) of the plan's geometry kept with probability
     * {@code density}, seeded; the same layout for every head.
     */
    public static Pattern randomBlockSparse(double density, long seed) {
        return new RandomBlockSparse(density, seed);
    }

    /**
     * MInference's block-sparse estimate: top {@code topBlocks} 64-token key blocks per query block by
     * mean-pooled Q̄·K̄ᵀ among the block-causal ones, the diagonal not forced (MInference's own heads
     * use 100).
     */
    public static Pattern minferenceBlockSparse(int topBlocks) {
        return MeanPoolBlockTopK.minference(topBlocks);
    }

    /** Mean-pooled block top-k with a block size, and the diagonal block forced ({@code keepDiagonal}) or not. */
    public static Pattern meanPoolBlockTopK(int topBlocks, int blockSize, boolean keepDiagonal) {
        return new MeanPoolBlockTopK(topBlocks, blockSize, keepDiagonal, null);
    }

    /** BiFormer's bi-level routing: top {@code topRegions} regions of {@code regionSize} tokens per query region. */
    public static Pattern biLevelRouting(int topRegions, int regionSize) {
        return MeanPoolBlockTopK.biLevelRouting(topRegions, regionSize);
    }

    /** Blocks whose caller-supplied score (a SeerAttention gate, {@code [heads][tiles][blocks]}) is ≥ threshold. */
    public static Pattern gateByThreshold(float[][][] blockScores, double threshold) {
        return GateBlockSelect.byThreshold(blockScores, threshold);
    }

    /** The best {@code ratio} of each tile's admissible blocks by caller-supplied score. */
    public static Pattern gateByRatio(float[][][] blockScores, double ratio) {
        return GateBlockSelect.byRatio(blockScores, ratio);
    }

    // ------------------------------------------------------------------ windows

    /** Causal sliding window of {@code window} keys including the diagonal; {@code .withSinks(s)} makes the A-shape. */
    public static SlidingWindow slidingWindow(int window) {
        return SlidingWindow.of(window);
    }

    /** A-shape (StreamingLLM): {@code sinks} first keys ∪ a window of {@code window} keys. */
    public static SlidingWindow aShape(int window, int sinks) {
        return SlidingWindow.of(window).withSinks(sinks);
    }

    /** Tri-shape: the A-shape plus the last {@code denseLastRows} query rows dense. */
    public static SlidingWindow triShape(int window, int sinks, int denseLastRows) {
        return SlidingWindow.of(window).withSinks(sinks).withDenseLastRows(denseLastRows);
    }

    /** Two-sided window {@code |p − k| ≤ radius}. */
    public static Pattern symmetricWindow(int radius) {
        return new SymmetricWindow(radius);
    }

    /** 1-D neighbourhood attention: exactly {@code size} keys per query, shifted at the edges. */
    public static Pattern neighbourhood(int size) {
        return new NeighbourhoodWindow(size);
    }

    /** A window per query head. */
    public static Pattern perHeadWindows(int[] windows, int sinks) {
        return PerHeadWindows.of(windows, sinks);
    }

    /** MoA's elastic windows {@code α_h + β_h·N} per query head. */
    public static Pattern elasticWindows(double[] alpha, double[] beta, int sinks) {
        return PerHeadWindows.elastic(alpha, beta, sinks);
    }

    // ------------------------------------------------------------------ strided

    /**
     * S2-Attention as DKernel builds it: per KV head a strided shard of 64-token key blocks (offsets
     * spread over the stride) plus {@code localBlocks} local blocks.
     */
    public static S2Strided s2Strided(int stride, int localBlocks) {
        return S2Strided.of(stride, localBlocks);
    }

    /**
     * S2-Attention with a head step ({@code 0}: DKernel's default), the last {@code denseKvHeads} KV
     * heads dense, and optionally one pattern for every head.
     */
    public static S2Strided s2Strided(int stride, int localBlocks, int headStep, int denseKvHeads, boolean homogeneous) {
        return new S2Strided(stride, localBlocks, headStep, 0, denseKvHeads, homogeneous, S2Strided.DEFAULT_BLOCK_SIZE);
    }

    /** Sparse Transformer's strided pattern (local {@code l} ∪ every {@code l}-th key back). */
    public static Pattern sparseTransformerStrided(int l) {
        return SparseTransformer.strided(l);
    }

    /** Sparse Transformer's fixed pattern (own block of {@code l} ∪ the last {@code c} keys of every block). */
    public static Pattern sparseTransformerFixed(int l, int c) {
        return SparseTransformer.fixed(l, c);
    }

    /** A dilated causal window of {@code keys} keys spaced {@code dilation} apart. */
    public static Pattern dilatedWindow(int keys, int dilation) {
        return new DilatedWindow(keys, dilation);
    }

    // ------------------------------------------------------------------ LSH

    /** HyperAttention's sortLSH: bucket-sorted block diagonal, optional seeded residual samples. */
    public static Pattern sortLsh(int bits, int chunk, int samples, long seed) {
        return new SortLsh(bits, chunk, samples, seed);
    }

    /** Reformer's multi-round LSH with look-one-back and duplicate removal. */
    public static Pattern reformerLsh(int rounds, int bits, int chunk, long seed) {
        return new ReformerLsh(rounds, bits, chunk, seed);
    }

    // ------------------------------------------------------------------ top-k

    /** Exact top-k per query ({@code .withSinks(s).withWindow(w)} forces more); costs as much as dense in prefill. */
    public static TopKPerQuery topK(int k) {
        return new TopKPerQuery(k, ForcedKeys.NONE);
    }

    /** Exact top-k per query with forced sinks and window ({@code k} may be 0 when something is forced). */
    public static TopKPerQuery topK(int k, int sinks, int window) {
        return new TopKPerQuery(k, new ForcedKeys(sinks, window));
    }

    /** Top-k per query tile from the tile's mean query (cheap), with forced sinks and window. */
    public static Pattern topKPerQueryBlock(int k, int sinks, int window) {
        return new TopKPerQueryBlock(k, new ForcedKeys(sinks, window), TopKPerQueryBlock.Scoring.POOLED_QUERY);
    }

    /** Top-k per query tile by exact attention mass (costs as much as dense). */
    public static Pattern topKPerQueryBlockExact(int k, int sinks, int window) {
        return new TopKPerQueryBlock(k, new ForcedKeys(sinks, window), TopKPerQueryBlock.Scoring.EXACT_MASS);
    }

    /**
     * Quest: per query, {@code tokenBudget / pageSize} pages of {@code pageSize} keys, its last visible
     * page and the best of the others by min/max bound (as Quest's reference selects them).
     */
    public static Pattern quest(int pageSize, int tokenBudget) {
        return new QuestPages(pageSize, tokenBudget);
    }

    /** {@link #quest(int, int)} with {@code sinks} and a {@code window} forced on top (Sparsa's additions). */
    public static Pattern quest(int pageSize, int tokenBudget, int sinks, int window) {
        return new QuestPages(pageSize, tokenBudget, new ForcedKeys(sinks, window));
    }

    /** Double Sparsity: top-k by the dot product over the given channels. */
    public static Pattern doubleSparsity(int[] channels, int k, int sinks, int window) {
        return new DoubleSparsity(channels, k, new ForcedKeys(sinks, window));
    }

    /** TokenSelect: per-row top-k of the per-head softmax summed over heads, shared by all heads. */
    public static Pattern tokenSelect(int k, int sinks, int window) {
        return new TokenSelectVote(k, new ForcedKeys(sinks, window));
    }

    // ------------------------------------------------------------------ vertical-slash

    /** Explicit vertical columns and slash diagonals ({@code o = p − k}). */
    public static Pattern verticalSlash(int[] columns, int[] diagonals, VsSemantics semantics) {
        return new VerticalSlash(columns, diagonals, semantics);
    }

    /** MInference's vertical-slash estimator (last 64 queries; 30 forced columns, 100 forced diagonals). */
    public static Pattern verticalSlashEstimate(int verticalBudget, int slashBudget, VsSemantics semantics) {
        return VerticalSlashEstimator.of(verticalBudget, slashBudget, semantics);
    }

    // ------------------------------------------------------------------ indexer- and gate-driven selections

    /** MoBA: per query, its own block plus the best {@code topK − 1} earlier blocks of {@code blockSize} by mean-pooled keys. */
    public static Pattern moba(int blockSize, int topK) {
        return new MobaSelection(blockSize, topK);
    }

    /**
     * NSA's selected branch: per query, the {@code blockCount} blocks of {@code blockSize} with the
     * largest compressed-key attention summed over its GQA group (own block always). The three
     * branches and their gated mix: {@link NativeSparseAttention}.
     */
    public static Pattern nsaSelection(int blockSize, int blockCount) {
        return new NsaSelection(blockSize, blockCount, Double.NaN);
    }

    /** DeepSeek's lightning indexer over the caller's indexer inputs: top {@code topK} keys per query, shared by all heads. */
    public static Pattern lightningIndexer(int topK, IndexerInputs inputs) {
        return LightningIndexer.of(topK, inputs);
    }

    /** The lightning indexer with a seeded projection of Q and K standing in for a trained indexer. */
    public static Pattern lightningIndexerProjected(int topK, int heads, int dim, long seed) {
        return LightningIndexer.projected(topK, heads, dim, seed);
    }

    /** XAttention: antidiagonal block scores (stride {@code stride}), blocks kept up to cumulative mass {@code threshold}. */
    public static Pattern xAttention(int blockSize, int stride, double threshold) {
        return new XAttention(blockSize, stride, threshold);
    }

    /** The mean-pooled block estimate with a per-head budget: blocks kept up to cumulative mass {@code gamma} (FlexPrefill). */
    public static Pattern meanPoolBlockTopP(double gamma, int blockSize) {
        return new CumulativeMassBlocks(gamma, blockSize);
    }

    /** MInference's vertical-slash estimate with per-head budgets covering mass {@code gamma} (FlexPrefill's counts). */
    public static Pattern verticalSlashEstimateTopP(double gamma, int minBudget, int maxBudget, VsSemantics semantics) {
        return new CumulativeMassVerticalSlash(gamma, minBudget, maxBudget, semantics);
    }

    /** Routing Transformer: {@code clusters} balanced clusters of {@code window} from seeded spherical k-means on the keys. */
    public static Pattern routing(int clusters, int window, int iterations, long seed) {
        return RoutingAttention.kMeans(clusters, window, iterations, seed);
    }

    /** Routing Transformer with caller-given centroids ({@code [kvHeads or 1][clusters · headDim]}). */
    public static Pattern routing(float[][] centroids, int clusters, int window) {
        return RoutingAttention.withCentroids(centroids, clusters, window);
    }

    // ------------------------------------------------------------------ caller-supplied selections

    /**
     * Per query row, the key positions it attends ({@code [batch, 1 | kvHeads | qHeads, queryLength,
     * k]}, −1 as padding): an external indexer's top-k, fed to the kernel without building layouts.
     * See {@link TokenIndices}.
     */
    public static Pattern tokenIndices(IndexTensor indices) {
        return new TokenIndices(indices, null);
    }

    /** {@link #tokenIndices(IndexTensor)} reading the first {@code lengths[b, h, r, 0]} entries of each row. */
    public static Pattern tokenIndices(IndexTensor indices, IndexTensor lengths) {
        return new TokenIndices(indices, lengths);
    }

    /** One key list per query row, the same for every head and batch entry (rows of any length). */
    public static Pattern tokenLists(int[][] keysPerRow) {
        return new TokenIndices(IndexTensor.ofRows(keysPerRow), null);
    }

    /**
     * Per query row, the key blocks of {@code blockSize} keys it attends ({@code [batch, 1 | kvHeads |
     * qHeads, queryLength, s]}, −1 as padding, optional lengths): NSA's block indices, MoBA's gate.
     * See {@link RowBlockIndices}.
     */
    public static Pattern rowBlockIndices(IndexTensor indices, IndexTensor lengths, int blockSize) {
        return new RowBlockIndices(indices, lengths, blockSize);
    }

    /**
     * Per block of {@code queryBlock} query rows, the key blocks of {@code keyBlock} keys its rows
     * attend ({@code [batch, 1 | kvHeads | qHeads, ceil(queryLength / queryBlock), s]}, −1 as padding,
     * optional lengths). See {@link QueryBlockIndices}.
     */
    public static Pattern queryBlockIndices(IndexTensor indices, IndexTensor lengths, int queryBlock, int keyBlock) {
        return new QueryBlockIndices(indices, lengths, queryBlock, keyBlock);
    }

    // ------------------------------------------------------------------ composition

    /** The union of patterns (a pair admitted by any, once). */
    public static Pattern union(Pattern... parts) {
        return Union.of(parts);
    }

    /** One pattern per query head; the list's length must equal the heads of the call. */
    public static Pattern perHead(List<? extends Pattern> heads) {
        return new PerHead(heads);
    }

    /** Global rows and columns (Longformer/BigBird); unite with a local pattern. */
    public static Pattern globalTokens(int[] rows, int[] columns) {
        return new GlobalTokens(rows, columns);
    }

    /** RazorAttention: {@code inner} plus an appended compensation key (see {@link CompensationToken}). */
    public static Pattern withCompensationToken(Pattern inner, int sinks, int window) {
        return CompensationToken.pattern(inner, sinks, window);
    }

    /** MInference's per-layer, per-head JSON configuration. */
    public static PerLayer minferenceConfig(String json, VsSemantics semantics) {
        return MInferenceConfig.parse(json, semantics);
    }

    /**
     * A per-layer, per-head pattern from the {@code config.json} that {@code sparsa audit} writes
     * (format: {@link PatternConfig}); layer {@code l}'s pattern is {@code forLayer(l)}, a {@link
     * PerHead} of one pattern per query head.
     *
     * @throws IllegalArgumentException naming the layer and head of the first bad entry
     */
    public static PerLayer fromConfig(String json) {
        return PatternConfig.parse(json);
    }
}
