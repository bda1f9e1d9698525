package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The contract between patterns and kernels: for every (batch, query head) slice, the {@link
 * HeadLayout} that says which keys each query tile visits. Slices with the same pattern share one
 * layout through the head map, as FlexAttention broadcasts its BlockMask. Immutable and
 * backend-neutral: build once, run every layer and every backend.
 *
 * <p>Costs are exact {@code long}s over all slices. {@link #density()} is admitted pairs over the
 * pairs admissible under the context (all pairs, or the causal ones).
 */
public final class SparsePlan {
    private final PlanContext context;
    private final List<HeadLayout> layouts;
    private final int[] headMap;
    private final String description;
    private final long pairsAdmitted;
    private final long pairsVisited;

    private SparsePlan(PlanContext context, List<HeadLayout> layouts, int[] headMap, String description) {
        this.context = context;
        this.layouts = List.copyOf(layouts);
        this.headMap = headMap;
        this.description = description;
        long admitted = 0;
        long visited = 0;
        for (int layout : headMap) {
            admitted += this.layouts.get(layout).pairsAdmitted();
            visited += this.layouts.get(layout).pairsVisited();
        }
        this.pairsAdmitted = admitted;
        this.pairsVisited = visited;
    }

    /** A builder for a plan in this context. */
    public static Builder builder(PlanContext context) {
        return new Builder(context);
    }

    /**
     * The plan that admits nothing: no tile in any slice, so every row gets 0 and LSE −∞. What a
     * sequence without queries or keys plans to in a ragged batch.
     */
    public static SparsePlan empty(PlanContext context) {
        if (context == null) {
            throw new IllegalArgumentException("context: must not be null");
        }
        return uniform(context, HeadLayout.builder(context, context.basePredicate()).build(), "empty");
    }

    /** A plan in which every slice uses {@code layout}. */
    public static SparsePlan uniform(PlanContext context, HeadLayout layout, String description) {
        return builder(context).allSlices(layout).describe(description).build();
    }

    public PlanContext context() {
        return context;
    }

    public AttentionShape shape() {
        return context.shape();
    }

    public TileGeometry geometry() {
        return context.geometry();
    }

    /** A short human-readable name of what built this plan. */
    public String description() {
        return description;
    }

    /** The distinct layouts, in the order {@link #layoutIndex} refers to. */
    public List<HeadLayout> layouts() {
        return layouts;
    }

    /** Index into {@link #layouts()} of slice (batch, qHead). */
    public int layoutIndex(int batch, int qHead) {
        return headMap[batch * context.shape().qHeads() + qHead];
    }

    /** The layout of slice (batch, qHead). */
    public HeadLayout layout(int batch, int qHead) {
        return layouts.get(layoutIndex(batch, qHead));
    }

    /** A copy of the head map, one layout index per slice in (batch, qHead) order. */
    public int[] headMap() {
        return headMap.clone();
    }

    public long pairsAdmitted() {
        return pairsAdmitted;
    }

    public long pairsVisited() {
        return pairsVisited;
    }

    /** Pairs admissible under the context: all, or the causal ones, over every slice. */
    public long pairsAdmissible() {
        return context.admissiblePairsPerSlice() * context.shape().slices();
    }

    /** Admitted over admissible; 0 when nothing is admissible. */
    public double density() {
        long a = pairsAdmissible();
        return a == 0 ? 0 : (double) pairsAdmitted / a;
    }

    /** Bytes held by the plan's arrays (layouts and head map). */
    public long sizeBytes() {
        long b = 4L * headMap.length;
        for (HeadLayout l : layouts) {
            b += l.sizeBytes();
        }
        return b;
    }

    /** FLOPs a kernel performs on visited pairs: {@code 2·pairs·(headDim + valueDim)}. */
    public double flopsVisited() {
        return 2.0 * pairsVisited * (context.shape().headDim() + context.shape().valueDim());
    }

    @Override
    public String toString() {
        return "SparsePlan[" + description + ", " + layouts.size() + " layout(s) for " + headMap.length
                + " slices, density " + String.format("%.4f", density()) + ", visited " + pairsVisited + ", "
                + sizeBytes() + " bytes]";
    }

    /** Assembles a plan from layouts; every slice must receive one. */
    public static final class Builder {
        private final PlanContext context;
        private final int[] headMap;
        private final Map<HeadLayout, Integer> index = new IdentityHashMap<>();
        private final List<HeadLayout> layouts = new ArrayList<>();
        private String description = "custom";

        private Builder(PlanContext context) {
            if (context == null) {
                throw new IllegalArgumentException("context: must not be null");
            }
            this.context = context;
            this.headMap = new int[context.shape().slices()];
            Arrays.fill(headMap, -1);
        }

        /** Every slice uses {@code layout}. */
        public Builder allSlices(HeadLayout layout) {
            int id = register(layout);
            Arrays.fill(headMap, id);
            return this;
        }

        /** Query head {@code qHead} of every batch uses {@code layout}. */
        public Builder head(int qHead, HeadLayout layout) {
            checkHead(qHead);
            int id = register(layout);
            for (int b = 0; b < context.shape().batch(); b++) {
                headMap[b * context.shape().qHeads() + qHead] = id;
            }
            return this;
        }

        /** Slice (batch, qHead) uses {@code layout}. */
        public Builder slice(int batch, int qHead, HeadLayout layout) {
            checkHead(qHead);
            if (batch < 0 || batch >= context.shape().batch()) {
                throw new IllegalArgumentException("batch: index " + batch + " outside [0, " + context.shape().batch() + ")");
            }
            headMap[batch * context.shape().qHeads() + qHead] = register(layout);
            return this;
        }

        /** A short name for the plan (shown by tools). */
        public Builder describe(String text) {
            this.description = text == null ? "custom" : text;
            return this;
        }

        /** @throws IllegalStateException naming the first slice left without a layout */
        public SparsePlan build() {
            for (int i = 0; i < headMap.length; i++) {
                if (headMap[i] < 0) {
                    int h = context.shape().qHeads();
                    throw new IllegalStateException("slice (batch " + i / h + ", head " + i % h + ") has no layout");
                }
            }
            return new SparsePlan(context, layouts, headMap.clone(), description);
        }

        private void checkHead(int qHead) {
            if (qHead < 0 || qHead >= context.shape().qHeads()) {
                throw new IllegalArgumentException("qHead: index " + qHead + " outside [0, " + context.shape().qHeads() + ")");
            }
        }

        private int register(HeadLayout layout) {
            if (layout == null) {
                throw new IllegalArgumentException("layout: must not be null");
            }
            if (layout.queryLength() != context.queryLength() || layout.keyLength() != context.keyLength()
                    || layout.queryOffset() != context.queryOffset() || !layout.geometry().equals(context.geometry())) {
                throw new IllegalArgumentException("layout: built for queryLength " + layout.queryLength() + ", keyLength "
                        + layout.keyLength() + ", offset " + layout.queryOffset() + ", geometry " + layout.geometry()
                        + " but the plan is for " + context.queryLength() + ", " + context.keyLength() + ", "
                        + context.queryOffset() + ", " + context.geometry());
            }
            return index.computeIfAbsent(layout, l -> {
                layouts.add(l);
                return layouts.size() - 1;
            });
        }
    }
}
