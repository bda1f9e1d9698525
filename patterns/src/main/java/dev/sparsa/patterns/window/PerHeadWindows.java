package dev.sparsa.patterns.window;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.Arrays;

/**
 * A causal sliding window (with sinks) whose size differs per query head. Either fixed sizes per
 * head, or MoA's elastic rule (Fu et al., "MoA: Mixture of Sparse Attention"): head {@code h} uses
 * {@code window_h = max(1, round(α_h + β_h · N))} where {@code N} is the key length of the call.
 * Heads with equal windows share one layout.
 *
 * <p>Throws {@link IllegalArgumentException} if a table is empty, a window is &lt; 1, α and β differ in length,
 *     a β is negative or the table's length differs from the context's query heads (at plan time)
 */
public final class PerHeadWindows implements Pattern {
    private final int[] windows;
    private final double[] alpha;
    private final double[] beta;
    private final int sinks;
    private final boolean cycled;

    private PerHeadWindows(int[] windows, double[] alpha, double[] beta, int sinks) {
        this(windows, alpha, beta, sinks, false);
    }

    private PerHeadWindows(int[] windows, double[] alpha, double[] beta, int sinks, boolean cycled) {
        this.cycled = cycled;
        this.windows = windows;
        this.alpha = alpha;
        this.beta = beta;
        this.sinks = Checks.atLeast("sinks", sinks, 0);
    }

    /** Fixed window sizes, one per query head. */
    public static PerHeadWindows of(int[] windows, int sinks) {
        if (windows == null || windows.length == 0) {
            throw new IllegalArgumentException("windows: need one window per head, got none");
        }
        for (int i = 0; i < windows.length; i++) {
            Checks.atLeast("windows[" + i + "]", windows[i], 1);
        }
        return new PerHeadWindows(windows.clone(), null, null, sinks);
    }

    /** MoA's elastic windows {@code α_h + β_h·N}, one (α, β) per query head. */
    public static PerHeadWindows elastic(double[] alpha, double[] beta, int sinks) {
        if (alpha == null || beta == null || alpha.length == 0 || alpha.length != beta.length) {
            throw new IllegalArgumentException("alpha, beta: need equal non-empty tables, got lengths "
                    + (alpha == null ? "null" : alpha.length) + " and " + (beta == null ? "null" : beta.length));
        }
        for (int i = 0; i < beta.length; i++) {
            if (!(beta[i] >= 0) || !Double.isFinite(alpha[i]) || !Double.isFinite(beta[i])) {
                throw new IllegalArgumentException("alpha[" + i + "], beta[" + i + "]: need finite values and beta >= 0, got "
                        + alpha[i] + ", " + beta[i]);
            }
        }
        return new PerHeadWindows(null, alpha.clone(), beta.clone(), sinks);
    }

    /**
     * The same table applied cyclically (head {@code h} uses entry {@code h mod size}), so it fits
     * any head count; for catalogues and demos.
     */
    public PerHeadWindows cycled() {
        return new PerHeadWindows(windows, alpha, beta, sinks, true);
    }

    /** The window of query head {@code h} for a call with {@code keyLength} keys. */
    public int windowOf(int h, int keyLength) {
        h = h % heads();
        if (windows != null) {
            return windows[h];
        }
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE - 1, Math.round(alpha[h] + beta[h] * keyLength)));
    }

    private int heads() {
        return windows != null ? windows.length : alpha.length;
    }

    @Override
    public String name() {
        return (windows != null ? "perHeadWindows" + Arrays.toString(windows) : "elasticWindows(MoA)")
                + (sinks > 0 ? "+sinks(" + sinks + ")" : "") + (cycled ? " cycled" : "");
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        if (!cycled && heads() != ctx.shape().qHeads()) {
            throw new IllegalArgumentException("windows: table has " + heads() + " heads but the context has "
                    + ctx.shape().qHeads() + " query heads");
        }
        return Plans.perHead(ctx, h -> windowOf(h, ctx.keyLength()),
                h -> new SlidingWindow(windowOf(h, ctx.keyLength()), sinks, 0).layout(ctx), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
