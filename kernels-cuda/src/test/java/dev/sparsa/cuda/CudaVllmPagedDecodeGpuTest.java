package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.VllmPagedReference;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Paged decode on the GPU against vLLM's reference for its paged-attention kernels, ported ({@link
 * VllmPagedReference}): page pools in device memory, block tables drawn as vLLM's test draws them
 * (blocks repeated within and across sequences), f32 on the CUDA-core kernel and bf16 on the
 * tensor-core one, head dims 64 and 128, blocks of 16 and 32 tokens, MHA and GQA.
 */
@Tag("gpu")
class CudaVllmPagedDecodeGpuTest {
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
                        VllmPagedReference.Draw d = VllmPagedReference.draw(random, dtype, numSeqs, heads[0], heads[1],
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
                                double err = VllmPagedReference.relativeError(out.toHost(), VllmPagedReference.expected(d));
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
}
