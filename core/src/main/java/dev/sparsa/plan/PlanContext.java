package dev.sparsa.plan;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.attention.Options;

/**
 * What a pattern needs to know to build a plan: the attention shape, the tiling, whether the call
 * is causal and where query 0 sits in absolute positions ({@code qPos = qIndex + queryOffset}).
 * Data-dependent estimators also receive Q and K; static patterns need only this.
 */
public record PlanContext(AttentionShape shape, TileGeometry geometry, boolean causal, int queryOffset) {

    public PlanContext {
        if (shape == null || geometry == null) {
            throw new IllegalArgumentException("shape and geometry: must not be null");
        }
    }

    /** The context of a call with these options (bottom-right causal alignment by default). */
    public static PlanContext of(AttentionShape shape, Options options) {
        return new PlanContext(shape, options.geometry(), options.causal(),
                options.queryOffsetFor(shape.queryLength(), shape.keyLength()));
    }

    public int queryLength() {
        return shape.queryLength();
    }

    public int keyLength() {
        return shape.keyLength();
    }

    /** Number of contiguous query tiles of {@link TileGeometry#tileRows()} rows. */
    public int queryTiles() {
        return geometry.tilesFor(shape.queryLength());
    }

    /** Number of key blocks of {@link TileGeometry#blockCols()} keys. */
    public int keyBlocks() {
        return geometry.blocksFor(shape.keyLength());
    }

    /** The predicate every plan in this context starts from: causal or all pairs. */
    public ElementPredicate basePredicate() {
        return causal ? ElementPredicate.causalOnly() : ElementPredicate.all();
    }

    /** Pairs one (batch, head) slice could admit under the options: all pairs, or the causal ones. */
    public long admissiblePairsPerSlice() {
        long nk = shape.keyLength();
        if (!causal) {
            return (long) shape.queryLength() * nk;
        }
        long sum = 0;
        for (int q = 0; q < shape.queryLength(); q++) {
            long visible = (long) q + queryOffset + 1;
            sum += Math.max(0, Math.min(visible, nk));
        }
        return sum;
    }
}
