package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;

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

    /**
     * The context of a call with these options (bottom-right causal alignment by default), in the
     * options' geometry or, when they leave it to the backend, {@link TileGeometry#DEFAULT}. The
     * facade ({@code Attention.plan}) plans in the geometry the chosen backend proposes instead.
     */
    public static PlanContext of(AttentionShape shape, Options options) {
        return of(shape, options, TileGeometry.DEFAULT);
    }

    /** The context of a call with these options, in {@code proposed} unless the options fix a geometry. */
    public static PlanContext of(AttentionShape shape, Options options, TileGeometry proposed) {
        if (shape == null || options == null) {
            throw new IllegalArgumentException("shape and options: must not be null");
        }
        return new PlanContext(shape, options.geometryOr(proposed), options.causal(),
                options.queryOffsetFor(shape.queryLength(), shape.keyLength()));
    }

    /**
     * Refuses options that contradict this context: a different causal flag, an explicit query
     * offset other than the plan's, or an explicit geometry other than the plan's.
     *
     * @throws IllegalArgumentException naming the option, its value and the plan's
     */
    public void requireConsistent(Options options) {
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        if (options.causal() != causal) {
            throw new IllegalArgumentException("options: causal=" + options.causal() + " contradicts the plan, made with causal="
                    + causal + " (plan again, or pass options with causal=" + causal + ")");
        }
        if (options.queryOffset() != null && options.queryOffset() != queryOffset) {
            throw new IllegalArgumentException("options: queryOffset=" + options.queryOffset()
                    + " contradicts the plan, made with queryOffset=" + queryOffset);
        }
        if (options.geometry() != null && !options.geometry().equals(geometry)) {
            throw new IllegalArgumentException("options: geometry " + options.geometry()
                    + " contradicts the plan, made with geometry " + geometry);
        }
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
