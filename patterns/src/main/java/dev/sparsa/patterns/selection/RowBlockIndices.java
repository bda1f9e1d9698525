package dev.sparsa.patterns.selection;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.IndexTensor;

/**
 * A caller-supplied block selection per query row: for every query row, the key blocks (of {@code
 * blockSize} keys, block {@code j} holding keys {@code [j·blockSize, (j+1)·blockSize)}) it attends,
 * as an {@link IndexTensor} {@code [batch, 1 | kvHeads | qHeads, queryLength, s]} with −1 as padding
 * or an optional lengths view: the form of NSA's {@code block_indices} and of MoBA's gate. A row
 * admits the keys of its blocks it may see under the call's causality (its own block up to its
 * position). Compiled by {@link RowBlockLayout}: tiles of the rows that share a block.
 *
 * <p>Throws {@link IllegalArgumentException} (from the constructor) if {@code indices} is null, the lengths do
 *     not match it or {@code blockSize < 1}; (at plan time) if the shape does not fit the call or an
 *     entry is below −1 or at least the number of key blocks, naming it
 */
public final class RowBlockIndices extends SuppliedSelection {
    private final int blockSize;

    public RowBlockIndices(IndexTensor indices, IndexTensor lengths, int blockSize) {
        super(indices, lengths);
        if (blockSize < 1) {
            throw new IllegalArgumentException("blockSize: must be >= 1, got " + blockSize);
        }
        this.blockSize = blockSize;
    }

    @Override
    public String name() {
        return "rowBlockIndices(" + indices.width() + " blocks of " + blockSize + " per row)";
    }

    @Override
    int rowsFor(PlanContext ctx) {
        return ctx.queryLength();
    }

    @Override
    int limitFor(PlanContext ctx) {
        return (int) (((long) ctx.keyLength() + blockSize - 1) / blockSize);
    }

    @Override
    HeadLayout layout(PlanContext ctx, IndexRows rows, int batch, int selHead) {
        return RowBlockLayout.compile(ctx, blockSize, r -> rows.row(batch, selHead, r));
    }
}
