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
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.VllmReference;
import java.util.Random;
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
            VllmReference.Varlen d = VllmReference.drawVarlen(random, dtypes[x], 6, 4, dims[x], 300);
            CudaDevice dev = BACKEND.device();
            try (Tensor dq = CudaTensors.upload(dev, d.q()); Tensor dk = CudaTensors.upload(dev, d.k());
                 Tensor dv = CudaTensors.upload(dev, d.v());
                 Tensor out = Attention.forward(dq, dk, dv, RaggedBatch.packed(d.cuSeqLens(), d.cuSeqLens()),
                         Dense.INSTANCE, Options.causalMask().withOutputDType(DType.F32))) {
                assertTrue(!out.isHost(), "computed on the device");
                double err = VllmReference.relativeError(VllmReference.tokens(out.toHost()), VllmReference.expected(d));
                String what = dtypes[x] + " head size " + dims[x] + ", " + CudaBackend.lastKernel();
                assertTrue(err <= Tolerance.output(dtypes[x]), what + ": relative error " + err);
            }
        }
    }
}
