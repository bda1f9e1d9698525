package dev.sparsa.patterns;

import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.patterns.window.PerHeadWindows;
import java.util.List;

/**
 * One representative, well-configured instance per pattern family and important variant, sized for
 * sequences around 4096 tokens. Every entry plans on any context (any length ≥ 1, causal or not,
 * GQA, any geometry: LSH chunks are cut to the tile height); data-dependent entries read Q and K
 * through {@code Pattern.plan(ctx, q, k)}. Parameters larger than the context simply cover all of it.
 */
public final class PatternCatalogue {
    private PatternCatalogue() {
    }

    /** The catalogue, in a stable order. */
    public static List<CatalogueEntry> examples() {
        return List.of(
                new CatalogueEntry("block-sparse", "random 10% of causal 64x64 blocks, seed 7",
                        Patterns.randomBlockSparse(0.10, 7)),
                new CatalogueEntry("block-sparse", "MInference block estimate: top 8 mean-pooled 64-blocks + diagonal",
                        Patterns.minferenceBlockSparse(8)),
                new CatalogueEntry("block-sparse", "BiFormer bi-level routing: top 6 regions of 128 tokens",
                        Patterns.biLevelRouting(6, 128)),
                new CatalogueEntry("sliding-window", "A-shape: window 512 + 64 sinks (StreamingLLM)",
                        Patterns.aShape(512, 64)),
                new CatalogueEntry("sliding-window", "tri-shape: window 512 + 64 sinks + last 64 rows dense",
                        Patterns.triShape(512, 64, 64)),
                new CatalogueEntry("sliding-window", "MoA elastic windows a+b*N per head (4 head kinds, cycled over the heads)",
                        PerHeadWindows.elastic(new double[] {128, 64, 256, 32}, new double[] {0.0, 0.06, 0.12, 0.25}, 16)
                                .cycled()),
                new CatalogueEntry("sliding-window", "1-D neighbourhood attention, 512 keys per query",
                        Patterns.neighbourhood(512)),
                new CatalogueEntry("strided", "S2-Attention: stride 4 shards by head + 4 local blocks",
                        Patterns.s2Strided(4, 4)),
                new CatalogueEntry("strided", "Sparse Transformer strided, l = 64",
                        Patterns.sparseTransformerStrided(64)),
                new CatalogueEntry("strided", "Sparse Transformer fixed, l = 128, c = 16",
                        Patterns.sparseTransformerFixed(128, 16)),
                new CatalogueEntry("strided", "dilated window: 256 keys, dilation 4",
                        Patterns.dilatedWindow(256, 4)),
                new CatalogueEntry("lsh", "HyperAttention sortLSH: 6 bits, chunks of 64, 64 residual samples",
                        Patterns.sortLsh(6, 64, 64, 11)),
                new CatalogueEntry("lsh", "Reformer LSH: 2 rounds, 6 bits, chunks of 64, look-one-back",
                        Patterns.reformerLsh(2, 6, 64, 13)),
                new CatalogueEntry("top-k", "top-k per query block (mean query): k 256 + 16 sinks + window 64",
                        Patterns.topKPerQueryBlock(256, 16, 64)),
                new CatalogueEntry("top-k", "exact top-k per query: k 128 + 16 sinks + window 64 (plans at dense cost)",
                        Patterns.topK(128).withSinks(16).withWindow(64)),
                new CatalogueEntry("top-k", "Quest: 256-token budget in pages of 16 keys + 16 sinks + window 64",
                        Patterns.quest(16, 256, 16, 64)),
                new CatalogueEntry("vertical-slash", "MInference estimate, block-expanded: 256 columns, 128 diagonals",
                        Patterns.verticalSlashEstimate(256, 128, VsSemantics.BLOCK_EXPANDED)),
                new CatalogueEntry("vertical-slash", "MInference estimate, exact tokens: 256 columns, 128 diagonals",
                        Patterns.verticalSlashEstimate(256, 128, VsSemantics.EXACT)),
                new CatalogueEntry("moba", "MoBA: own block + top 3 of 256-token blocks by mean-pooled keys",
                        Patterns.moba(256, 3)),
                new CatalogueEntry("nsa", "NSA selection: top 8 of 64-token blocks by compressed keys, shared by a GQA group",
                        Patterns.nsaSelection(64, 8)),
                new CatalogueEntry("dsa-indexer", "DSA lightning indexer: top 256 keys per query (projected stand-in, 4 heads x 32)",
                        Patterns.lightningIndexerProjected(256, 4, 32, 5)),
                new CatalogueEntry("xattention", "XAttention: antidiagonal stride 8, 64-token blocks, mass 0.9",
                        Patterns.xAttention(64, 8, 0.9)),
                new CatalogueEntry("routing", "Routing Transformer: 16 k-means clusters of 512 (3 iterations) | window 64",
                        Patterns.union(Patterns.routing(16, 512, 3, 9), Patterns.slidingWindow(64))),
                new CatalogueEntry("block-sparse", "mean-pooled block estimate, adaptive budget: mass 0.9 per head (FlexPrefill)",
                        Patterns.meanPoolBlockTopP(0.9, 64)),
                new CatalogueEntry("vertical-slash", "MInference estimate, adaptive budgets: mass 0.95 per head, 64..1000",
                        Patterns.verticalSlashEstimateTopP(0.95, 64, 1000, VsSemantics.BLOCK_EXPANDED)),
                new CatalogueEntry("composed", "union: A-shape (256 + 16 sinks) | MInference block top 4",
                        Patterns.union(Patterns.aShape(256, 16), Patterns.minferenceBlockSparse(4))),
                new CatalogueEntry("composed", "Longformer: window 256 | global tokens at 0, 1024, 2048, 3072",
                        Patterns.union(Patterns.slidingWindow(256),
                                Patterns.globalTokens(new int[] {0, 1024, 2048, 3072}, new int[] {0, 1024, 2048, 3072}))));
    }
}
