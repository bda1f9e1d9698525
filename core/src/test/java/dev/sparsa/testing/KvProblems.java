package dev.sparsa.testing;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.PageAllocator;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The same random keys and values in a contiguous and in a paged cache (shipped in sparsa-core's
 * test-jar). Every slot of both caches starts as NaN, so a kernel that reads past a sequence's length
 * or a page's last token shows it; tokens are appended in ragged chunks, sequences taking turns, so
 * the pages of a sequence are scattered over the pool between a few pages left unused.
 */
public final class KvProblems {
    private KvProblems() {
    }

    /** The two caches and, per sequence, its keys and values {@code [1, kvHeads, length, dim]}. */
    public record Caches(ContiguousKvCache contiguous, PagedKvCache paged, Tensor[] keys, Tensor[] values) {
    }

    /** A tensor of {@code dtype} filled with NaN. */
    public static Tensor nans(DType dtype, Layout layout, int a, int heads, int seq, int dim) {
        Tensor t = Tensor.allocate(dtype, layout, a, heads, seq, dim);
        for (int i = 0; i < a; i++) {
            for (int h = 0; h < heads; h++) {
                for (int s = 0; s < seq; s++) {
                    t.fillRow(i, h, s, Float.NaN);
                }
            }
        }
        return t;
    }

    /**
     * Caches holding {@code lengths[b]} random tokens per sequence (keys amplitude 2, values 1).
     *
     * @param pageSize    page size of the paged cache (which keeps page bounds)
     * @param appendChunk the largest number of tokens one append writes
     */
    public static Caches caches(long seed, DType dtype, int[] lengths, int kvHeads, int headDim, int valueDim,
                                int pageSize, int appendChunk) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int batch = lengths.length;
        int max = 1;
        int pages = 4;
        for (int l : lengths) {
            max = Math.max(max, l);
            pages += (l + pageSize - 1) / pageSize;
        }
        Tensor[] keys = new Tensor[batch];
        Tensor[] values = new Tensor[batch];
        for (int b = 0; b < batch; b++) {
            keys[b] = Problems.random(rnd, dtype, Layout.BHSD, 1, kvHeads, lengths[b], headDim, 2.0);
            values[b] = Problems.random(rnd, dtype, Layout.BHSD, 1, kvHeads, lengths[b], valueDim, 1.0);
        }
        ContiguousKvCache contiguous = ContiguousKvCache.wrap(nans(dtype, Layout.BHSD, batch, kvHeads, max + 3, headDim),
                nans(dtype, Layout.BHSD, batch, kvHeads, max + 3, valueDim), new int[batch]);
        PageAllocator allocator = new PageAllocator(pages);
        PagedKvCache paged = PagedKvCache.wrap(nans(dtype, Layout.BHSD, pages, kvHeads, pageSize, headDim),
                nans(dtype, Layout.BHSD, pages, kvHeads, pageSize, valueDim),
                nans(dtype, Layout.BHSD, pages, kvHeads, 2, headDim), pageSize, batch, allocator);
        int[] holes = new int[4];
        for (int i = 0; i < holes.length; i++) {
            holes[i] = allocator.allocate();
        }
        int[] done = new int[batch];
        boolean more = true;
        int turn = 0;
        while (more) {
            more = false;
            for (int b = 0; b < batch; b++) {
                if (done[b] < lengths[b]) {
                    int n = Math.min(lengths[b] - done[b], 1 + rnd.nextInt(appendChunk));
                    Tensor k = keys[b].narrowSeq(done[b], n);
                    Tensor v = values[b].narrowSeq(done[b], n);
                    contiguous.append(b, k, v);
                    paged.append(b, k, v);
                    done[b] += n;
                    more = true;
                }
            }
            if (turn++ == 1) {
                // pages freed after the first appends: later pages of a sequence land in the gaps
                for (int h : holes) {
                    allocator.free(h);
                }
            }
        }
        return new Caches(contiguous, paged, keys, values);
    }
}
