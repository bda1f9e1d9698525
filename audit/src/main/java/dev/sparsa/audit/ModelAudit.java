package dev.sparsa.audit;

import dev.sparsa.attention.Attention;
import dev.sparsa.audit.model.BertEncoder;
import dev.sparsa.audit.model.LayerAttention;
import dev.sparsa.audit.model.MiniLm;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.compose.PatternSpec;
import dev.sparsa.patterns.compose.PerLayer;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The audit of a real model: all-MiniLM-L6-v2 encodes a text with Sparsa's dense attention, checked
 * against ONNX Runtime; every layer's real Q, K, V are audited head by head; then the encoder runs
 * again with each candidate pattern in every layer, and with the per-head choice, and each sentence
 * embedding is compared with the dense one.
 */
public final class ModelAudit {
    private ModelAudit() {
    }

    /** The audited layers' Q, K, V, the heads' results, their chosen plans and the model's embedding check. */
    public record Result(List<Auditor.LayerInput> layers, List<HeadResult> heads, List<SparsePlan> plans, ModelResult model) {
    }

    /**
     * Audits {@code text} (cut to the model's 512 tokens) against {@code candidates}.
     *
     * @throws IllegalArgumentException if the text has no token
     */
    public static Result run(MiniLm model, String text, List<PatternSpec> candidates, double target, PrintStream progress) {
        int[] ids = model.tokenize(text);
        if (ids.length <= 2) {
            throw new IllegalArgumentException("text: no token in it");
        }
        // each pattern runs as defined (its own plan), never a dense or block-expanded substitute
        Options options = Options.defaults().withDispatch(Dispatch.SPARSE);
        BertEncoder encoder = model.encoder();
        List<Auditor.LayerInput> layers = new ArrayList<>();
        long t0 = System.nanoTime();
        float[] denseHidden = encoder.forward(ids, (l, q, k, v) -> {
            layers.add(new Auditor.LayerInput(l, q, k, v)); // fresh projections each layer: kept, not copied
            return Attention.forward(q, k, v, Patterns.dense(), options);
        });
        float[] dense = BertEncoder.sentenceEmbedding(denseHidden, ids.length, encoder.weights().hidden());
        progress.printf("sparsa audit: %s, %d tokens, dense forward in %.2f s%n", MiniLm.NAME, ids.length,
                (System.nanoTime() - t0) / 1e9);
        t0 = System.nanoTime();
        float[] ort = BertEncoder.sentenceEmbedding(model.onnxRuntimeHidden(ids), ids.length, encoder.weights().hidden());
        double denseCosine = BertEncoder.cosine(dense, ort);
        progress.printf("sparsa audit: ONNX Runtime on the same tokens in %.2f s, cosine %.6f%n",
                (System.nanoTime() - t0) / 1e9, denseCosine);

        Auditor.Outcome outcome = new Auditor(options, target, progress).audit(layers, candidates);
        List<HeadResult> heads = outcome.heads();

        t0 = System.nanoTime();
        List<ModelResult.PatternCosine> cosines = new ArrayList<>();
        for (int c = 0; c < candidates.size(); c++) {
            PatternSpec spec = candidates.get(c);
            int ci = c;
            double recall = heads.stream().mapToDouble(h -> h.candidates().get(ci).recall()).average().orElse(Double.NaN);
            double density = heads.stream().mapToDouble(h -> h.candidates().get(ci).density()).average().orElse(Double.NaN);
            double cos = spec.name().equals("dense") ? BertEncoder.cosine(dense, dense)
                    : BertEncoder.cosine(dense, embed(encoder, ids, everywhere(spec.pattern(), options)));
            cosines.add(new ModelResult.PatternCosine(spec.toString(), spec.family(), cos, recall, density));
        }
        PerLayer config = Patterns.fromConfig(ConfigJson.of(AuditReport.of(
                Map.of(), false, target, layers, candidates, heads, outcome.chosenPlans(), null, 0)));
        double configCosine = BertEncoder.cosine(dense, embed(encoder, ids,
                (l, q, k, v) -> Attention.forward(q, k, v, config.forLayer(l), options)));
        double configDensity = heads.stream().mapToDouble(h -> h.choice().density()).average().orElse(Double.NaN);
        progress.printf("sparsa audit: %d patterns and the per-head choice through the model in %.1f s%n",
                candidates.size(), (System.nanoTime() - t0) / 1e9);
        return new Result(layers, heads, outcome.chosenPlans(),
                new ModelResult(MiniLm.NAME, ids.length, denseCosine, configCosine, configDensity, cosines));
    }

    private static LayerAttention everywhere(Pattern p, Options options) {
        return (l, q, k, v) -> Attention.forward(q, k, v, p, options);
    }

    private static float[] embed(BertEncoder encoder, int[] ids, LayerAttention attention) {
        float[] h = encoder.forward(ids, attention);
        return BertEncoder.sentenceEmbedding(h, ids.length, encoder.weights().hidden());
    }
}
