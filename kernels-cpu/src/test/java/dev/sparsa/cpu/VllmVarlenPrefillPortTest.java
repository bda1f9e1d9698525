package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.VllmReference;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Packed ragged prefill against vLLM's varlen reference, ported ({@link VllmReference}, its
 * {@code ref_multi_query_kv_attention}): the sequences' tokens one after another, cut by the
 * cumulative lengths {@code cu_seq_lens}, each sequence causal over its own tokens. The test hands
 * Sparsa the same offsets as {@code RaggedBatch.packed(cuSeqLens, cuSeqLens)}.
 */
class VllmVarlenPrefillPortTest {

    @Test
    void packedRaggedPrefillGivesVllmsVarlenReference() {
        Random random = new Random(120718);
        for (int headSize : new int[] {32, 80, 128}) {
            VllmReference.Varlen d = VllmReference.drawVarlen(random, DType.F32, 6, 4, headSize, 200);
            Tensor out = Attention.forward(d.q(), d.k(), d.v(), RaggedBatch.packed(d.cuSeqLens(), d.cuSeqLens()),
                    Dense.INSTANCE, Options.causalMask().withOutputDType(DType.F32));
            double err = VllmReference.relativeError(VllmReference.tokens(out), VllmReference.expected(d));
            assertTrue(err <= Problems.tolerance(DType.F32), "head size " + headSize + ": relative error " + err);
        }
    }
}
