package dev.sparsa.bench;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.SplittableRandom;

/**
 * Random block-sparse plans for the benchmarks (the test-jar's generator is not on the bench's
 * compile path): for each query head its own layout that keeps exactly {@code round(density ·
 * admissible blocks)} of the (tile, key-block) pairs, drawn uniformly, classified by the context's
 * base predicate (full, or partial on the causal diagonal).
 */
public final class BlockSparsePlans {
    private BlockSparsePlans() {
    }

    public static SparsePlan random(long seed, PlanContext ctx, double density) {
        if (!(density > 0 && density <= 1)) {
            throw new IllegalArgumentException("density: must be in (0, 1], got " + density);
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        SparsePlan.Builder pb = SparsePlan.builder(ctx).describe("random-block-sparse(" + density + ")");
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int tiles = ctx.queryTiles();
        int blocks = ctx.keyBlocks();
        for (int h = 0; h < ctx.shape().qHeads(); h++) {
            // candidate (tile, block) pairs that the base predicate does not rule out
            int[] candidates = new int[tiles * blocks];
            int n = 0;
            for (int t = 0; t < tiles; t++) {
                long lastRow = Math.min((long) (t + 1) * rows, ctx.queryLength()) - 1 + ctx.queryOffset();
                for (int b = 0; b < blocks; b++) {
                    if (!ctx.causal() || (long) b * cols <= lastRow) {
                        candidates[n++] = t * blocks + b;
                    }
                }
            }
            int keep = (int) Math.max(1, Math.round(density * n));
            for (int i = 0; i < keep; i++) {
                int j = i + rnd.nextInt(n - i);
                int x = candidates[i];
                candidates[i] = candidates[j];
                candidates[j] = x;
            }
            boolean[] chosen = new boolean[tiles * blocks];
            for (int i = 0; i < keep; i++) {
                chosen[candidates[i]] = true;
            }
            HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
            for (int t = 0; t < tiles; t++) {
                HeadLayoutBuilder.Tile tile = b.tile(t * rows, Math.min(rows, ctx.queryLength() - t * rows));
                for (int blk = 0; blk < blocks; blk++) {
                    if (chosen[t * blocks + blk]) {
                        tile.blockByPredicate(blk);
                    }
                }
                tile.end();
            }
            pb.head(h, b.build());
        }
        return pb.build();
    }
}
