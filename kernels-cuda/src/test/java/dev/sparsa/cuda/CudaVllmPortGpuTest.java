package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.pattern.Dense;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.VllmReference;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The GPU against vLLM's references, ported ({@link VllmReference}): paged decode with page pools in
 * device memory and block tables drawn as vLLM's test draws them (blocks repeated within and across
 * sequences), f32 on the CUDA-core kernel and bf16 on the tensor-core one, head dims 64 and 128,
 * blocks of 16 and 32 tokens, MHA and GQA; and packed ragged prefill against the varlen reference.
 */
@Tag("gpu")
class CudaVllmPortGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @Test
    void pagedDecodeOnTheDeviceGivesVllmsReferenceOutputs() {
        int numSeqs = 5;
        int numBlocks = 97;
        Random random = new Random(120717);
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            for (int[] heads : new int[][] {{8, 8}, {16, 4}}) {
                for (int headSize : new int[] {64, 128}) {
                    for (int blockSize : new int[] {16, 32}) {
                        VllmReference.Draw d = VllmReference.draw(random, dtype, numSeqs, heads[0], heads[1],
                                headSize, blockSize, numBlocks, 300);
                        try (Tensor k = CudaTensors.upload(BACKEND.device(), d.kPool());
                             Tensor v = CudaTensors.upload(BACKEND.device(), d.vPool());
                             Tensor q = CudaTensors.upload(BACKEND.device(), d.q())) {
                            PagedKvCache cache = PagedKvCache.wrap(k, v, null, blockSize, numSeqs, null);
                            for (int i = 0; i < numSeqs; i++) {
                                cache.setBlockTable(i, d.blockTables()[i], d.seqLens()[i]);
                            }
                            try (Tensor out = Attention.decode(q, cache, DecodeOptions.defaults())) {
                                assertTrue(!out.isHost(), "decoded on the device");
                                double err = VllmReference.relativeError(out.toHost(), VllmReference.expected(d));
                                String what = dtype + " heads " + heads[0] + "/" + heads[1] + " head size " + headSize
                                        + " block size " + blockSize + ", " + CudaBackend.lastKernel();
                                assertTrue(err <= Tolerance.output(dtype), what + ": relative error " + err);
                            }
                        }
                    }
                }
            }
        }
    }

    /** Packed sequences cut by {@code cu_seq_lens}, each causal over its own tokens, from device tensors. */
    @Test
    void packedRaggedPrefillOnTheDeviceGivesVllmsVarlenReference() {
        Random random = new Random(120719);
        DType[] dtypes = {DType.BF16, DType.BF16, DType.F32};
        int[] dims = {64, 128, 64};
        for (int x = 0; x < dtypes.length; x++) {
            int numSeqs = 6;
            int[] cuSeqLens = new int[numSeqs + 1];
            for (int i = 0; i < numSeqs; i++) {
                cuSeqLens[i + 1] = cuSeqLens[i] + 1 + random.nextInt(300);
            }
            int tokens = cuSeqLens[numSeqs];
            SplittableRandom rnd = new SplittableRandom(random.nextLong());
            Tensor q = Problems.random(rnd, dtypes[x], Layout.BSHD, 1, 4, tokens, dims[x], 2.0);
            Tensor k = Problems.random(rnd, dtypes[x], Layout.BSHD, 1, 4, tokens, dims[x], 2.0);
            Tensor v = Problems.random(rnd, dtypes[x], Layout.BSHD, 1, 4, tokens, dims[x], 1.0);
            double[][][] ref = VllmReference.refMultiQueryKvAttention(cuSeqLens, VllmReference.tokens(q),
                    VllmReference.tokens(k), VllmReference.tokens(v), 1.0 / Math.sqrt(dims[x]));
            CudaDevice dev = BACKEND.device();
            try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
                 Tensor dv = CudaTensors.upload(dev, v);
                 Tensor out = Attention.forward(dq, dk, dv, RaggedBatch.packed(cuSeqLens, cuSeqLens), Dense.INSTANCE,
                         Options.causalMask().withOutputDType(DType.F32))) {
                assertTrue(!out.isHost(), "computed on the device");
                double[][][] got = VllmReference.tokens(out.toHost());
                double worst = 0;
                double largest = 0;
                for (int t = 0; t < tokens; t++) {
                    for (int h = 0; h < 4; h++) {
                        for (int d = 0; d < dims[x]; d++) {
                            worst = Math.max(worst, Math.abs(got[t][h][d] - ref[t][h][d]));
                            largest = Math.max(largest, Math.abs(ref[t][h][d]));
                        }
                    }
                }
                String what = dtypes[x] + " head size " + dims[x] + ", " + CudaBackend.lastKernel();
                assertTrue(worst <= Tolerance.output(dtypes[x]) * largest,
                        what + ": error " + worst + " of " + largest);
            }
        }
    }
}
