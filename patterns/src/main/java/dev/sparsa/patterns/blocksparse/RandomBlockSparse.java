package dev.sparsa.patterns.blocksparse;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * A random block-sparse layout in the plan's own geometry: each causally admissible (query tile, key
 * block) pair is kept with probability {@code density}, decided by a hash of (seed, tile, block), so
 * the layout is reproducible and independent of the visiting order. Every head shares it.
 * The benchmarks' and the demo's synthetic sparsity.
 *
 * @throws IllegalArgumentException if {@code density} is not in [0, 1]
 */
public record RandomBlockSparse(double density, long seed) implements Pattern {
    public RandomBlockSparse {
        Checks.inRange("density", density, 0, 1);
    }

    @Override
    public String name() {
        return String.format("randomBlockSparse(%.3f, seed %d)", density, seed);
    }

    /** Whether (tile, block) is kept: a uniform draw from a hash of (seed, tile, block). */
    public boolean keeps(int tile, int block) {
        long h = mix(seed ^ mix(0x9E3779B97F4A7C15L * (tile + 1)) ^ mix(0xC2B2AE3D27D4EB4FL * (block + 1)));
        double u = (h >>> 11) * 0x1.0p-53;
        return u < density;
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        for (int t = 0, start = 0; start < ctx.queryLength(); t++, start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile tile = b.tile(start, count);
            int last = Plans.lastVisibleBlock(ctx, start, count);
            for (int j = 0; j <= last; j++) {
                if (keeps(t, j)) {
                    tile.blockByPredicate(j);
                }
            }
            tile.end();
        }
        return SparsePlan.uniform(ctx, b.build(), name());
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public String toString() {
        return name();
    }
}
