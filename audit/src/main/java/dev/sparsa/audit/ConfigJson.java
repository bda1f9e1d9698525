package dev.sparsa.audit;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.sparsa.patterns.compose.PatternConfig;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;

/**
 * The per-head choice as a pattern configuration ({@link PatternConfig}'s format), which {@code
 * Patterns.fromConfig} loads back: each head's chosen spec, with its recall and density beside it.
 */
public final class ConfigJson {
    private ConfigJson() {
    }

    /** The configuration text. */
    public static String of(AuditReport r) {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeStringField("format", PatternConfig.FORMAT);
            g.writeNumberField("version", 1);
            g.writeNumberField("recallTarget", r.recallTarget());
            g.writeBooleanField("causal", r.causal());
            g.writeArrayFieldStart("layers");
            for (int l = 0; l < r.layers(); l++) {
                g.writeStartObject();
                g.writeNumberField("layer", l);
                g.writeArrayFieldStart("heads");
                for (HeadResult h : r.layer(l)) {
                    g.writeStartObject();
                    g.writeNumberField("head", h.head());
                    g.writeStringField("pattern", h.choice().spec());
                    g.writeNumberField("recall", h.choice().recall());
                    g.writeNumberField("density", h.choice().density());
                    g.writeBooleanField("retrieval", h.retrieval());
                    g.writeEndObject();
                }
                g.writeEndArray();
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return w + "\n";
    }
}
