package dev.sparsa.audit;

import java.util.List;

/**
 * What the audited patterns do to a real model's output: the sentence embedding under each pattern
 * (applied to every head of every layer) and under the audit's per-head choice, each compared by
 * cosine with the embedding under dense attention.
 *
 * @param name the model
 * @param tokens the tokens of the audited text
 * @param denseCosine the Java encoder with Sparsa's dense attention against ONNX Runtime on the same
 *     model file and tokens
 * @param configCosine the per-head choice (config.json) against dense
 * @param configDensity the per-head choice's mean density over all heads
 * @param patterns each candidate applied everywhere
 */
public record ModelResult(String name, int tokens, double denseCosine, double configCosine, double configDensity,
                          List<PatternCosine> patterns) {
    public ModelResult {
        patterns = List.copyOf(patterns);
    }

    /**
     * One pattern applied to every head of every layer.
     *
     * @param spec the pattern
     * @param family its family
     * @param cosine embedding cosine to the dense embedding
     * @param meanRecall the pattern's recall averaged over all heads of the audit
     * @param meanDensity its density averaged over all heads
     */
    public record PatternCosine(String spec, String family, double cosine, double meanRecall, double meanDensity) {
    }
}
