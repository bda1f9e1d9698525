package dev.sparsa.patterns.compose;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link PatternSpec} text round trips to the same plans; {@link PatternConfig} loads per-head patterns and names bad entries. */
class PatternConfigTest {
    private static final PlanContext CTX = PlanContext.of(AttentionShape.of(1, 2, 256, 256, 32), Options.causalMask());

    @Test
    void everySpecRoundTripsAndPlansLikeItsFactory() {
        List<String> texts = List.of("dense()", "aShape(window=64,sinks=4)", "symmetricWindow(radius=16, sinks=0)",
                "blockTopK(blocks=2)", "verticalSlash(vertical=32,slash=16)", "topK(k=32,sinks=4,window=16)", "strided(l=16)",
                "sortLsh(bits=3,chunk=64,samples=16)");
        for (String t : texts) {
            PatternSpec s = PatternSpec.parse(t);
            assertEquals(s, PatternSpec.parse(s.toString()), t);
            assertEquals(t.replace(" ", ""), s.toString());
        }
        assertSamePlan(Patterns.aShape(64, 4), PatternSpec.parse("aShape(window=64,sinks=4)").pattern());
        assertSamePlan(Patterns.sparseTransformerStrided(16), PatternSpec.parse("strided(l=16)").pattern());
        assertEquals("sliding-window", PatternSpec.parse("symmetricWindow(radius=1,sinks=1)").family());
    }

    @Test
    void specsRefuseWhatTheyCannotMean() {
        assertMessage(() -> PatternSpec.parse("window(size=3)"), "unknown name 'window'");
        assertMessage(() -> PatternSpec.parse("aShape(window=3)"), "takes [window, sinks]");
        assertMessage(() -> PatternSpec.parse("aShape(window=x,sinks=1)"), "window must be an integer");
        assertMessage(() -> PatternSpec.parse("aShape(window=-1,sinks=1)"), "window must be >= 0");
        assertMessage(() -> PatternSpec.parse("aShape(window=1,window=2)"), "window given twice");
        assertMessage(() -> PatternSpec.parse("aShape"), "expected name(key=value, ...)");
    }

    @Test
    void configLoadsOnePatternPerHeadPerLayer() {
        String json = """
                {"format": "sparsa-pattern-config", "version": 1, "recallTarget": 0.95,
                 "layers": [
                   {"layer": 0, "heads": [{"head": 0, "pattern": "aShape(window=64,sinks=4)", "recall": 0.97},
                                          {"head": 1, "pattern": "dense()"}]},
                   {"layer": 1, "heads": [{"head": 0, "pattern": "strided(l=16)"}, {"head": 1, "pattern": "blockTopK(blocks=1)"}]}]}
                """;
        var config = Patterns.fromConfig(json);
        assertEquals(2, config.layerCount());
        SparsePlan plan = config.forLayer(0).plan(CTX);
        SparsePlan window = Patterns.aShape(64, 4).plan(CTX);
        SparsePlan dense = Patterns.dense().plan(CTX);
        assertEquals(window.layout(0, 0).pairsAdmitted(), plan.layout(0, 0).pairsAdmitted());
        assertEquals(dense.layout(0, 0).pairsAdmitted(), plan.layout(0, 1).pairsAdmitted());
    }

    @Test
    void badConfigsNameTheLayerAndHead() {
        assertMessage(() -> PatternConfig.parse("[]"), "\"format\": \"sparsa-pattern-config\"");
        assertMessage(() -> PatternConfig.parse("{\"format\":\"sparsa-pattern-config\",\"version\":2,\"layers\":[]}"),
                "unsupported version");
        assertMessage(() -> PatternConfig.parse("{\"format\":\"sparsa-pattern-config\",\"version\":1,\"layers\":[]}"),
                "non-empty list");
        assertMessage(() -> PatternConfig.parse("{\"format\":\"sparsa-pattern-config\",\"version\":1,\"layers\":"
                + "[{\"heads\":[{\"pattern\":\"dense()\"},{\"pattern\":\"aShape(window=4)\"}]}]}"), "layer 0 head 1: pattern aShape");
        assertMessage(() -> PatternConfig.parse("{\"format\":\"sparsa-pattern-config\",\"version\":1,\"layers\":"
                + "[{\"heads\":[{\"pattern\":\"dense()\"}]},{\"heads\":[{\"p\":1}]}]}"), "layer 1 head 0: expected an object");
        assertMessage(() -> PatternConfig.parse("{\"format\":"), "json");
    }

    private static void assertSamePlan(Pattern a, Pattern b) {
        SparsePlan x = a.plan(CTX);
        SparsePlan y = b.plan(CTX);
        assertEquals(x.pairsAdmitted(), y.pairsAdmitted());
        assertEquals(x.pairsVisited(), y.pairsVisited());
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String says) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(says), "expected '" + says + "' in: " + ex.getMessage());
    }
}
