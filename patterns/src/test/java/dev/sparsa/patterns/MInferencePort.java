package dev.sparsa.patterns;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Ports of MInference's own functions, line by line, for tests that compare Sparsa's patterns with
 * them. Source: github.com/microsoft/MInference at commit fb56c917f618e8645f1cfc37535afd7424d78f0d:
 * <ul>
 *   <li>{@code minference/ops/block_sparse_flash_attention.py}: {@code block_sparse_attention},
 *       {@code _build_block_index} and {@code _triton_block_sparse_attn_fwd_kernel};
 *   <li>{@code csrc/vertical_slash_index.cu}: {@code convert_vertical_slash_indexes_kernel} and
 *       {@code save_blocks}; {@code minference/ops/pit_sparse_flash_attention_v2.py}: {@code
 *       vertical_slash_sparse_attention} and {@code _triton_mixed_sparse_attn_fwd_kernel}.
 * </ul>
 * Each port returns, per query row, which keys the kernel lets into that row's softmax.
 */
final class MInferencePort {
    private MInferencePort() {
    }

    /** A block selection with the smallest gap between a chosen and a rejected score (ties are the caller's to skip). */
    record BlockIndex(int[][] blocks, double[] gap) {
    }

    /**
     * {@code _build_block_index(query, key, top_k, 64, 64)} after {@code block_sparse_attention}'s
     * zero padding ({@code pad = 64 − (N & 63)}, a whole block when N is a multiple of 64), for one
     * head: {@code q}, {@code k} are {@code [n · d]}. torch.topk's order among equal scores is
     * unspecified: here ties go to the lower index and the gap says how close the call was.
     */
    static BlockIndex buildBlockIndex(float[] q, float[] k, int n, int d, int topK) {
        int bs = 64;
        int pad = bs - (n & (bs - 1));
        int context = n + pad;
        int blocks = context / bs;
        double[][] qp = pool(q, n, d, blocks, bs);
        double[][] kp = pool(k, n, d, blocks, bs);
        int kk = Math.min(topK, context / bs);
        int[][] index = new int[blocks][];
        double[] gap = new double[blocks];
        for (int m = 0; m < blocks; m++) {
            double[] p = new double[blocks];
            for (int j = 0; j < blocks; j++) {
                double s = 0;
                for (int x = 0; x < d; x++) {
                    s += qp[m][x] * kp[j][x];
                }
                // p_pool.where(arange_M >= arange_N, -inf)
                p[j] = (long) m * bs >= (long) j * bs ? s : Double.NEGATIVE_INFINITY;
            }
            Integer[] order = IntStream.range(0, blocks).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.<Integer>comparingDouble(j -> -p[j]).thenComparingInt(j -> j));
            int[] top = new int[kk];
            for (int i = 0; i < kk; i++) {
                top[i] = order[i];
            }
            Arrays.sort(top); // .sort(dim=-1).values
            index[m] = top;
            gap[m] = kk < blocks && p[order[kk - 1]] != Double.NEGATIVE_INFINITY
                    ? p[order[kk - 1]] - p[order[kk]] : Double.POSITIVE_INFINITY;
        }
        return new BlockIndex(index, gap);
    }

    /** Block means of the zero-padded rows: the sum over each 64-row block divided by 64. */
    private static double[][] pool(float[] x, int n, int d, int blocks, int bs) {
        double[][] out = new double[blocks][d];
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < d; c++) {
                out[r / bs][c] += x[r * d + c];
            }
        }
        for (double[] row : out) {
            for (int c = 0; c < d; c++) {
                row[c] /= bs;
            }
        }
        return out;
    }

    /**
     * What {@code _triton_block_sparse_attn_fwd_kernel} admits for row {@code r} (of {@code n}):
     * the first {@code min((m + 1)·64 / 64, MAX_BLOCKS_PRE_ROW)} listed blocks of its query block
     * {@code m}, each key {@code cols <= offs_m}.
     */
    static boolean blockSparseAdmits(BlockIndex index, int r, int key) {
        int m = r / 64;
        int[] blocks = index.blocks()[m];
        int count = Math.min(m + 1, blocks.length);
        for (int i = 0; i < count; i++) {
            int start = blocks[i] * 64;
            if (key >= start && key < start + 64) {
                return key <= r;
            }
        }
        return false;
    }

    /** One query block's output of {@code convert_vertical_slash_indexes}. */
    record VsIndex(int[] blockOffsets, int[] columns) {
    }

    /**
     * {@code convert_vertical_slash_indexes_kernel} for the query block starting at {@code startM}
     * (the CUDA kernel's {@code start_m}), with {@code vertical} sorted ascending and {@code slash}
     * (diagonal offsets) sorted descending, as {@code vertical_slash_sparse_attention} passes them.
     * The CUDA code reads past the slash list when no offset is below {@code end_m} (and past an
     * empty column list): here no such offset gives {@code null}. After the last column the CUDA
     * code sets {@code v_idx = end_m + BLOCK_SIZE_M}, which lies past every range when the offsets
     * are {@code >= 0} (MInference's only case); here {@code Integer.MAX_VALUE}, the same there, also
     * ends the loop for negative offsets, which would not end in the CUDA code.
     */
    static VsIndex convertVerticalSlashIndexes(int[] vertical, int[] slash, int startM, int blockM, int blockN) {
        int endM = startM + blockM;
        int nnzV = vertical.length;
        int nnzS = slash.length;
        int[] blockOffset = new int[Math.max(1, nnzS) * (4 * blockM / blockN + 4) + 64];
        int[] columnIndex = new int[nnzV];
        int tmpColCnt = 0;
        int[] tmpBlkCnt = {0};
        int s = 0;
        int v = 0;
        if (nnzS == 0) {
            return null;
        }
        int afterLastColumn = Integer.MAX_VALUE;
        int vIdx = nnzV > 0 ? vertical[v++] : afterLastColumn;
        int sIdx = slash[s++];
        while (sIdx >= endM) {
            if (s == nnzS) {
                return null;
            }
            sIdx = slash[s++];
        }
        sIdx = Math.max(endM - sIdx, blockM);
        int rangeStart = sIdx - blockM;
        int rangeEnd = sIdx;
        while (true) {
            if (vIdx < rangeEnd) {
                if (vIdx < rangeStart) {
                    columnIndex[tmpColCnt++] = vIdx;
                }
                if (v < nnzV) {
                    vIdx = vertical[v++];
                } else {
                    vIdx = afterLastColumn;
                }
            } else {
                if (s < nnzS) {
                    sIdx = Math.max(endM - slash[s++], blockM);
                } else {
                    blockOffset = saveBlocks(blockOffset, rangeStart, rangeEnd, blockN, tmpBlkCnt);
                    break;
                }
                if (sIdx > rangeEnd + blockM) {
                    blockOffset = saveBlocks(blockOffset, rangeStart, rangeEnd, blockN, tmpBlkCnt);
                    rangeStart = sIdx - blockM;
                    rangeEnd = sIdx;
                } else if (sIdx > rangeEnd) {
                    rangeEnd += blockM;
                }
            }
        }
        return new VsIndex(Arrays.copyOf(blockOffset, tmpBlkCnt[0]), Arrays.copyOf(columnIndex, tmpColCnt));
    }

    private static int[] saveBlocks(int[] blockOffset, int rangeStart, int rangeEnd, int blockSize, int[] blockCount) {
        for (int idx = rangeStart; idx < rangeEnd; idx += blockSize) {
            if (blockCount[0] == blockOffset.length) {
                blockOffset = Arrays.copyOf(blockOffset, blockOffset.length * 2);
            }
            blockOffset[blockCount[0]++] = idx;
        }
        return blockOffset;
    }

    /**
     * What {@code _triton_mixed_sparse_attn_fwd_kernel} admits for a row at position {@code pos}
     * (its {@code offs_m}) of a sequence of {@code seqlen} keys: a key of a listed block under
     * {@code cols <= offs_m} and {@code cols < seqlen}; a listed column under {@code n_mask} only.
     */
    static boolean verticalSlashAdmits(VsIndex index, int pos, int key, int seqlen, int blockN) {
        for (int start : index.blockOffsets()) {
            if (key >= start && key < start + blockN && key <= pos && key < seqlen) {
                return true;
            }
        }
        for (int c : index.columns()) {
            if (c == key) {
                return true;
            }
        }
        return false;
    }
}
