package dev.sparsa.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sparsa audit --model all-minilm-l6-v2 --text FILE} on a short text: the Java encoder with
 * Sparsa's dense attention agrees with ONNX Runtime (denseCosine ≥ 0.9999), every layer and head is
 * audited, and each pattern's embedding cosine is reported (1 for dense).
 */
class ModelAuditTest {
    @TempDir
    Path dir;

    @Test
    void auditsTheRealModelAndChecksItAgainstOnnxRuntime() throws Exception {
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "Attention sinks collect a large share of the attention mass. A sliding window keeps the "
                + "neighbours of each token, and a few heads retrieve what was said far away: the name Ada, the city of "
                + "Lisbon, the number four hundred and twelve. Later the text mentions Lisbon and Ada again.");
        Path out = dir.resolve("report");
        AuditCommandTest.Run r = AuditCommandTest.audit("--model", "all-minilm-l6-v2", "--text", text.toString(), "--json",
                "--out", out.toString(), "--patterns", "symmetricWindow(radius=8,sinks=2);blockTopK(blocks=1)");
        assertEquals(0, r.code(), r.err());
        Map<String, Object> json = AuditCommandTest.flatten(r.out());
        double dense = (Double) json.get("model.denseCosine");
        assertTrue(dense >= 0.9999, "denseCosine " + dense);
        assertEquals(6 * 12L, json.get("summary.heads"));
        assertEquals("dense()", json.get("model.patterns[0].pattern"));
        assertEquals(1.0, (Double) json.get("model.patterns[0].cosine"), 1e-12);
        double window = (Double) json.get("model.patterns[1].cosine");
        assertTrue(window > 0 && window < 1, "a window changes the embedding: " + window);
        assertTrue(Files.readString(out.resolve("report.html")).contains("embedding cosine"));
        assertEquals(6, dev.sparsa.patterns.Patterns.fromConfig(Files.readString(out.resolve("config.json"))).layerCount());
    }
}
