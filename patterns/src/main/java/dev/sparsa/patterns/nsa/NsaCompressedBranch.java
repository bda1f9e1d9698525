package dev.sparsa.patterns.nsa;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.selection.TokenListLayout;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * NSA's compressed branch as a pattern on the compressed key axis (key {@code c} is block {@code c}
 * of {@link NsaCompression}): a query at position {@code p} of the original sequence attends the
 * blocks it has seen whole, {@code (c + 1)·blockSize − 1 ≤ p}, as the reference's {@code
 * naive_nsa_compression} masks them; without causality, every block. Plan it in a non-causal
 * context over the compressed keys: the causality of the original call is this pattern's own.
 * Rows of one block see the same blocks and share a tile.
 *
 * @param blockSize   tokens per compressed block
 * @param queryOffset the original position of query 0 (the original call's offset)
 * @param causal      whether the original call is causal
 */
public record NsaCompressedBranch(int blockSize, int queryOffset, boolean causal) implements Pattern {

    public NsaCompressedBranch {
        Checks.atLeast("blockSize", blockSize, 1);
    }

    @Override
    public String name() {
        return "nsaCompressed(" + blockSize + "-token blocks" + (causal ? ", seen whole" : "") + ")";
    }

    /** @throws IllegalArgumentException if the context is causal (plan it on the compressed axis without causality) */
    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (ctx.causal()) {
            throw new IllegalArgumentException("context: plan " + name()
                    + " without causality; the original call's causality is the pattern's own");
        }
        int nc = ctx.keyLength();
        return SparsePlan.uniform(ctx, TokenListLayout.compile(ctx, r -> {
            long p = (long) r + queryOffset;
            int seen = causal ? (int) Math.max(0, Math.min(nc, (p + 1) / blockSize)) : nc;
            int[] keys = new int[seen];
            for (int c = 0; c < seen; c++) {
                keys[c] = c;
            }
            return keys;
        }), name());
    }
}
