package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.VllmReference;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Paged decode against vLLM's reference for its paged-attention kernels, ported ({@link
 * VllmReference}): the reference reads token {@code j} of a sequence from block {@code
 * block_table[j // block_size]}, offset {@code j % block_size}, of vLLM's own cache layout, into which
 * the test copies Sparsa's page pool (the copy a vLLM user's pool would need the other way round).
 * Block tables are drawn as vLLM's test draws them, blocks repeated within and across sequences; head
 * dims 32, 80 and 128, blocks of 16 and 32 tokens, MHA and GQA, as in its parameters.
 */
class VllmPagedDecodePortTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    @Test
    void pagedDecodeGivesVllmsReferenceOutputs() {
        int numSeqs = 5;
        Random random = new Random(120716);
        for (int[] heads : new int[][] {{8, 8}, {16, 4}}) {
            for (int headSize : new int[] {32, 80, 128}) {
                for (int blockSize : new int[] {16, 32}) {
                    VllmReference.Draw d = VllmReference.draw(random, DType.F32, numSeqs, heads[0], heads[1],
                            headSize, blockSize, 97, 300);
                    PagedKvCache cache = PagedKvCache.allocate(DType.F32, numSeqs, heads[1], headSize, headSize,
                            blockSize, 97, false);
                    Tensor.copy(d.kPool(), cache.keyPages());
                    Tensor.copy(d.vPool(), cache.valuePages());
                    for (int i = 0; i < numSeqs; i++) {
                        cache.setBlockTable(i, d.blockTables()[i], d.seqLens()[i]);
                    }
                    Tensor out = DecodeFixtures.decode(CPU, d.q(), cache, null, DecodeOptions.defaults(), DType.F32)
                            .out();
                    double err = VllmReference.relativeError(out, VllmReference.expected(d));
                    assertTrue(err <= DecodeFixtures.tolerance(DType.F32), "heads " + heads[0] + "/" + heads[1]
                            + " head size " + headSize + " block size " + blockSize + ": relative error " + err);
                }
            }
        }
    }
}
