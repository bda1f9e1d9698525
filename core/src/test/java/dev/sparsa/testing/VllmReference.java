package dev.sparsa.testing;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * vLLM's references for its attention kernels, ported: the paged decode reference, with problems drawn
 * as vLLM's test draws them and the copies of a Sparsa page pool into vLLM's cache layouts (the
 * independent definition of how a block table is read), and the varlen prefill reference over
 * cumulative sequence lengths ({@code cu_seq_lens}). Host tensors.
 */
public final class VllmReference {
    private VllmReference() {
    }

    /**
     * A paged decode problem on the host: page pools {@code [numBlocks, kvHeads, blockSize, headSize]},
     * a block table and a length per sequence, and Q {@code [numSeqs, qHeads, 1, headSize]}.
     */
    public record Draw(Tensor kPool, Tensor vPool, int[][] blockTables, int[] seqLens, Tensor q) {
    }

    /**
     * A problem drawn as vLLM's test_paged_attention draws it: lengths {@code random.randint(1,
     * maxSeqLen)}, the last one {@code maxSeqLen}, and every entry of every block table any block
     * ({@code random.randint(0, numBlocks - 1)}), so blocks repeat within and across sequences.
     */
    public static Draw draw(Random random, DType dtype, int numSeqs, int qHeads, int kvHeads, int headSize,
                            int blockSize, int numBlocks, int maxSeqLen) {
        SplittableRandom rnd = new SplittableRandom(random.nextLong());
        Tensor k = Problems.random(rnd, dtype, Layout.BHSD, numBlocks, kvHeads, blockSize, headSize, 1.0);
        Tensor v = Problems.random(rnd, dtype, Layout.BHSD, numBlocks, kvHeads, blockSize, headSize, 1.0);
        int[] seqLens = new int[numSeqs];
        int[][] blockTables = new int[numSeqs][(maxSeqLen + blockSize - 1) / blockSize];
        for (int i = 0; i < numSeqs; i++) {
            seqLens[i] = i == numSeqs - 1 ? maxSeqLen : 1 + random.nextInt(maxSeqLen);
            for (int e = 0; e < blockTables[i].length; e++) {
                blockTables[i][e] = random.nextInt(numBlocks);
            }
        }
        Tensor q = Problems.random(rnd, dtype, Layout.BHSD, numSeqs, qHeads, 1, headSize, 2.0);
        return new Draw(k, v, blockTables, seqLens, q);
    }

    /** The port's outputs for a draw, {@code [numSeqs][qHeads][headSize]}, scale 1/√headSize. */
    public static double[][][] expected(Draw d) {
        int x = 16 / d.kPool().dtype().byteSize(); // vLLM's key groups: 16 bytes
        double scale = 1.0 / Math.sqrt(d.q().dim());
        return refSingleQueryCachedKvAttention(query(d.q()), d.q().heads() / d.kPool().heads(),
                keyCache(d.kPool(), x), valueCache(d.vPool()), d.blockTables(), d.seqLens(), scale);
    }

    /**
     * The largest difference of {@code out} ({@code [numSeqs, qHeads, 1, headSize]}) from {@code ref},
     * over the largest magnitude in {@code ref}.
     */
    public static double relativeError(Tensor out, double[][][] ref) {
        double[][][] got = new double[ref.length][][];
        for (int i = 0; i < ref.length; i++) {
            got[i] = new double[ref[i].length][ref[i][0].length];
            for (int h = 0; h < ref[i].length; h++) {
                for (int c = 0; c < ref[i][h].length; c++) {
                    got[i][h][c] = out.get(i, h, 0, c);
                }
            }
        }
        return relativeError(got, ref);
    }

    /** The largest difference of {@code got} from {@code ref}, over the largest magnitude in {@code ref}. */
    public static double relativeError(double[][][] got, double[][][] ref) {
        double worst = 0;
        double largest = 0;
        for (int i = 0; i < ref.length; i++) {
            for (int h = 0; h < ref[i].length; h++) {
                for (int c = 0; c < ref[i][h].length; c++) {
                    worst = Math.max(worst, Math.abs(got[i][h][c] - ref[i][h][c]));
                    largest = Math.max(largest, Math.abs(ref[i][h][c]));
                }
            }
        }
        return worst / largest;
    }

    /** A packed varlen problem: {@code cu_seq_lens} and Q, K, V {@code [1, heads, tokens, headSize]} (BSHD). */
    public record Varlen(int[] cuSeqLens, Tensor q, Tensor k, Tensor v) {
    }

    /** {@code numSeqs} sequences of 1 to {@code maxSeqLen} tokens each, packed, MHA. */
    public static Varlen drawVarlen(Random random, DType dtype, int numSeqs, int heads, int headSize, int maxSeqLen) {
        int[] cuSeqLens = new int[numSeqs + 1];
        for (int i = 0; i < numSeqs; i++) {
            cuSeqLens[i + 1] = cuSeqLens[i] + 1 + random.nextInt(maxSeqLen);
        }
        int tokens = cuSeqLens[numSeqs];
        SplittableRandom rnd = new SplittableRandom(random.nextLong());
        return new Varlen(cuSeqLens, Problems.random(rnd, dtype, Layout.BSHD, 1, heads, tokens, headSize, 2.0),
                Problems.random(rnd, dtype, Layout.BSHD, 1, heads, tokens, headSize, 2.0),
                Problems.random(rnd, dtype, Layout.BSHD, 1, heads, tokens, headSize, 1.0));
    }

    /** The port's outputs for a varlen draw, {@code [tokens][heads][headSize]}, scale 1/√headSize. */
    public static double[][][] expected(Varlen d) {
        return refMultiQueryKvAttention(d.cuSeqLens(), tokens(d.q()), tokens(d.k()), tokens(d.v()),
                1.0 / Math.sqrt(d.q().dim()));
    }

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
    private static double[][][][][] keyCache(Tensor kPages, int x) {
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
    private static double[][][][] valueCache(Tensor vPages) {
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

    /**
     * Ported from the same file and commit: ref_multi_query_kv_attention with ref_masked_attention and no
     * ALiBi, in double. Tokens {@code [cu_seq_lens[i], cu_seq_lens[i + 1])} are sequence {@code i}; each
     * attends causally to its own tokens (attn_mask = triu(ones, diagonal=1) * finfo.min, which leaves
     * those keys no weight). {@code query}, {@code key}, {@code value}: {@code [num_tokens, num_heads,
     * head_size]}; the result likewise.
     */
    private static double[][][] refMultiQueryKvAttention(int[] cuSeqLens, double[][][] query, double[][][] key,
                                                        double[][][] value, double scale) {
        int numHeads = query[0].length;
        int headSize = value[0][0].length;
        double[][][] out = new double[query.length][numHeads][headSize];
        for (int i = 0; i + 1 < cuSeqLens.length; i++) {
            int startIdx = cuSeqLens[i];
            int endIdx = cuSeqLens[i + 1];
            for (int h = 0; h < numHeads; h++) {
                for (int qi = startIdx; qi < endIdx; qi++) {
                    // attn_weights = scale * einsum("qhd,khd->hqk") + the mask, softmax over k
                    double[] w = new double[endIdx - startIdx];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int ki = startIdx; ki < endIdx; ki++) {
                        double s = 0;
                        for (int d = 0; d < query[qi][h].length; d++) {
                            s += query[qi][h][d] * key[ki][h][d];
                        }
                        w[ki - startIdx] = ki > qi ? Double.NEGATIVE_INFINITY : scale * s;
                        max = Math.max(max, w[ki - startIdx]);
                    }
                    double sum = 0;
                    for (int j = 0; j < w.length; j++) {
                        w[j] = Math.exp(w[j] - max);
                        sum += w[j];
                    }
                    for (int j = 0; j < w.length; j++) {
                        for (int d = 0; d < headSize; d++) {
                            out[qi][h][d] += w[j] / sum * value[startIdx + j][h][d];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** A packed tensor {@code [1, heads, tokens, dim]} (any layout) as {@code [tokens][heads][dim]} in double. */
    public static double[][][] tokens(Tensor t) {
        double[][][] r = new double[t.seqLen()][t.heads()][t.dim()];
        for (int s = 0; s < t.seqLen(); s++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int d = 0; d < t.dim(); d++) {
                    r[s][h][d] = t.get(0, h, s, d);
                }
            }
        }
        return r;
    }
}
