package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * Exact top-k per query: each row keeps the {@code k} visible keys with the largest {@code q·k}
 * (ties to the lower index) besides its {@link ForcedKeys}, which are always kept and not counted.
 * It needs every score, so in prefill it <b>costs as much as dense attention's Q·Kᵀ</b> (O(N² ·
 * headDim) time, in vectors over the keys packed in {@link KeyPanels}, 16 query rows per pass: O(N ·
 * headDim) scratch, O(N · k) result): it is the reference the cheaper
 * estimators are measured against, and the decode-time selection (one query row). Per (batch, query
 * head) slice.
 *
 * <p><b>Canonical arithmetic</b> (a device reproduces it bit for bit, ties included; {@code
 * CudaTopKQueryEstimatedPlan} does): the query row and the keys are read as f32 (exact for f16 and
 * bf16); a key's score is one chain of f32 fused multiply-adds over the channels in ascending order
 * from {@code 0f}, as {@link Vectors#dot}; the candidates are the keys the row may see that are not
 * forced for it, ranked by that raw score ({@code -0} equal to {@code +0}, NaN never chosen), ties to
 * the lower key ({@link dev.sparsa.patterns.support.TopSelect}). This has been the scoring all along:
 * no selection differs from before, near ties included.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code k < 0}, or {@code k == 0} with nothing forced
 */
public final class TopKPerQuery extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int k;
    private final ForcedKeys forced;

    public TopKPerQuery(int k, ForcedKeys forced) {
        this.forced = Checks.notNull("forced", forced);
        this.k = PerRowSelection.checkK(k, forced);
    }

    public int k() {
        return k;
    }

    public ForcedKeys forced() {
        return forced;
    }

    /** The same k with {@code s} sinks forced. */
    public TopKPerQuery withSinks(int s) {
        return new TopKPerQuery(k, new ForcedKeys(s, forced.window()));
    }

    /** The same k with a causal window of {@code w} keys forced. */
    public TopKPerQuery withWindow(int w) {
        return new TopKPerQuery(k, new ForcedKeys(forced.sinks(), w));
    }

    @Override
    public String name() {
        return "topK(" + k + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        return Plans.perSliceParallel(ctx, (b, h) -> {
            int[][] sel = select(ctx, Vectors.rows(q, b, h), Vectors.rows(kt, b, ctx.shape().kvHeadOf(h)));
            return PerRowSelection.layout(ctx, forced, sel);
        }, name(), q, kt);
    }

    /**
     * The selected keys of every query row besides its forced ones (sorted), for one slice's query rows
     * {@code q} and key rows {@code kr} (flat {@code [seq · headDim]}, f32): the canonical arithmetic of
     * the class Javadoc. Also the oracle of the device estimate.
     */
    public int[][] select(PlanContext ctx, float[] q, float[] kr) {
        int d = ctx.shape().headDim();
        return PerRowSelection.selectFromPanels(ctx, k, forced, KeyPanels.of(kr, ctx.keyLength(), d), q);
    }

    /** Every visible score: exactly dense Q·Kᵀ. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return dev.sparsa.patterns.EstimatorCost.denseScoreMacs(ctx);
    }
}
