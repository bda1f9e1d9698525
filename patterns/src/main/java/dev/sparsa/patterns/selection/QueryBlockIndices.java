package dev.sparsa.patterns.selection;

import dev.sparsa.patterns.blocksparse.BlockLists;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.IndexTensor;

/**
 * A caller-supplied block selection per query block: for every block of {@code queryBlock} query
 * rows, the key blocks of {@code keyBlock} keys its rows attend, as an {@link IndexTensor} {@code
 * [batch, 1 | kvHeads | qHeads, ceil(queryLength / queryBlock), s]} with −1 as padding or an optional
 * lengths view (a learned gate's or a block estimator's output). Every row of the query block admits
 * the keys of the listed blocks it may see under the call's causality. Compiled by {@link
 * BlockLists}: tiles never straddle two query blocks.
 *
 * <p>Throws {@link IllegalArgumentException} (from the constructor) if {@code indices} is null, the lengths do
 *     not match it or a block size is &lt; 1; (at plan time) if the shape does not fit the call or an
 *     entry is below −1 or at least the number of key blocks, naming it
 */
public final class QueryBlockIndices extends SuppliedSelection {
    private final int queryBlock;
    private final int keyBlock;

    public QueryBlockIndices(IndexTensor indices, IndexTensor lengths, int queryBlock, int keyBlock) {
        super(indices, lengths);
        if (queryBlock < 1 || keyBlock < 1) {
            throw new IllegalArgumentException("queryBlock, keyBlock: must be >= 1, got " + queryBlock + ", " + keyBlock);
        }
        this.queryBlock = queryBlock;
        this.keyBlock = keyBlock;
    }

    @Override
    public String name() {
        return "queryBlockIndices(" + indices.width() + " blocks of " + keyBlock + " per " + queryBlock + " rows)";
    }

    @Override
    int rowsFor(PlanContext ctx) {
        return (int) (((long) ctx.queryLength() + queryBlock - 1) / queryBlock);
    }

    @Override
    int limitFor(PlanContext ctx) {
        return (int) (((long) ctx.keyLength() + keyBlock - 1) / keyBlock);
    }

    @Override
    HeadLayout layout(PlanContext ctx, IndexRows rows, int batch, int selHead) {
        return BlockLists.compile(ctx, queryBlock, keyBlock, qb -> rows.row(batch, selHead, qb));
    }
}
