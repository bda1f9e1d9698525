package dev.sparsa.conformance;

import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * The ragged batches of the conformance suite: the lengths {1, 63, 64, 65, 1000, 4097} (and an empty
 * sequence) mixed in one batch, packed or padded, with the pattern families they run.
 */
final class RaggedCases {
    private RaggedCases() {
    }

    /** Query lengths, one sequence each; the empty one contributes nothing. */
    static final int[] LENGTHS = {1, 63, 0, 64, 65, 1000, 4097};
    /** Key lengths: as long as the queries for most, longer (a cached past) or shorter for some. */
    static final int[] KEY_LENGTHS = {1, 100, 5, 64, 65, 1000, 4097};

    /** Dense and one or two patterns of each family: static, data-dependent, listed rows, gathered keys, log-weights. */
    static List<Pattern> patterns() {
        return List.of(Dense.INSTANCE,
                Patterns.aShape(128, 4),
                Patterns.randomBlockSparse(0.3, 3),
                Patterns.dilatedWindow(64, 3),
                Patterns.topKPerQueryBlock(64, 4, 32),
                Patterns.verticalSlashEstimate(64, 32, VsSemantics.EXACT),
                Patterns.sortLsh(4, 64, 16, 5));
    }

    /** The batch in a layout. */
    static RaggedBatch batch(RaggedBatch.Layout layout) {
        if (layout == RaggedBatch.Layout.PADDED) {
            return RaggedBatch.padded(LENGTHS, KEY_LENGTHS);
        }
        int[] cuQ = new int[LENGTHS.length + 1];
        int[] cuK = new int[LENGTHS.length + 1];
        for (int i = 0; i < LENGTHS.length; i++) {
            cuQ[i + 1] = cuQ[i] + LENGTHS[i];
            cuK[i + 1] = cuK[i] + KEY_LENGTHS[i];
        }
        return RaggedBatch.packed(cuQ, cuK);
    }

    /** Q, K, V holding the batch: packed tokens (BSHD of batch 1) or padded entries (BHSD) whose padding is NaN. */
    static Problems.Qkv inputs(long seed, RaggedBatch batch, int qHeads, int kvHeads, int dim, DType dtype) {
        SplittableRandom rnd = new SplittableRandom(seed);
        boolean packed = batch.layout() == RaggedBatch.Layout.PACKED;
        int b = packed ? 1 : batch.sequences();
        int nq = packed ? batch.totalQueries() : batch.maxQueryLength();
        int nk = packed ? batch.totalKeys() : batch.maxKeyLength();
        Layout layout = packed ? Layout.BSHD : Layout.BHSD;
        Tensor q = Problems.random(rnd, dtype, layout, b, qHeads, nq, dim, 2.0);
        Tensor k = Problems.random(rnd, dtype, layout, b, kvHeads, nk, dim, 2.0);
        Tensor v = Problems.random(rnd, dtype, layout, b, kvHeads, nk, dim, 1.0);
        if (!packed) {
            // padding is garbage by contract: NaN there proves no kernel reads it
            for (int i = 0; i < batch.sequences(); i++) {
                for (int h = 0; h < qHeads; h++) {
                    for (int s = batch.queryLength(i); s < nq; s++) {
                        q.fillRow(i, h, s, Float.NaN);
                    }
                }
                for (int h = 0; h < kvHeads; h++) {
                    for (int s = batch.keyLength(i); s < nk; s++) {
                        k.fillRow(i, h, s, Float.NaN);
                        v.fillRow(i, h, s, Float.NaN);
                    }
                }
            }
        }
        return new Problems.Qkv(q, k, v);
    }

    /** Rows of a sequence the oracle checks: all of a short one; the ends and a spread of a longer one. */
    static int[] rows(int n) {
        if (n <= 128) {
            return IntStream.range(0, n).toArray();
        }
        return IntStream.concat(IntStream.concat(IntStream.range(0, 32), IntStream.range(n - 32, n)),
                IntStream.range(0, 32).map(i -> 32 + (int) ((long) i * (n - 64) / 32))).distinct().sorted().toArray();
    }
}
