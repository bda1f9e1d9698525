package dev.sparsa.patterns.selection;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.IndexTensor;

/**
 * A caller-supplied token selection: for every query row, the key positions it attends, as an
 * {@link IndexTensor} {@code [batch, 1 | kvHeads | qHeads, queryLength, k]} (DeepSeek's lightning
 * indexer and FlashMLA's sparse prefill use {@code [.., k]} lists of this kind), with −1 as padding
 * or an optional lengths view {@code [batch, heads, queryLength, 1]}. Entries may come in any order
 * and repeat (a repeat counts once); keys the call's causality forbids are admitted by nobody (as
 * the causal mask drops them in those references). Compiled by {@link TokenListLayout}: one tile per
 * row (or per run of rows with one list), which the kernels fill with the query heads sharing the
 * selection.
 *
 * <p>Throws {@link IllegalArgumentException} (from the constructor) if {@code indices} is null or the lengths
 *     do not match it; (at plan time) if the shape does not fit the call or an entry is below −1 or
 *     at least the key length, naming it
 */
public final class TokenIndices extends SuppliedSelection {

    public TokenIndices(IndexTensor indices, IndexTensor lengths) {
        super(indices, lengths);
    }

    @Override
    public String name() {
        return "tokenIndices(" + indices.width() + " per row" + (indices.heads() == 1 ? ", shared" : ", " + indices.heads()
                + " heads") + ")";
    }

    @Override
    int rowsFor(PlanContext ctx) {
        return ctx.queryLength();
    }

    @Override
    int limitFor(PlanContext ctx) {
        return ctx.keyLength();
    }

    @Override
    HeadLayout layout(PlanContext ctx, IndexRows rows, int batch, int selHead) {
        return TokenListLayout.compile(ctx, r -> rows.row(batch, selHead, r));
    }
}
