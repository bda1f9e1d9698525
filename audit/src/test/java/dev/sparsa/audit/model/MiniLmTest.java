package dev.sparsa.audit.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import dev.sparsa.attention.Attention;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.spec.Options;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java encoder with Sparsa's dense attention against the artifact's own ONNX Runtime pipeline
 * (langchain4j's tokenizer, ONNX Runtime, mean pooling): the sentence embedding must agree to a
 * cosine of 0.9999.
 */
class MiniLmTest {
    static MiniLm model;

    @BeforeAll
    static void load() {
        model = MiniLm.load();
    }

    static final LayerAttention DENSE = (l, q, k, v) -> Attention.forward(q, k, v, Patterns.dense(), Options.defaults());

    @Test
    void denseEmbeddingMatchesTheArtifactsOnnxRuntimePipeline() {
        AllMiniLmL6V2EmbeddingModel reference = new AllMiniLmL6V2EmbeddingModel();
        for (String text : new String[] {"Sparse attention for the JVM.",
                "The café's naïve résumé — 42 items, (mostly) unread; 東京 at 9:30!"}) {
            float[] expected = reference.embed(text).content().vector();
            int[] ids = model.tokenize(text);
            float[] hidden = model.encoder().forward(ids, DENSE);
            float[] mine = BertEncoder.sentenceEmbedding(hidden, ids.length, 384);
            double cos = BertEncoder.cosine(mine, expected);
            assertTrue(cos >= 0.9999, "cosine " + cos + " for: " + text);
        }
    }

    @Test
    void hiddenStatesMatchOnnxRuntimeOnTheSameIds() {
        int[] ids = model.tokenize("A longer passage, so that attention has something to choose between: "
                + "the quick brown fox jumps over the lazy dog while the cat watches from the window.");
        float[] mine = model.encoder().forward(ids, DENSE);
        float[] ort = model.onnxRuntimeHidden(ids);
        double err = 0;
        double ref = 0;
        for (int i = 0; i < ort.length; i++) {
            err += (mine[i] - ort[i]) * (double) (mine[i] - ort[i]);
            ref += ort[i] * (double) ort[i];
        }
        assertTrue(Math.sqrt(err / ref) < 1e-4, "relative error of the hidden states " + Math.sqrt(err / ref));
    }

    @Test
    void tokenizerAgreesWithHuggingFaceTokenizers() throws Exception {
        java.nio.file.Path json = java.nio.file.Files.createTempFile("tokenizer", ".json");
        try (java.io.InputStream in = MiniLm.class.getResourceAsStream(MiniLm.TOKENIZER)) {
            java.nio.file.Files.copy(in, json, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer hf = ai.djl.huggingface.tokenizers.HuggingFaceTokenizer
                .newInstance(json, java.util.Map.of("padding", "false", "truncation", "false"))) {
            for (String text : new String[] {"Hello, unaffable world!", "The café's naïve résumé — 42 items; 東京 at 9:30!",
                    "tabs\tand\nnewlines\u00a0nbsp, emoji \ud83d\ude00 and a zero\u200bwidth space",
                    "Pneumonoultramicroscopicsilicovolcanoconiosis x" + "y".repeat(120), "ÅNGSTRÖM über ÆSIR ǅ ﬁne"}) {
                long[] expected = hf.encode(text).getIds();
                int[] mine = model.tokenize(text);
                assertArrayEquals(java.util.Arrays.stream(expected).mapToInt(x -> (int) x).toArray(), mine, text);
            }
        } finally {
            java.nio.file.Files.delete(json);
        }
    }

    @Test
    void erfIsWithinItsBoundOfASeriesToDoublePrecision() {
        for (double x = -6; x <= 6; x += 0.001) {
            assertTrue(Math.abs(BertEncoder.erf(x) - erfSeries(x)) < 1.5e-7, "erf(" + x + ")");
        }
        assertTrue(Math.abs(erfSeries(0.5) - 0.5204998778130465) < 1e-14);
        assertTrue(Math.abs(erfSeries(-1.7) + 0.9837904585907746) < 1e-14);
        assertTrue(Math.abs(erfSeries(3.1) - 0.9999883513426328) < 1e-14);
    }

    /** erf by its Taylor series near 0 and the continued fraction of erfc beyond: the test's reference. */
    static double erfSeries(double x) {
        double ax = Math.abs(x);
        double r;
        if (ax < 2.5) {
            double term = ax;
            double sum = ax;
            for (int n = 1; n < 80; n++) {
                term *= -ax * ax / n;
                sum += term / (2 * n + 1);
            }
            r = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double f = ax;
            for (int n = 80; n >= 1; n--) {
                f = ax + (n / 2.0) / f;
            }
            r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }
}
