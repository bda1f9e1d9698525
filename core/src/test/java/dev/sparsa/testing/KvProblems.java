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

    /**
     * Puts NaN, infinities and zeros into keys {@code [1, kvHeads, length, dim ≥ 14]} for tests of Quest's
     * rule on non-finite inputs, by page {@code p} of {@code pageSize} tokens: {@code p % 5 == 1} a NaN at
     * channel 3 (both of the page's bounds NaN), 2 a −∞ at channel 7, 3 a +∞ at channel 11; channel 13 is
     * made non-negative with a 0 in slot 4 on every page (its minimum 0), and all 0 where {@code p % 5 == 0}.
     * With {@link #questEdgeQueries}: {@code 0·(−∞)} and {@code ∞·0} make products NaN that a select by the
     * query's sign would not.
     */
    public static void questEdgeKeys(Tensor k, int pageSize) {
        for (int g = 0; g < k.heads(); g++) {
            for (int t = 0; t < k.seqLen(); t++) {
                int page = t / pageSize;
                int slot = t % pageSize;
                k.set(0, g, t, 13, page % 5 == 0 || slot == 4 ? 0f : Math.abs(k.get(0, g, t, 13)));
                switch (page % 5) {
                    case 1 -> k.set(0, g, t, 3, slot == 3 ? Float.NaN : k.get(0, g, t, 3));
                    case 2 -> k.set(0, g, t, 7, slot == 5 ? Float.NEGATIVE_INFINITY : k.get(0, g, t, 7));
                    case 3 -> k.set(0, g, t, 11, slot == 2 ? Float.POSITIVE_INFINITY : k.get(0, g, t, 11));
                    default -> { }
                }
            }
        }
    }

    /**
     * The query side of {@link #questEdgeKeys}, in every sequence of {@code q [batch, heads ≥ 6, 1, dim]}:
     * 0 at channel 7 of head 0, +∞ at channel 13 of head 5, and with {@code nan} a NaN at channel 20 of
     * head 2 (so that every page of head 2's KV group scores NaN).
     */
    public static void questEdgeQueries(Tensor q, boolean nan) {
        for (int b = 0; b < q.batch(); b++) {
            q.set(b, 0, 0, 7, 0f);
            q.set(b, 5, 0, 13, Float.POSITIVE_INFINITY);
            if (nan) {
                q.set(b, 2, 0, 20, Float.NaN);
            }
        }
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

    /** {@link Problems#e4m3Scales} for e4m3; null (and no draw) for the other types. */
    private static float[] scales(SplittableRandom rnd, DType dtype, int heads, double amplitude) {
        return dtype.isScaled() ? Problems.e4m3Scales(rnd, heads, amplitude) : null;
    }

    /** {@code t} under {@code scales} when they are given (an e4m3 view of the same codes), else {@code t}. */
    private static Tensor scaled(Tensor t, float[] scales) {
        return scales == null ? t : t.withScales(scales);
    }

    /** {@code f32}'s values in {@code dtype}: for e4m3 quantised under {@code scales}, else {@code f32} itself. */
    private static Tensor scaled(Tensor f32, DType dtype, float[] scales) {
        if (scales == null) {
            return f32;
        }
        Tensor t = Tensor.allocate(dtype, Layout.BHSD, f32.batch(), f32.heads(), f32.seqLen(), f32.dim()).withScales(scales);
        Tensor.convert(f32, t);
        return t;
    }

    /**
     * Caches holding {@code lengths[b]} random tokens per sequence (keys amplitude 2, values 1); e4m3
     * caches with one random scale per KV head, the rows quantised under it.
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
        // e4m3: one scale per KV head for the whole cache (as FP8 caches fix them), the rows quantised to it
        float[] kScales = scales(rnd, dtype, kvHeads, 2.0);
        float[] vScales = scales(rnd, dtype, kvHeads, 1.0);
        for (int b = 0; b < batch; b++) {
            keys[b] = scaled(Problems.random(rnd, dtype.isScaled() ? DType.F32 : dtype, Layout.BHSD, 1, kvHeads, lengths[b],
                    headDim, 2.0), dtype, kScales);
            values[b] = scaled(Problems.random(rnd, dtype.isScaled() ? DType.F32 : dtype, Layout.BHSD, 1, kvHeads,
                    lengths[b], valueDim, 1.0), dtype, vScales);
        }
        ContiguousKvCache contiguous = ContiguousKvCache.wrap(
                scaled(nans(dtype, Layout.BHSD, batch, kvHeads, max + 3, headDim), kScales),
                scaled(nans(dtype, Layout.BHSD, batch, kvHeads, max + 3, valueDim), vScales), new int[batch]);
        PageAllocator allocator = new PageAllocator(pages);
        PagedKvCache paged = PagedKvCache.wrap(scaled(nans(dtype, Layout.BHSD, pages, kvHeads, pageSize, headDim), kScales),
                scaled(nans(dtype, Layout.BHSD, pages, kvHeads, pageSize, valueDim), vScales),
                scaled(nans(dtype, Layout.BHSD, pages, kvHeads, 2, headDim), kScales), pageSize, batch, allocator);
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
