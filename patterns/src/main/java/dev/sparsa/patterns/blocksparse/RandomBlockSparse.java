package dev.sparsa.patterns.blocksparse;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RandomBlocks;
import dev.sparsa.plan.SparsePlan;

/**
 * A random block-sparse layout in the plan's own geometry ({@link RandomBlocks}): each causally
 * admissible (query tile, key block) pair is kept with probability {@code density}, decided by a
 * hash of (seed, absolute tile, block), so the layout is reproducible and independent of the
 * visiting order. Every head shares it. The benchmarks' and the demo's synthetic sparsity.
 *
 * <p>Tiles are counted from absolute row 0 ({@link RandomBlocks#absoluteTile}): a chunk of a prompt
 * prefilled against a cache (query offset = tokens already cached, a multiple of the tile height)
 * keeps the blocks the one-shot prefill keeps for the same rows.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code density} is not in [0, 1].
 *
 * @param density the probability of keeping each admissible block
 * @param seed    the seed of the selection
 */
public record RandomBlockSparse(double density, long seed) implements Pattern {
    public RandomBlockSparse {
        Checks.inRange("density", density, 0, 1);
    }

    @Override
    public String name() {
        return String.format("randomBlockSparse(%.3f, seed %d)", density, seed);
    }

    /** Whether (absolute tile, block) is kept ({@link RandomBlocks#keeps}). */
    public boolean keeps(int tile, int block) {
        return RandomBlocks.keeps(seed, density, tile, block);
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        return SparsePlan.uniform(ctx, RandomBlocks.layout(ctx, density, seed), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
