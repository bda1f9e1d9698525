package dev.sparsa.audit;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.OutputStream;
import java.util.Map;

/**
 * The audit as one JSON object (the {@code --json} output; docs/audit.md describes every field):
 * {@code {"source", "settings", "shape", "summary", "candidates", "heads": [...], "model"}}.
 */
public final class AuditJson {
    private AuditJson() {
    }

    /** Writes the report to {@code out} (not closed). */
    public static void write(AuditReport r, OutputStream out) throws IOException {
        JsonGenerator g = new JsonFactory().createGenerator(out, JsonEncoding.UTF8);
        g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
        g.useDefaultPrettyPrinter();
        g.writeStartObject();
        g.writeObjectFieldStart("source");
        for (Map.Entry<String, String> e : r.source().entrySet()) {
            g.writeStringField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
        g.writeObjectFieldStart("settings");
        g.writeBooleanField("causal", r.causal());
        g.writeNumberField("recallTarget", r.recallTarget());
        g.writeStringField("retrievalProbe", r.probe());
        g.writeStringField("retrievalDefinition", AuditReport.RETRIEVAL_DEFINITION);
        g.writeEndObject();
        g.writeObjectFieldStart("shape");
        g.writeNumberField("layers", r.layers());
        g.writeNumberField("heads", r.heads());
        g.writeNumberField("kvHeads", r.kvHeads());
        g.writeNumberField("tokens", r.tokens());
        g.writeNumberField("headDim", r.headDim());
        g.writeStringField("dtype", r.dtype());
        g.writeEndObject();
        g.writeObjectFieldStart("summary");
        g.writeNumberField("heads", r.results().size());
        g.writeNumberField("headsMeetingTarget", r.headsMeetingTarget());
        g.writeNumberField("retrievalHeads", r.retrievalHeads());
        g.writeNumberField("meanChosenDensity", r.chosenDensity());
        g.writeNumberField("seconds", r.seconds());
        g.writeEndObject();
        g.writeArrayFieldStart("candidates");
        for (String c : r.candidates()) {
            g.writeString(c);
        }
        g.writeEndArray();
        g.writeArrayFieldStart("heads");
        for (HeadResult h : r.results()) {
            g.writeStartObject();
            g.writeNumberField("layer", h.layer());
            g.writeNumberField("head", h.head());
            g.writeStringField("chosen", h.choice().spec());
            g.writeNumberField("chosenDensity", h.choice().density());
            g.writeNumberField("chosenRecall", h.choice().recall());
            g.writeBooleanField("meetsTarget", h.choice().recall() >= r.recallTarget());
            g.writeBooleanField("retrieval", h.retrieval());
            g.writeNumberField("probeRecall", h.probe().recall());
            g.writeArrayFieldStart("candidates");
            for (CandidateResult c : h.candidates()) {
                candidate(g, c);
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        g.writeEndArray();
        if (r.model() != null) {
            ModelResult m = r.model();
            g.writeObjectFieldStart("model");
            g.writeStringField("name", m.name());
            g.writeNumberField("tokens", m.tokens());
            g.writeNumberField("denseCosine", m.denseCosine());
            g.writeNumberField("configCosine", m.configCosine());
            g.writeNumberField("configDensity", m.configDensity());
            g.writeArrayFieldStart("patterns");
            for (ModelResult.PatternCosine p : m.patterns()) {
                g.writeStartObject();
                g.writeStringField("pattern", p.spec());
                g.writeStringField("family", p.family());
                g.writeNumberField("cosine", p.cosine());
                g.writeNumberField("meanRecall", p.meanRecall());
                g.writeNumberField("meanDensity", p.meanDensity());
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        g.writeEndObject();
        g.flush();
        out.write('\n');
        out.flush();
    }

    private static void candidate(JsonGenerator g, CandidateResult c) throws IOException {
        g.writeStartObject();
        g.writeStringField("pattern", c.spec());
        g.writeStringField("family", c.family());
        g.writeNumberField("density", c.density());
        g.writeNumberField("pairsVisited", c.pairsVisited());
        g.writeNumberField("recall", c.recall());
        g.writeNumberField("minRecall", c.minRecall());
        g.writeNumberField("relErrVsDense", c.relErrVsDense());
        g.writeNumberField("planMillis", c.planMillis());
        g.writeNumberField("kernelMillis", c.kernelMillis());
        g.writeNumberField("denseMillis", c.denseMillis());
        g.writeNumberField("kernelSpeedup", c.kernelSpeedup());
        g.writeNumberField("endToEndSpeedup", c.endToEndSpeedup());
        g.writeEndObject();
    }
}
