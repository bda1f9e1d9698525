package dev.sparsa.cpu;

import java.util.Arrays;

/**
 * The work items of an unsplit decode batch on a paged pool read whole pages: for each sequence, how many of
 * its KV heads one item takes. A sequence an item reads every head's rows of each page in one stream; cutting a
 * sequence into groups of heads shares the batch out more evenly over the workers, at the cost of reads that
 * are no longer whole pages. The rule weighs the two by the busiest worker's costed time.
 *
 * <p>Candidates: a sequence an item (whole pages); the longest {@code m} sequences an item and the others cut
 * into {@code k} groups of heads ({@code k} = 2, 4, … dividing the KV heads, at most half of them; {@code m}
 * from {@code batch − 1} down to {@code batch − workers}, at most {@value #MIXES} values, and {@code m = 0});
 * and an item per head. Each item's keys × heads are costed at 1 for whole pages, {@link
 * #HEAD_MAJOR_GROUP_COST} or {@link #TOKEN_MAJOR_GROUP_COST} for a group (HND or NHD pools) and {@link
 * #HEAD_ITEM_COST} for a head alone; the items are dealt largest first, each to the least loaded of the
 * workers ({@link ItemLoads}); the candidate whose busiest worker takes least wins, ties to fewer items.
 * Whole pages win without a search where their busiest worker takes within 1/16 of an even share (no
 * grouping could gain more), and a batch of fewer sequences than workers runs a head an item (halves of the
 * heads of a single short sequence measured no faster).
 */
final class HeadGrouping {
    /**
     * The time of items of a group of KV heads on an HND pool (each reading its heads' slice of every page)
     * against items reading whole pages, per key. Measured at 6 × 4096 keys on 2 cores, halves of the heads
     * against whole pages: f32 1.00–1.05, bf16 1.18 (docs/PERFORMANCE.md, "Whole pages for mid-size batches,
     * and NHD pools").
     */
    static final double HEAD_MAJOR_GROUP_COST = 1.125;
    /**
     * The same on an NHD pool, where a group's rows are a stretch of every token's rows: 1.19 for f32 and
     * bf16 at 6 × 4096.
     */
    static final double TOKEN_MAJOR_GROUP_COST = 1.25;
    /**
     * The time of an item per (sequence, KV head) on a paged pool against whole pages, per key: 1.17–1.38
     * measured on HND pools, 1.85 on NHD ones, at 16 × 2048 and 6 × 4096 keys.
     */
    static final double HEAD_ITEM_COST = 1.25;
    /** The most counts of whole sequences next to groups that {@link #choose} weighs (bounds its work). */
    static final int MIXES = 16;

    private HeadGrouping() {
    }

    /**
     * The KV heads of each item, by sequence ({@code heads}, or {@code heads / k} for a sequence cut into
     * {@code k} groups), or null for an item per (sequence, KV head).
     *
     * @param keyCounts      each sequence's keys (the same for every KV head of a sequence)
     * @param heads          KV heads, at least 1
     * @param workers        the workers the items are dealt to, at least 1
     * @param headMajorPages whether the pool is HND (a head's rows of a page in one stretch) rather than NHD
     */
    static int[] choose(long[] keyCounts, int heads, int workers, boolean headMajorPages) {
        int batch = keyCounts.length;
        if (batch < workers) {
            return null;
        }
        // longest first, ties in sequence order: (keys, −b) packed, sorted ascending, read from the end
        long[] packed = new long[batch];
        long total = 0;
        for (int b = 0; b < batch; b++) {
            packed[b] = keyCounts[b] << 32 | (0xFFFFFFFFL - b);
            total += keyCounts[b] * heads;
        }
        Arrays.sort(packed);
        long[] keys = new long[batch];
        int[] order = new int[batch];
        for (int i = 0; i < batch; i++) {
            long p = packed[batch - 1 - i];
            keys[i] = p >>> 32;
            order[i] = (int) (0xFFFFFFFFL - (p & 0xFFFFFFFFL));
        }
        ItemLoads loads = new ItemLoads(workers);
        double least = loads.busiest(keys, batch, heads, 1, 1, Double.POSITIVE_INFINITY);
        int bestWhole = batch;
        int bestGroups = 1;
        if (least * workers > total * (1 + 1 / 16.0)) {
            double groupCost = headMajorPages ? HEAD_MAJOR_GROUP_COST : TOKEN_MAJOR_GROUP_COST;
            int lowest = Math.max(1, Math.max(batch - workers, batch - MIXES));
            for (int k = 2; k <= heads / 2 && heads % k == 0; k *= 2) {
                // m: the longest sequences whole, the others in groups
                for (int m = batch - 1; m >= 0; m = m > lowest ? m - 1 : m > 0 ? 0 : -1) {
                    double t = loads.busiest(keys, m, heads, k, groupCost, least);
                    long items = m + (long) (batch - m) * k;
                    if (t < least || t == least && items < bestWhole + (long) (batch - bestWhole) * bestGroups) {
                        least = t;
                        bestWhole = m;
                        bestGroups = k;
                    }
                }
            }
            if (heads > 1 && loads.busiest(keys, 0, heads, heads, HEAD_ITEM_COST, least) < least) {
                return null;
            }
        }
        int[] perSequence = new int[batch];
        for (int i = 0; i < batch; i++) {
            perSequence[order[i]] = i < bestWhole ? heads : heads / bestGroups;
        }
        return perSequence;
    }

    /**
     * The busiest worker's costed keys × heads when items are dealt largest first to the least loaded. The loads
     * are a min-heap (the least loaded at its root), so a deal costs O(log workers), not O(workers), and a deal
     * stops once it passes the best so far: for 128 workers and 512 ragged sequences the search took 0.41 ms
     * instead of 2.1 ms (docs/PERFORMANCE.md, "The grouping search on many cores"). The busiest load is the same
     * whichever of equally loaded workers takes an item.
     */
    static final class ItemLoads {
        private final double[] heap;

        ItemLoads(int workers) {
            this.heap = new double[workers];
        }

        /**
         * Sequences of {@code keys} (longest first): the first {@code whole} an item of every head costed at 1,
         * the others {@code k} items of {@code heads / k} heads costed at {@code cost} each key. Stops once a
         * worker's load passes {@code cutoff}, returning that load (the deal cannot beat a cutoff it passed).
         */
        double busiest(long[] keys, int whole, int heads, int k, double cost, double cutoff) {
            Arrays.fill(heap, 0);
            int n = heap.length;
            // items largest first: whole sequences and groups, each list longest first, merged by size
            int i = 0;
            int j = whole;
            int left = k;
            double most = 0;
            while (i < whole || j < keys.length) {
                double group = j < keys.length ? keys[j] * (double) (heads / k) * cost : 0;
                boolean takeWhole = i < whole && (j >= keys.length || keys[i] * (double) heads >= group);
                double size = takeWhole ? keys[i] * (double) heads : group;
                if (takeWhole) {
                    i++;
                } else if (--left == 0) {
                    j++;
                    left = k;
                }
                double load = heap[0] + size;
                most = Math.max(most, load);
                if (most > cutoff) {
                    return most;
                }
                // the root's new load sifts down to its place
                int at = 0;
                for (int c = 1; c < n; c = 2 * at + 1) {
                    if (c + 1 < n && heap[c + 1] < heap[c]) {
                        c++;
                    }
                    if (heap[c] >= load) {
                        break;
                    }
                    heap[at] = heap[c];
                    at = c;
                }
                heap[at] = load;
            }
            return most;
        }
    }

}
