package dev.sparsa.patterns.strided;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.List;

/**
 * Sparse Transformer's factorised patterns (Child et al., "Generating Long Sequences with Sparse
 * Transformers"), merged into one head as in the paper's single-head variant, under the context's
 * causality ({@code p} is the query's position):
 * <ul>
 *   <li><b>strided</b>({@code l}): keys with {@code 0 ≤ p − k < l} (the local part) or {@code (p − k)
 *       mod l == 0} (the strided part);
 *   <li><b>fixed</b>({@code l, c}): keys in the query's own length-{@code l} block ({@code ⌊k/l⌋ ==
 *       ⌊p/l⌋}) or the "summary" keys with {@code k mod l ≥ l − c}.
 * </ul>
 * The strided pattern is built directly ({@link StridedLayout}: the band as contiguous tiles, the
 * strided part as tiles of rows that share a residue mod {@code l}); the fixed one is compiled
 * exactly through {@link TokenSetEncoder} (its union does not fit one predicate).
 *
 * <p>Throws {@link IllegalArgumentException} if {@code l < 1} or {@code c} is not in [1, l]
 */
public record SparseTransformer(boolean fixed, int l, int c) implements Pattern {
    public SparseTransformer {
        Checks.atLeast("l", l, 1);
        if (fixed && (c < 1 || c > l)) {
            throw new IllegalArgumentException("c: must be in [1, l=" + l + "], got " + c);
        }
    }

    public static SparseTransformer strided(int l) {
        return new SparseTransformer(false, l, 0);
    }

    public static SparseTransformer fixed(int l, int c) {
        return new SparseTransformer(true, l, c);
    }

    @Override
    public String name() {
        return fixed ? "sparseTransformerFixed(l " + l + ", c " + c + ")" : "sparseTransformerStrided(l " + l + ")";
    }

    /** Whether the definition admits key {@code k} for query position {@code p} (before causality). */
    public boolean admits(long p, int k) {
        if (fixed) {
            return Math.floorDiv(k, l) == Math.floorDiv(p, l) || Math.floorMod(k, l) >= l - c;
        }
        long d = p - k;
        return (d >= 0 && d < l) || Math.floorMod(d, l) == 0;
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (!fixed) {
            return SparsePlan.uniform(ctx, StridedLayout.build(ctx, l), name());
        }
        var layout = TokenSetEncoder.encode(ctx, (row, sink) -> {
            long p = (long) row + ctx.queryOffset();
            long last = Plans.lastVisibleKey(ctx, row);
            int nk = ctx.keyLength();
            {
                long b0 = Math.floorDiv(p, l) * (long) l;
                for (long k = Math.max(0, b0); k <= Math.min(last, b0 + l - 1); k++) {
                    sink.accept((int) k, 0f);
                }
                for (long k = l - c; k <= last; k += l) {
                    for (long x = k; x < k + c && x <= last; x++) {
                        sink.accept((int) x, 0f);
                    }
                }
            }
        }, List.of(ctx.basePredicate()));
        return SparsePlan.uniform(ctx, layout, name());
    }

    @Override
    public String toString() {
        return name();
    }
}
