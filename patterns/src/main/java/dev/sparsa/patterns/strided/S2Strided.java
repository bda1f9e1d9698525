package dev.sparsa.patterns.strided;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.blocksparse.BlockLists;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;

/**
 * S2-Attention's local-stride block pattern (Lin et al., "S2-Attention: Hardware-Aware Context
 * Sharding Among Attention Heads"), as DKernel's {@code get_sparse_attn_mask} ({@code
 * dkernel/utils.py}, github.com/linxihui/dkernel) defines it. Positions fall into blocks of {@code
 * blockSize} tokens: query block {@code i = ⌊p / blockSize⌋}, key block {@code j = ⌊k / blockSize⌋}.
 * The pattern is assigned per KV head {@code g} (every query head of a GQA group reads the same
 * blocks); the last {@code denseHeads} KV heads are dense.
 * <ul>
 *   <li>causal (DKernel's absolute positions): a sparse head keeps block {@code j ≤ i} when {@code i
 *       − j < localBlocks} or {@code (j + g·step + headOffset) mod stride == 0}; {@code step} is
 *       {@code headStep}, or when 0 DKernel's default {@code max(1, ⌊stride / queryHeads⌋)}, which
 *       spreads the heads' offsets over the stride when there are fewer heads than the stride;
 *       {@code homogeneous} gives every head the pattern of {@code g = 0};
 *   <li>non-causal (DKernel's relative positions for bidirectional attention): with {@code d = i −
 *       j}, a sparse head keeps block {@code j} when {@code max(0, d − localBlocks + 1) + max(0, −d −
 *       localBlocks + 1)} is a multiple of {@code stride} (the same for every head).
 * </ul>
 * Every token of a kept block is admitted, under the causal mask. With heterogeneous heads and
 * {@code step = 1}, {@code stride} KV heads together cover every causal block.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code stride < 1}, {@code localBlocks < 0}, {@code
 * headStep < 0}, {@code denseHeads < 0}, {@code blockSize < 1}, {@code homogeneous} with dense heads,
 * or (at plan time) {@code denseHeads} exceeds the KV heads.
 */
public record S2Strided(int stride, int localBlocks, int headStep, int headOffset, int denseHeads, boolean homogeneous,
                        int blockSize) implements Pattern {
    /** DKernel's default block size. */
    public static final int DEFAULT_BLOCK_SIZE = 64;

    public S2Strided {
        Checks.atLeast("stride", stride, 1);
        Checks.atLeast("localBlocks", localBlocks, 0);
        Checks.atLeast("headStep", headStep, 0);
        Checks.atLeast("denseHeads", denseHeads, 0);
        Checks.atLeast("blockSize", blockSize, 1);
        if (homogeneous && denseHeads > 0) {
            throw new IllegalArgumentException("denseHeads: " + denseHeads + " dense heads need heterogeneous heads"
                    + " (homogeneous heads all share one pattern)");
        }
    }

    /** DKernel's defaults: the heads' step chosen from the head count, offset 0, no dense head, 64-token blocks. */
    public static S2Strided of(int stride, int localBlocks) {
        return new S2Strided(stride, localBlocks, 0, 0, 0, false, DEFAULT_BLOCK_SIZE);
    }

    public S2Strided withBlockSize(int size) {
        return new S2Strided(stride, localBlocks, headStep, headOffset, denseHeads, homogeneous, size);
    }

    public S2Strided withHeadOffset(int offset) {
        return new S2Strided(stride, localBlocks, headStep, offset, denseHeads, homogeneous, blockSize);
    }

    @Override
    public String name() {
        return "s2Strided(stride " + stride + ", local " + localBlocks + (headStep > 0 ? ", head step " + headStep : "")
                + (headOffset != 0 ? ", head offset " + headOffset : "") + (denseHeads > 0 ? ", dense kv heads " + denseHeads : "")
                + (homogeneous ? ", homogeneous" : "") + (blockSize != DEFAULT_BLOCK_SIZE ? ", blocks of " + blockSize : "") + ")";
    }

    /** The head step in force for {@code qHeads} query heads. */
    public int stepFor(int qHeads) {
        return headStep > 0 ? headStep : Math.max(1, stride / qHeads);
    }

    /**
     * The residue of KV head {@code g}'s shard: key block {@code j} is on its stride when {@code (j +
     * residue) mod stride == 0}; -1 for a dense head.
     */
    public int residueOf(int g, int qHeads, int kvHeads) {
        if (g >= kvHeads - denseHeads) {
            return -1;
        }
        int head = homogeneous ? 0 : g;
        return (int) Math.floorMod((long) head * stepFor(qHeads) + headOffset, (long) stride);
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        int qHeads = ctx.shape().qHeads();
        int kvHeads = ctx.shape().kvHeads();
        if (denseHeads > kvHeads) {
            throw new IllegalArgumentException("denseHeads: " + denseHeads + " exceeds the context's " + kvHeads
                    + " KV heads (dense heads are counted in KV heads)");
        }
        return Plans.perHead(ctx, h -> residueOf(ctx.shape().kvHeadOf(h), qHeads, kvHeads),
                h -> layout(ctx, residueOf(ctx.shape().kvHeadOf(h), qHeads, kvHeads)), name());
    }

    /** Whether a head of {@code residue} (-1: dense) keeps key block {@code j} for query block {@code i}. */
    public boolean keeps(boolean causal, int residue, long i, long j) {
        if (residue < 0) {
            return !causal || j <= i;
        }
        long d = i - j;
        if (causal) {
            return d >= 0 && (d < localBlocks || Math.floorMod(j + residue, (long) stride) == 0);
        }
        long left = Math.max(0, d - localBlocks + 1);
        long right = Math.max(0, -d - localBlocks + 1);
        return (left + right) % stride == 0;
    }

    private HeadLayout layout(PlanContext ctx, int residue) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        long kBlocks = (nk + (long) blockSize - 1) / blockSize;
        boolean causal = ctx.causal();
        int start = 0;
        while (start < nq) {
            long p = (long) start + ctx.queryOffset();
            long i = Math.floorDiv(p, (long) blockSize);
            long nextBlockRow = (i + 1) * blockSize - ctx.queryOffset(); // tiles never straddle a query block
            int count = (int) Math.min(Math.min(rows, nq - start), nextBlockRow - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            long limit = Math.min(nk, Plans.lastVisibleKey(ctx, start + count - 1) + 1);
            long jEnd = causal ? Math.min(kBlocks, i + 1) : kBlocks;
            if (residue < 0) {
                BlockLists.emitRange(t, 0, Math.min(limit, jEnd * blockSize), cols, nk); // a dense head
            } else {
                for (long j = nextKept(causal, residue, i, 0, jEnd); j < jEnd; ) {
                    long run = j;
                    while (run + 1 < jEnd && keeps(causal, residue, i, run + 1)) {
                        run++; // consecutive kept blocks form one key range
                    }
                    BlockLists.emitRange(t, j * blockSize, Math.min(limit, (run + 1) * blockSize), cols, nk);
                    j = nextKept(causal, residue, i, run + 1, jEnd);
                }
            }
            t.end();
            start += count;
        }
        return b.build();
    }

    /** The first kept key block at or after {@code from}, or {@code end}: O(1) hops along the stride when causal. */
    private long nextKept(boolean causal, int residue, long i, long from, long end) {
        if (causal && residue >= 0) {
            long localFrom = i - localBlocks + 1;
            if (from >= localFrom) {
                return from < end ? from : end;
            }
            long onStride = from + Math.floorMod(-(from + residue), (long) stride);
            return Math.min(end, Math.min(onStride, Math.max(localFrom, from)));
        }
        for (long j = from; j < end; j++) {
            if (keeps(causal, residue, i, j)) {
                return j;
            }
        }
        return end;
    }

    @Override
    public String toString() {
        return name();
    }
}
