package dev.sparsa.cpu;

/**
 * One unit of parallel work: a run of consecutive query tiles {@code tile .. tileEnd−1} of {@code
 * heads} consecutive query heads that share one layout and one key/value head (stacked, so each K/V
 * chunk is loaded once for all of them), or, with {@code tile == ALL_TILES}, every tile of such a
 * slice in order (a layout whose rows appear in several tiles, merged through the LSE in a fixed
 * order).
 *
 * @param batch     batch index
 * @param firstHead first query head
 * @param heads     number of stacked query heads (1, or the GQA group size)
 * @param layout    index into the plan's layouts
 * @param tile      first tile index, or {@link #ALL_TILES}
 * @param tileEnd   one past the last tile of the run (unused with {@link #ALL_TILES})
 * @param cost      visited pairs, for largest-first scheduling
 */
record WorkItem(int batch, int firstHead, int heads, int layout, int tile, int tileEnd, long cost) {
    /** Marks an item that runs every tile of its slice in order. */
    static final int ALL_TILES = -1;
}
