package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.pattern.PlanningCost;
import dev.sparsa.patterns.support.LayoutRows;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * The union of patterns: a row admits a key when any component does, once (set semantics); a key
 * several components weight keeps the weight of the first component that admits it. Per slice:
 * <ul>
 *   <li>when every component's layout uses the plain tiling (one contiguous tile per {@code
 *       tileRows} rows) without weights, and the base predicate or one other, tiles are merged block
 *       by block ({@link TileMerge}, cheap);
 *   <li>otherwise the per-row sets are re-encoded exactly by {@link TokenSetEncoder}, choosing among
 *       the components' predicates and the base one.
 * </ul>
 * Data-dependent when any component is; its planning cost is the sum of its components'.
 *
 * <p>Throws {@link IllegalArgumentException} if fewer than one component is given or one is null
 */
public final class Union implements Pattern, PlanningCost {
    private final List<Pattern> parts;

    public Union(List<? extends Pattern> parts) {
        if (parts == null || parts.isEmpty()) {
            throw new IllegalArgumentException("parts: a union needs at least one pattern");
        }
        for (int i = 0; i < parts.size(); i++) {
            if (parts.get(i) == null) {
                throw new IllegalArgumentException("parts[" + i + "]: must not be null");
            }
        }
        this.parts = List.copyOf(parts);
    }

    public static Union of(Pattern... parts) {
        return new Union(parts == null ? null : java.util.Arrays.asList(parts));
    }

    public List<Pattern> parts() {
        return parts;
    }

    @Override
    public String name() {
        StringBuilder sb = new StringBuilder("union(");
        for (int i = 0; i < parts.size(); i++) {
            sb.append(i == 0 ? "" : " | ").append(parts.get(i).name());
        }
        return sb.append(')').toString();
    }

    @Override
    public boolean dataDependent() {
        return parts.stream().anyMatch(Pattern::dataDependent);
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (dataDependent()) {
            throw new UnsupportedOperationException(name() + " is data-dependent: call plan(context, q, k)");
        }
        return combine(ctx, parts.stream().map(p -> p.plan(ctx)).toList());
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        return combine(ctx, parts.stream().map(p -> p.plan(ctx, q, k)).toList());
    }

    /**
     * The components' scoring cost together, each weighted by its {@link PlanningCost#costPerMac()}
     * (components that do not report one count as free), so that the union's own cost per
     * multiply-add is 1.
     */
    @Override
    public double scoringMacs(PlanContext ctx) {
        double macs = 0;
        for (Pattern p : parts) {
            if (p instanceof PlanningCost c) {
                macs += c.scoringMacs(ctx) * c.costPerMac();
            }
        }
        return macs;
    }

    private SparsePlan combine(PlanContext ctx, List<SparsePlan> plans) {
        // slices whose component layouts are the same objects share the merged layout; slices are merged
        // on the current workers (a merge reads only its layouts, and a merged layout depends only on them)
        Map<IdentityList, HeadLayout> cache = new java.util.concurrent.ConcurrentHashMap<>();
        return Plans.perSliceParallel(ctx, (b, h) -> {
            List<HeadLayout> ls = new ArrayList<>(plans.size());
            for (SparsePlan p : plans) {
                ls.add(p.layout(b, h));
            }
            return cache.computeIfAbsent(new IdentityList(ls), key -> merge(ctx, ls));
        }, name());
    }

    /** The union of layouts of one head. */
    public static HeadLayout merge(PlanContext ctx, List<HeadLayout> layouts) {
        if (layouts.size() == 1) {
            return layouts.get(0);
        }
        HeadLayout merged = TileMerge.merge(ctx, layouts);
        if (merged != null) {
            return merged;
        }
        List<LayoutRows> sources = layouts.stream().map(LayoutRows::new).toList();
        LinkedHashSet<ElementPredicate> candidates = new LinkedHashSet<>();
        for (HeadLayout l : layouts) {
            candidates.add(l.predicate());
        }
        candidates.add(ctx.basePredicate());
        return TokenSetEncoder.encode(ctx, (row, sink) -> {
            for (LayoutRows s : sources) {
                s.keys(row, sink);
            }
        }, new ArrayList<>(candidates));
    }

    /** A list compared by the identity of its elements (layouts have no value equality). */
    private record IdentityList(List<HeadLayout> items) {
        @Override
        public boolean equals(Object o) {
            if (!(o instanceof IdentityList other) || other.items.size() != items.size()) {
                return false;
            }
            for (int i = 0; i < items.size(); i++) {
                if (items.get(i) != other.items.get(i)) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public int hashCode() {
            int h = 1;
            for (HeadLayout l : items) {
                h = 31 * h + System.identityHashCode(l);
            }
            return h;
        }
    }

    @Override
    public String toString() {
        return name();
    }
}
