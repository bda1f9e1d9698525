package dev.sparsa.patterns.strided;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * S2-Attention's local-stride block pattern (Lin et al., "S2-Attention: Hardware-Aware Context
 * Sharding Among Attention Heads"), in the plan's key blocks: query tile {@code t} of head {@code h}
 * keeps causally admissible key block {@code j} when it is one of the {@code localBlocks} last
 * admissible blocks of the tile, or when {@code (j − o_h − step·t) mod stride == 0}: each head reads
 * a strided shard of the context with its own offset {@code o_h} (head index among the sparse heads,
 * mod {@code stride}; 0 for every head when {@code homogeneous}), and the shard slides by {@code
 * step} blocks per query tile. The last {@code denseHeads} query heads are dense (S2's hybrid
 * heads). With at least {@code stride} sparse heterogeneous heads the union over heads covers every
 * causal block.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code stride < 1}, {@code localBlocks < 0}, {@code step < 0},
 *     {@code denseHeads < 0}, or (at plan time) {@code denseHeads} exceeds the query heads
 */
public record S2Strided(int stride, int localBlocks, int step, int denseHeads, boolean homogeneous) implements Pattern {
    public S2Strided {
        Checks.atLeast("stride", stride, 1);
        Checks.atLeast("localBlocks", localBlocks, 0);
        Checks.atLeast("step", step, 0);
        Checks.atLeast("denseHeads", denseHeads, 0);
    }

    @Override
    public String name() {
        return "s2Strided(stride " + stride + ", local " + localBlocks + (step > 0 ? ", step " + step : "")
                + (denseHeads > 0 ? ", dense heads " + denseHeads : "") + (homogeneous ? ", homogeneous" : "") + ")";
    }

    /** The offset of query head {@code h}, or -1 for a dense head. */
    public int offsetOf(int h, int qHeads) {
        if (h >= qHeads - denseHeads) {
            return -1;
        }
        return homogeneous ? 0 : h % stride;
    }

    /** Whether head offset {@code o} keeps key block {@code j} for tile {@code t} whose last admissible block is {@code last}. */
    public boolean keeps(int o, int t, int j, int last) {
        if (j > last) {
            return false;
        }
        if (o < 0 || last - j < localBlocks) {
            return true;
        }
        return Math.floorMod((long) j - o - (long) step * t, stride) == 0;
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        int heads = ctx.shape().qHeads();
        if (denseHeads > heads) {
            throw new IllegalArgumentException("denseHeads: " + denseHeads + " exceeds the context's " + heads + " query heads");
        }
        return Plans.perHead(ctx, h -> offsetOf(h, heads), h -> layout(ctx, offsetOf(h, heads)), name());
    }

    private HeadLayout layout(PlanContext ctx, int o) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        for (int t = 0, start = 0; start < ctx.queryLength(); t++, start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile tile = b.tile(start, count);
            int last = Plans.lastVisibleBlock(ctx, start, count);
            if (o < 0) {
                tile.blocksByPredicate(0, last);
            } else {
                for (int j = Math.max(0, last - localBlocks + 1); j <= last; j++) {
                    tile.blockByPredicate(j);
                }
                // first j >= 0 with (j - o - step*t) mod stride == 0, then every stride-th
                int first = (int) Math.floorMod((long) o + (long) step * t, stride);
                for (int j = first; j <= last - localBlocks; j += stride) {
                    tile.blockByPredicate(j);
                }
            }
            tile.end();
        }
        return b.build();
    }

    @Override
    public String toString() {
        return name();
    }
}
