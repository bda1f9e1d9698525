package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Paged decode against vLLM's reference for its paged-attention kernels, ported: the reference reads
 * token {@code j} of a sequence from block {@code block_table[j // block_size]}, offset {@code j %
 * block_size}, of vLLM's own cache layout, so the test converts Sparsa's page pool into that layout
 * (the copy a vLLM user's pool would need the other way round) and compares outputs. Block tables are
 * drawn as vLLM's test draws them: any block, for every entry, blocks repeated within and across
 * sequences. Head dims 32, 80 and 128, blocks of 16 and 32 tokens, MHA and GQA, as in its parameters.
 */
class VllmPagedDecodePortTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    // ---- Ported from github.com/vllm-project/vllm, tests/kernels/attention/test_attention.py, commit
    // cdfaee716fe64fb97a005fe8dba3e4cbdea31e88: ref_masked_attention and ref_single_query_cached_kv_attention
    // (no ALiBi), in double. keyCache is [num_blocks, num_kv_heads, head_size / x, block_size, x],
    // valueCache [num_blocks, num_kv_heads, head_size, block_size]; query [num_seqs, num_query_heads, head_size].
    private static double[][][] refSingleQueryCachedKvAttention(double[][][] query, int numQueriesPerKv,
                                                                double[][][][][] keyCache, double[][][][] valueCache,
                                                                int[][] blockTables, int[] seqLens, double scale) {
        int numQueryHeads = query[0].length;
        int numKvHeads = valueCache[0].length;
        int headSize = valueCache[0][0].length;
        int blockSize = valueCache[0][0][0].length;
        int x = keyCache[0][0][0][0].length;
        double[][][] output = new double[query.length][numQueryHeads][headSize];
        for (int i = 0; i < query.length; i++) {
            int seqLen = seqLens[i];
            double[][][] keys = new double[seqLen][numKvHeads][headSize];
            double[][][] values = new double[seqLen][numKvHeads][headSize];
            for (int j = 0; j < seqLen; j++) {
                int blockNumber = blockTables[i][j / blockSize];
                int blockOffset = j % blockSize;
                for (int h = 0; h < numKvHeads; h++) {
                    for (int d = 0; d < headSize; d++) {
                        // key_cache[block_number, :, :, block_offset, :].reshape(num_kv_heads, head_size)
                        keys[j][h][d] = keyCache[blockNumber][h][d / x][blockOffset][d % x];
                        // value_cache[block_number, :, :, block_offset]
                        values[j][h][d] = valueCache[blockNumber][h][d][blockOffset];
                    }
                }
            }
            // repeat_interleave(keys, num_queries_per_kv, dim=1): query head qh reads kv head qh / num_queries_per_kv
            for (int qh = 0; qh < numQueryHeads; qh++) {
                int h = qh / numQueriesPerKv;
                // ref_masked_attention: softmax(scale * q·k) @ v
                double[] w = new double[seqLen];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < seqLen; j++) {
                    double s = 0;
                    for (int d = 0; d < headSize; d++) {
                        s += query[i][qh][d] * keys[j][h][d];
                    }
                    w[j] = scale * s;
                    max = Math.max(max, w[j]);
                }
                double sum = 0;
                for (int j = 0; j < seqLen; j++) {
                    w[j] = Math.exp(w[j] - max);
                    sum += w[j];
                }
                for (int j = 0; j < seqLen; j++) {
                    for (int d = 0; d < headSize; d++) {
                        output[i][qh][d] += w[j] / sum * values[j][h][d];
                    }
                }
            }
        }
        return output;
    }

    @Test
    void pagedDecodeGivesVllmsReferenceOutputs() {
        int numBlocks = 97;
        int numSeqs = 5;
        int maxSeqLen = 300;
        Random random = new Random(120716);
        for (int[] heads : new int[][] {{8, 8}, {16, 4}}) {
            for (int headSize : new int[] {32, 80, 128}) {
                for (int blockSize : new int[] {16, 32}) {
                    int numKvHeads = heads[1];
                    SplittableRandom rnd = new SplittableRandom(random.nextLong());
                    PagedKvCache cache = PagedKvCache.allocate(DType.F32, numSeqs, numKvHeads, headSize, headSize,
                            blockSize, numBlocks, false);
                    Tensor.copy(pool(rnd, numBlocks, numKvHeads, blockSize, headSize), cache.keyPages());
                    Tensor.copy(pool(rnd, numBlocks, numKvHeads, blockSize, headSize), cache.valuePages());
                    // seq_lens = [random.randint(1, MAX_SEQ_LEN) ...]; seq_lens[-1] = MAX_SEQ_LEN; block tables of
                    // random.randint(0, NUM_BLOCKS - 1) for each of max_num_blocks_per_seq entries
                    int[] seqLens = new int[numSeqs];
                    int[][] blockTables = new int[numSeqs][(maxSeqLen + blockSize - 1) / blockSize];
                    for (int i = 0; i < numSeqs; i++) {
                        seqLens[i] = i == numSeqs - 1 ? maxSeqLen : 1 + random.nextInt(maxSeqLen);
                        for (int e = 0; e < blockTables[i].length; e++) {
                            blockTables[i][e] = random.nextInt(numBlocks);
                        }
                        cache.setBlockTable(i, blockTables[i], seqLens[i]);
                    }
                    Tensor q = Problems.random(rnd, DType.F32, Layout.BHSD, numSeqs, heads[0], 1, headSize, 2.0);

                    double[][][] ref = refSingleQueryCachedKvAttention(query(q), heads[0] / numKvHeads,
                            vllmKeyCache(cache.keyPages(), 16 / Float.BYTES), vllmValueCache(cache.valuePages()),
                            blockTables, seqLens, 1.0 / Math.sqrt(headSize));
                    Tensor out = DecodeFixtures.decode(CPU, q, cache, null, DecodeOptions.defaults(), DType.F32).out();
                    double worst = 0;
                    double largest = 0;
                    for (int i = 0; i < numSeqs; i++) {
                        for (int h = 0; h < heads[0]; h++) {
                            for (int d = 0; d < headSize; d++) {
                                worst = Math.max(worst, Math.abs(out.get(i, h, 0, d) - ref[i][h][d]));
                                largest = Math.max(largest, Math.abs(ref[i][h][d]));
                            }
                        }
                    }
                    assertTrue(worst <= DecodeFixtures.tolerance(DType.F32) * largest, "heads " + heads[0] + "/"
                            + numKvHeads + " head size " + headSize + " block size " + blockSize + ": error " + worst);
                }
            }
        }
    }

    /** A pool of random rows {@code [blocks, kvHeads, blockSize, headSize]}. */
    private static Tensor pool(SplittableRandom rnd, int blocks, int kvHeads, int blockSize, int headSize) {
        return Problems.random(rnd, DType.F32, Layout.BHSD, blocks, kvHeads, blockSize, headSize, 1.0);
    }

    /** Q {@code [num_seqs, heads, 1, head_size]} as vLLM's query {@code [num_seqs, heads, head_size]}. */
    private static double[][][] query(Tensor q) {
        double[][][] r = new double[q.batch()][q.heads()][q.dim()];
        for (int i = 0; i < q.batch(); i++) {
            for (int h = 0; h < q.heads(); h++) {
                for (int d = 0; d < q.dim(); d++) {
                    r[i][h][d] = q.get(i, h, 0, d);
                }
            }
        }
        return r;
    }

    /** Sparsa's K pool {@code [pages, kvHeads, pageSize, headDim]} in vLLM's key layout, groups of {@code x}. */
    private static double[][][][][] vllmKeyCache(Tensor kPages, int x) {
        int headSize = kPages.dim();
        double[][][][][] c = new double[kPages.batch()][kPages.heads()][headSize / x][kPages.seqLen()][x];
        for (int p = 0; p < kPages.batch(); p++) {
            for (int h = 0; h < kPages.heads(); h++) {
                for (int s = 0; s < kPages.seqLen(); s++) {
                    for (int d = 0; d < headSize; d++) {
                        c[p][h][d / x][s][d % x] = kPages.get(p, h, s, d);
                    }
                }
            }
        }
        return c;
    }

    /** Sparsa's V pool {@code [pages, kvHeads, pageSize, headDim]} in vLLM's value layout. */
    private static double[][][][] vllmValueCache(Tensor vPages) {
        double[][][][] c = new double[vPages.batch()][vPages.heads()][vPages.dim()][vPages.seqLen()];
        for (int p = 0; p < vPages.batch(); p++) {
            for (int h = 0; h < vPages.heads(); h++) {
                for (int s = 0; s < vPages.seqLen(); s++) {
                    for (int d = 0; d < vPages.dim(); d++) {
                        c[p][h][d][s] = vPages.get(p, h, s, d);
                    }
                }
            }
        }
        return c;
    }
}
