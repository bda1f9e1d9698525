/**
 * Sparsa's pattern families (block-sparse, sliding-window, strided, LSH, top-k, vertical-slash),
 * their composition, the estimators that read Q and K, the indexer- and gate-driven selectors (MoBA,
 * NSA, the DSA lightning indexer, XAttention, routing, budgets by cumulative mass) and selections the
 * caller supplies as index lists; start at {@link dev.sparsa.patterns.Patterns}.
 * The estimators' SIMD loops load from {@code dev.sparsa.patterns.support.panama} only where {@code
 * jdk.incubator.vector} is readable, and fall back to plain Java elsewhere.
 */
module dev.sparsa.patterns {
    requires transitive dev.sparsa.core;
    requires java.logging;

    exports dev.sparsa.patterns;
    exports dev.sparsa.patterns.adaptive;
    exports dev.sparsa.patterns.blocksparse;
    exports dev.sparsa.patterns.compose;
    exports dev.sparsa.patterns.dsa;
    exports dev.sparsa.patterns.lsh;
    exports dev.sparsa.patterns.moba;
    exports dev.sparsa.patterns.nsa;
    exports dev.sparsa.patterns.routing;
    exports dev.sparsa.patterns.selection;
    exports dev.sparsa.patterns.strided;
    exports dev.sparsa.patterns.topk;
    exports dev.sparsa.patterns.verticalslash;
    exports dev.sparsa.patterns.window;
    exports dev.sparsa.patterns.xattention;
}
