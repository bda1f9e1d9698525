package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.LayoutRows;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Tensor;

/**
 * RazorAttention's compensation token (Tang et al., "RazorAttention: Efficient KV Cache Compression
 * Through Retrieval Heads"): keys outside the kept A-shape ({@code sinks} first keys and the last
 * {@code window} keys of the cache) are dropped and summarised by one synthetic key/value, the mean
 * of the dropped keys and of their values, appended to K/V at position {@code Nk} (so K and V grow
 * to {@code Nk + 1}). The plan ({@link #pattern}) admits, for every row, what an inner pattern admits
 * on the original keys plus the compensation key, unconditionally, with log-weight {@code log(m)}
 * where {@code m} is the number of dropped keys: one token standing for {@code m}.
 *
 * <p>Call order: {@link #append} the token, then plan with a context whose key length is {@code Nk
 * + 1} and whose query offset is the original one ({@link #queryOffset}); the inner pattern is
 * planned on the original {@code Nk} keys.
 */
public final class CompensationToken {
    private CompensationToken() {
    }

    /** K or V with one appended position per (batch, head): the mean of positions {@code [sinks, Nk − window)}. */
    public static Tensor append(Tensor t, int sinks, int window) {
        Checks.notNull("t", t);
        Checks.atLeast("sinks", sinks, 0);
        Checks.atLeast("window", window, 0);
        int n = t.seqLen();
        int from = Math.min(sinks, n);
        int to = Math.max(from, n - window);
        Tensor out = Tensor.allocate(t.dtype(), dev.sparsa.tensor.Layout.BHSD, t.batch(), t.heads(), n + 1, t.dim());
        if (t.dtype().isScaled()) {
            out = out.withScales(t.scales()); // e4m3: the same codes under the same scales, the mean quantised under them
        }
        float[] row = new float[t.dim()];
        double[] acc = new double[t.dim()];
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                java.util.Arrays.fill(acc, 0);
                for (int s = 0; s < n; s++) {
                    t.readRow(b, h, s, row, 0);
                    out.writeRow(b, h, s, row, 0);
                    if (s >= from && s < to) {
                        for (int d = 0; d < row.length; d++) {
                            acc[d] += row[d];
                        }
                    }
                }
                for (int d = 0; d < row.length; d++) {
                    row[d] = to > from ? (float) (acc[d] / (to - from)) : 0f;
                }
                out.writeRow(b, h, n, row, 0);
            }
        }
        return out;
    }

    /** Dropped keys for a cache of {@code nk} keys. */
    public static int dropped(int nk, int sinks, int window) {
        int from = Math.min(sinks, nk);
        return Math.max(from, nk - window) - from;
    }

    /** The query offset to plan and run with: the original {@code Nk − Nq} (bottom-right on the original keys). */
    public static int queryOffset(int queryLength, int originalKeyLength) {
        return originalKeyLength - queryLength;
    }

    /**
     * A pattern on the extended keys: {@code inner} on keys {@code [0, Nk)} plus key {@code Nk}
     * unconditionally with log-weight {@code log(dropped)} (no token when nothing is dropped). The
     * context's key length must be {@code Nk + 1}.
     */
    public static Pattern pattern(Pattern inner, int sinks, int window) {
        Checks.notNull("inner", inner);
        Checks.atLeast("sinks", sinks, 0);
        Checks.atLeast("window", window, 0);
        return new Pattern() {
            @Override
            public String name() {
                return inner.name() + "+compensation(sinks " + sinks + ", window " + window + ")";
            }

            @Override
            public boolean dataDependent() {
                return inner.dataDependent();
            }

            @Override
            public SparsePlan plan(PlanContext ctx) {
                return build(ctx, null, null);
            }

            @Override
            public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
                return build(ctx, q, k);
            }

            private SparsePlan build(PlanContext ctx, Tensor q, Tensor k) {
                int nk = ctx.keyLength() - 1;
                if (nk < 0) {
                    throw new IllegalArgumentException("keyLength: the context must include the compensation key, got 0 keys");
                }
                AttentionShape s = ctx.shape();
                PlanContext original = new PlanContext(new AttentionShape(s.batch(), s.qHeads(), s.kvHeads(), s.queryLength(),
                        nk, s.headDim(), s.valueDim()), ctx.geometry(), ctx.causal(), ctx.queryOffset());
                SparsePlan innerPlan = q == null ? inner.plan(original)
                        : inner.plan(original, q, k == null ? null : k.narrowSeq(0, nk));
                int m = dropped(nk, sinks, window);
                float w = m > 0 ? (float) Math.log(m) : 0f;
                java.util.Map<dev.sparsa.plan.HeadLayout, dev.sparsa.plan.HeadLayout> cache = new java.util.IdentityHashMap<>();
                return Plans.perSlice(ctx, (b, h) -> cache.computeIfAbsent(innerPlan.layout(b, h), l -> {
                    LayoutRows rows = new LayoutRows(l);
                    return TokenSetEncoder.encode(ctx, (row, sink) -> {
                        rows.keys(row, sink);
                        if (m > 0) {
                            sink.accept(nk, w);
                        }
                    }, java.util.List.of(l.predicate(), ctx.basePredicate())); // the encoder checks either is exact
                }), name());
            }

            @Override
            public String toString() {
                return name();
            }
        };
    }
}
