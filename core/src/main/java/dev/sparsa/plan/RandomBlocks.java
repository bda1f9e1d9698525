package dev.sparsa.plan;

/**
 * The one seeded random block-sparse selection: each causally admissible (query tile, key block)
 * pair is kept with probability {@code density}, decided by a hash of (seed, tile, block), so the
 * selection is reproducible, independent of the visiting order and of the thread that asks. The
 * random block-sparse pattern, the tests' random plans and the benchmarks all draw from it.
 */
public final class RandomBlocks {
    private RandomBlocks() {
    }

    /**
     * Whether (tile, block) is kept: a uniform draw in [0, 1) from a hash of (seed, tile, block),
     * below {@code density}.
     */
    public static boolean keeps(long seed, double density, int tile, int block) {
        long h = mix(seed ^ mix(0x9E3779B97F4A7C15L * (tile + 1)) ^ mix(0xC2B2AE3D27D4EB4FL * (block + 1)));
        double u = (h >>> 11) * 0x1.0p-53;
        return u < density;
    }

    /**
     * The layout of the selection in the context's geometry: contiguous tiles of {@code tileRows}
     * rows, each kept block up to the tile's last causally visible one classified by the context's
     * base predicate (full, or partial on the causal diagonal). Tiles are drawn by their absolute
     * index ({@link #absoluteTile}), so a chunk of rows planned with a query offset that is a
     * multiple of the tile height keeps the blocks a plan of all rows keeps for the same rows.
     *
     * @throws IllegalArgumentException if {@code density} is not in [0, 1]
     */
    public static HeadLayout layout(PlanContext ctx, double density, long seed) {
        if (!(density >= 0 && density <= 1)) {
            throw new IllegalArgumentException("density: must be in [0, 1], got " + density);
        }
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile tile = b.tile(start, count);
            int last = ctx.keyBlocks() - 1;
            if (ctx.causal()) {
                long lastKey = Math.min((long) ctx.keyLength() - 1, (long) start + count - 1 + ctx.queryOffset());
                last = lastKey < 0 ? -1 : (int) (lastKey / ctx.geometry().blockCols());
            }
            int absolute = absoluteTile(ctx, start);
            for (int j = 0; j <= last; j++) {
                if (keeps(seed, density, absolute, j)) {
                    tile.blockByPredicate(j);
                }
            }
            tile.end();
        }
        return b.build();
    }

    /**
     * The absolute index of the plan tile that starts at row {@code start}: {@code ⌊(start +
     * queryOffset) / tileRows⌋}, the tile of an un-offset plan over all rows when the offset is a
     * multiple of the tile height.
     */
    public static int absoluteTile(PlanContext ctx, int start) {
        return (int) Math.floorDiv((long) start + ctx.queryOffset(), ctx.geometry().tileRows());
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
