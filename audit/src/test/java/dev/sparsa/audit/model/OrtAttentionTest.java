package dev.sparsa.audit.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.reference.PairMask;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** ONNX Runtime's {@code Attention} graph against Sparsa's fp64 oracle: dense, causal and a causal window. */
class OrtAttentionTest {
    @Test
    void onnxRuntimeAttentionMatchesTheFp64Oracle() throws Exception {
        int b = 1;
        int h = 2;
        int n = 96;
        int d = 32;
        Random r = new Random(9);
        float[] q = new float[b * h * n * d];
        float[] k = new float[q.length];
        float[] v = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) r.nextGaussian();
            k[i] = (float) r.nextGaussian();
            v[i] = (float) r.nextGaussian();
        }
        int window = 20;
        boolean[][] band = new boolean[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                band[i][j] = j <= i && i - j < window;
            }
        }
        Tensor tq = Tensor.of(q, b, h, n, d);
        Tensor tk = Tensor.of(k, b, h, n, d);
        Tensor tv = Tensor.of(v, b, h, n, d);
        Object[][] cases = {{false, null, (PairMask) (bi, hi, qi, kj) -> true}, {true, null, (PairMask) (bi, hi, qi, kj) -> kj <= qi},
                {false, band, (PairMask) (bi, hi, qi, kj) -> kj <= qi && qi - kj < window}};
        for (Object[] c : cases) {
            boolean causal = (Boolean) c[0];
            try (OrtAttention ort = new OrtAttention(b, h, n, d, causal, (boolean[][]) c[1], 2)) {
                ort.setInputs(OrtAttention.direct(q), OrtAttention.direct(k), OrtAttention.direct(v), new long[] {b, h, n, d});
                float[] y = ort.runToArray();
                ReferenceResult ref = ReferenceAttention.dense(tq, tk, tv, Options.defaults(), (PairMask) c[2]);
                double err = ref.maxRelativeError(Tensor.of(y, b, h, n, d));
                assertTrue(err <= 1e-5, "causal " + causal + ", mask " + (c[1] != null) + ": relative error " + err);
            }
        }
    }
}
