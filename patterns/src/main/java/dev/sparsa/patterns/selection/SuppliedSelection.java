package dev.sparsa.patterns.selection;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.IndexTensor;

/**
 * The shared road of selections a caller supplies as index lists (an indexer's or a gate's output):
 * the lists' head axis is 1 (one selection for every head), the KV heads (one per GQA group, shared
 * by the group's query heads, which the kernels then stack into one tile) or the query heads; one
 * layout is built per (batch, selection head) and mapped to the query heads that read it.
 *
 * <p>Reports itself {@link #dataDependent() data-dependent}: the lists may be rewritten in place
 * between calls, so the facade plans such a pattern on every call rather than caching its plan.
 * Planning needs no Q or K.
 */
abstract class SuppliedSelection implements Pattern {
    final IndexTensor indices;
    final IndexTensor lengths;

    SuppliedSelection(IndexTensor indices, IndexTensor lengths) {
        if (indices == null) {
            throw new IllegalArgumentException("indices: must not be null");
        }
        if (lengths != null && (lengths.batch() != indices.batch() || lengths.heads() != indices.heads()
                || lengths.rows() != indices.rows() || lengths.width() != 1)) {
            throw new IllegalArgumentException("lengths: shape " + java.util.Arrays.toString(lengths.shape())
                    + " must be [" + indices.batch() + ", " + indices.heads() + ", " + indices.rows() + ", 1] to match indices "
                    + java.util.Arrays.toString(indices.shape()));
        }
        this.indices = indices;
        this.lengths = lengths;
    }

    @Override
    public final boolean dataDependent() {
        return true;
    }

    /** Rows the index lists must have in this context. */
    abstract int rowsFor(PlanContext ctx);

    /** The exclusive upper bound of valid indices in this context. */
    abstract int limitFor(PlanContext ctx);

    /** The layout of one (batch, selection head) from its validated lists. */
    abstract HeadLayout layout(PlanContext ctx, IndexRows rows, int batch, int selHead);

    /**
     * @throws IllegalArgumentException if the lists' shape does not fit the call, or an entry is
     *     outside its range (the message names the entry: batch, head, row, slot and value)
     */
    @Override
    public final SparsePlan plan(PlanContext ctx) {
        var s = ctx.shape();
        IndexRows.checkShape("indices", indices, s.batch(), s.qHeads(), s.kvHeads(), rowsFor(ctx), false);
        IndexRows rows = new IndexRows(indices, lengths, "indices", limitFor(ctx));
        int sel = indices.heads();
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(name());
        for (int bi = 0; bi < s.batch(); bi++) {
            HeadLayout[] built = new HeadLayout[sel];
            for (int h = 0; h < s.qHeads(); h++) {
                int sh = IndexRows.selectionHead(sel, h, s.qHeads(), s.kvHeads());
                if (built[sh] == null) {
                    built[sh] = layout(ctx, rows, bi, sh);
                }
                b.slice(bi, h, built[sh]);
            }
        }
        return b.build();
    }

    @Override
    public String toString() {
        return name();
    }
}
