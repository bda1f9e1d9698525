package dev.sparsa.audit;

import dev.sparsa.patterns.compose.PatternSpec;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Everything an audit found, ready to write as JSON ({@link AuditJson}), a pattern configuration
 * ({@link ConfigJson}) and a page ({@link HtmlReport}).
 *
 * @param source what was audited (files and names, or the model and text), as strings
 * @param causal whether the attention was causal
 * @param recallTarget the recall a chosen pattern must reach
 * @param layers layers audited
 * @param heads query heads per layer
 * @param kvHeads key/value heads per layer
 * @param tokens sequence length
 * @param headDim head dimension
 * @param dtype the input element type
 * @param candidates the candidate specs, in order
 * @param probe the streaming probe that marks retrieval heads
 * @param results one per head, layer by layer
 * @param chosenPlans the chosen candidate's plan of each head, in the same order (for pictures)
 * @param model the real model's embedding check, or null for tensors given as files
 * @param seconds the audit's wall time
 */
public record AuditReport(Map<String, String> source, boolean causal, double recallTarget, int layers, int heads,
                          int kvHeads, int tokens, int headDim, String dtype, List<String> candidates, String probe,
                          List<HeadResult> results, List<SparsePlan> chosenPlans, ModelResult model, double seconds) {

    /** The retrieval-head definition the audit applies, with its source. */
    public static final String RETRIEVAL_DEFINITION = "A retrieval head is one whose attention a streaming pattern "
            + "(a few sink tokens and a local window, the probe) cannot stand in for: the probe keeps less than the "
            + "recall target of the head's softmax mass. This is the split of DuoAttention (Xiao et al., 2024, "
            + "arXiv:2410.10819) into retrieval heads and streaming heads, decided by the probe's recall on the audited "
            + "inputs instead of DuoAttention's trained gates.";

    /** A report whose shape is read from the audited layers' tensors. */
    public static AuditReport of(Map<String, String> source, boolean causal, double recallTarget,
                                 List<Auditor.LayerInput> layers, List<PatternSpec> candidates,
                                 List<HeadResult> results, List<SparsePlan> chosenPlans, ModelResult model, double seconds) {
        Tensor q = layers.get(0).q();
        return new AuditReport(source, causal, recallTarget, layers.size(), q.heads(), layers.get(0).k().heads(), q.seqLen(),
                q.dim(), q.dtype().toString(), candidates.stream().map(Object::toString).toList(),
                CandidateSets.streamingProbe(layers.get(0).k().seqLen(), causal).toString(), results, chosenPlans, model,
                seconds);
    }

    /** The results of one layer. */
    public List<HeadResult> layer(int layer) {
        return results.stream().filter(r -> r.layer() == layer).toList();
    }

    /** Mean density of the chosen candidates over all heads. */
    public double chosenDensity() {
        return results.stream().mapToDouble(r -> r.choice().density()).average().orElse(Double.NaN);
    }

    /** Number of retrieval heads. */
    public long retrievalHeads() {
        return results.stream().filter(HeadResult::retrieval).count();
    }

    /** Heads whose choice meets the recall target (the others fall back to the most faithful candidate). */
    public long headsMeetingTarget() {
        return results.stream().filter(r -> r.choice().recall() >= recallTarget).count();
    }
}
