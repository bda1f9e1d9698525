package dev.sparsa.audit.model;

import java.util.ArrayList;
import java.util.List;

/**
 * The weights of a BERT-style encoder (all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads of 32,
 * feed-forward 1536, 512 positions), read from its ONNX export. Matrices are {@code [in, out]}
 * row-major, as the exported {@code MatMul}s take them.
 *
 * @param hidden hidden size
 * @param heads attention heads
 * @param ffn feed-forward size
 * @param maxPositions learned positions
 * @param vocab vocabulary size
 * @param wordEmbeddings {@code [vocab, hidden]}
 * @param positionEmbeddings {@code [maxPositions, hidden]}
 * @param tokenTypeEmbeddings {@code [2, hidden]}
 * @param embedNormGamma the embedding LayerNorm's scale
 * @param embedNormBeta the embedding LayerNorm's shift
 * @param layers the encoder layers
 * @param epsilon the LayerNorm epsilon
 */
public record EncoderWeights(int hidden, int heads, int ffn, int maxPositions, int vocab, float[] wordEmbeddings,
                             float[] positionEmbeddings, float[] tokenTypeEmbeddings, float[] embedNormGamma,
                             float[] embedNormBeta, List<Layer> layers, float epsilon) {

    /** One encoder layer: self-attention projections, output projection, feed-forward, two LayerNorms. */
    public record Layer(float[] wq, float[] bq, float[] wk, float[] bk, float[] wv, float[] bv, float[] wo, float[] bo,
                        float[] norm1Gamma, float[] norm1Beta, float[] wi, float[] bi, float[] wf, float[] bf,
                        float[] norm2Gamma, float[] norm2Beta) {
    }

    /** Head dimension. */
    public int headDim() {
        return hidden / heads;
    }

    /**
     * Reads a BERT encoder exported by {@code torch.onnx} (the all-MiniLM-L6-v2 file): embedding and
     * bias initializers by their module names, weight matrices through the {@code MatMul} nodes named
     * after their modules.
     *
     * @throws IllegalArgumentException if an expected weight is missing or has another shape
     */
    public static EncoderWeights read(OnnxModelFile m, int layers, int hidden, int heads, int ffn, int maxPositions,
                                      int vocab) {
        List<Layer> out = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            String p = "encoder.layer." + l + ".";
            String n = "/encoder/layer." + l + "/";
            out.add(new Layer(
                    m.matMulWeight(n + "attention/self/query/MatMul_output_0", hidden, hidden), m.floats(p + "attention.self.query.bias", hidden),
                    m.matMulWeight(n + "attention/self/key/MatMul_output_0", hidden, hidden), m.floats(p + "attention.self.key.bias", hidden),
                    m.matMulWeight(n + "attention/self/value/MatMul_output_0", hidden, hidden), m.floats(p + "attention.self.value.bias", hidden),
                    m.matMulWeight(n + "attention/output/dense/MatMul_output_0", hidden, hidden), m.floats(p + "attention.output.dense.bias", hidden),
                    m.floats(p + "attention.output.LayerNorm.weight", hidden), m.floats(p + "attention.output.LayerNorm.bias", hidden),
                    m.matMulWeight(n + "intermediate/dense/MatMul_output_0", hidden, ffn), m.floats(p + "intermediate.dense.bias", ffn),
                    m.matMulWeight(n + "output/dense/MatMul_output_0", ffn, hidden), m.floats(p + "output.dense.bias", hidden),
                    m.floats(p + "output.LayerNorm.weight", hidden), m.floats(p + "output.LayerNorm.bias", hidden)));
        }
        float eps = m.constant("/embeddings/LayerNorm/Constant_1_output_0", 1e-12f);
        return new EncoderWeights(hidden, heads, ffn, maxPositions, vocab,
                m.floats("embeddings.word_embeddings.weight", vocab, hidden),
                m.floats("embeddings.position_embeddings.weight", maxPositions, hidden),
                m.floats("embeddings.token_type_embeddings.weight", 2, hidden),
                m.floats("embeddings.LayerNorm.weight", hidden), m.floats("embeddings.LayerNorm.bias", hidden),
                List.copyOf(out), eps);
    }
}
