package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pattern per query head: head {@code h} of every batch entry uses {@code heads.get(h)}. Each
 * distinct pattern is planned once for the whole call, and head {@code h} takes that plan's layout
 * of its own slice (so estimators see the right head's Q and K).
 *
 * <p>Throws {@link IllegalArgumentException} if the list is empty or holds null, or (at plan time) its length
 *     differs from the context's query heads
 */
public final class PerHead implements Pattern {
    private final List<Pattern> heads;

    public PerHead(List<? extends Pattern> heads) {
        if (heads == null || heads.isEmpty()) {
            throw new IllegalArgumentException("heads: need one pattern per query head, got none");
        }
        for (int i = 0; i < heads.size(); i++) {
            if (heads.get(i) == null) {
                throw new IllegalArgumentException("heads[" + i + "]: must not be null");
            }
        }
        this.heads = List.copyOf(heads);
    }

    /**
     * A pattern that fits any head count: head {@code h} uses {@code patterns.get(h % size)}. Meant
     * for catalogues and demos; use the constructor for a table that must match the model exactly.
     */
    public static Pattern cycling(List<? extends Pattern> patterns) {
        PerHead template = new PerHead(patterns);
        return new Pattern() {
            @Override
            public String name() {
                return "perHeadCycling(" + template.heads.size() + " patterns)";
            }

            @Override
            public boolean dataDependent() {
                return template.dataDependent();
            }

            @Override
            public dev.sparsa.plan.SparsePlan plan(PlanContext ctx) {
                return expand(ctx).plan(ctx);
            }

            @Override
            public dev.sparsa.plan.SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
                return expand(ctx).plan(ctx, q, k);
            }

            private PerHead expand(PlanContext ctx) {
                java.util.List<Pattern> l = new java.util.ArrayList<>();
                for (int h = 0; h < ctx.shape().qHeads(); h++) {
                    l.add(template.heads.get(h % template.heads.size()));
                }
                return new PerHead(l);
            }

            @Override
            public String toString() {
                return name();
            }
        };
    }

    public List<Pattern> heads() {
        return heads;
    }

    @Override
    public String name() {
        return "perHead(" + heads.size() + " heads, " + heads.stream().distinct().count() + " patterns)";
    }

    @Override
    public boolean dataDependent() {
        return heads.stream().anyMatch(Pattern::dataDependent);
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (dataDependent()) {
            throw new UnsupportedOperationException(name() + " is data-dependent: call plan(context, q, k)");
        }
        return assemble(ctx, null, null);
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        return assemble(ctx, q, k);
    }

    private SparsePlan assemble(PlanContext ctx, Tensor q, Tensor k) {
        if (heads.size() != ctx.shape().qHeads()) {
            throw new IllegalArgumentException("heads: the table has " + heads.size() + " patterns but the context has "
                    + ctx.shape().qHeads() + " query heads");
        }
        Map<Pattern, SparsePlan> plans = new IdentityHashMap<>();
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(name());
        for (int h = 0; h < heads.size(); h++) {
            Pattern p = heads.get(h);
            SparsePlan plan = plans.computeIfAbsent(p, x -> q == null ? x.plan(ctx) : x.plan(ctx, q, k));
            for (int bi = 0; bi < ctx.shape().batch(); bi++) {
                b.slice(bi, h, plan.layout(bi, h));
            }
        }
        return b.build();
    }

    @Override
    public String toString() {
        return name();
    }
}
