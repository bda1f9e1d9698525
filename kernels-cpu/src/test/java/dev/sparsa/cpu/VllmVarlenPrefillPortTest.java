package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.VllmReference;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Packed ragged prefill against vLLM's varlen reference, ported ({@link
 * VllmReference#refMultiQueryKvAttention}): the sequences' tokens one after another, cut by the
 * cumulative lengths {@code cu_seq_lens}, each sequence causal over its own tokens. The test hands
 * Sparsa the same offsets as {@code RaggedBatch.packed(cuSeqLens, cuSeqLens)}.
 */
class VllmVarlenPrefillPortTest {

    @Test
    void packedRaggedPrefillGivesVllmsVarlenReference() {
        Random random = new Random(120718);
        for (int headSize : new int[] {32, 80, 128}) {
            int numSeqs = 6;
            int[] cuSeqLens = new int[numSeqs + 1];
            for (int i = 0; i < numSeqs; i++) {
                cuSeqLens[i + 1] = cuSeqLens[i] + 1 + random.nextInt(200);
            }
            int tokens = cuSeqLens[numSeqs];
            SplittableRandom rnd = new SplittableRandom(random.nextLong());
            Tensor q = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 4, tokens, headSize, 2.0);
            Tensor k = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 4, tokens, headSize, 2.0);
            Tensor v = Problems.random(rnd, DType.F32, Layout.BSHD, 1, 4, tokens, headSize, 1.0);
            Tensor out = Attention.forward(q, k, v, RaggedBatch.packed(cuSeqLens, cuSeqLens), Dense.INSTANCE,
                    Options.causalMask().withOutputDType(DType.F32));
            double[][][] ref = VllmReference.refMultiQueryKvAttention(cuSeqLens, VllmReference.tokens(q),
                    VllmReference.tokens(k), VllmReference.tokens(v), 1.0 / Math.sqrt(headSize));
            double worst = 0;
            double largest = 0;
            double[][][] got = VllmReference.tokens(out);
            for (int t = 0; t < tokens; t++) {
                for (int h = 0; h < 4; h++) {
                    for (int d = 0; d < headSize; d++) {
                        worst = Math.max(worst, Math.abs(got[t][h][d] - ref[t][h][d]));
                        largest = Math.max(largest, Math.abs(ref[t][h][d]));
                    }
                }
            }
            assertTrue(worst <= Problems.tolerance(DType.F32) * largest, "head size " + headSize + ": error " + worst
                    + " of " + largest);
        }
    }
}
