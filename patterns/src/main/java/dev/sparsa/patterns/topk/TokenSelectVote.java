package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;

/**
 * TokenSelect's head vote (Wu et al., "TokenSelect: Efficient Long-Context Inference and Length
 * Extrapolation for LLMs via Dynamic Token-Level KV Cache Selection"): for each query row, every
 * query head's softmax over the visible keys ({@code 1/sqrt(headDim)} scale) is summed over the
 * heads, and the {@code k} keys with the largest sum (ties to the lower key) are kept for
 * <em>all</em> heads of that batch entry, with the {@link ForcedKeys}. One layout per batch entry.
 * Needs every score: as costly as dense attention in prefill; meant for decode.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code k < 0}, or {@code k == 0} with nothing forced
 */
public final class TokenSelectVote extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int k;
    private final ForcedKeys forced;

    public TokenSelectVote(int k, ForcedKeys forced) {
        this.forced = Checks.notNull("forced", forced);
        this.k = PerRowSelection.checkK(k, forced);
    }

    @Override
    public String name() {
        return "tokenSelectVote(" + k + ")" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        HeadLayout[] perBatch = new HeadLayout[ctx.shape().batch()];
        for (int b = 0; b < perBatch.length; b++) {
            perBatch[b] = PerRowSelection.layout(ctx, forced, select(ctx, q, kt, b));
        }
        return Plans.perSlice(ctx, (b, h) -> perBatch[b], name());
    }

    /** The voted selection of batch entry {@code b}: per row, sorted keys (the oracle too). */
    public int[][] select(PlanContext ctx, Tensor q, Tensor kt, int b) {
        int d = ctx.shape().headDim();
        int heads = ctx.shape().qHeads();
        float[][] qs = new float[heads][];
        float[][] ks = new float[ctx.shape().kvHeads()][];
        for (int h = 0; h < heads; h++) {
            qs[h] = Vectors.rows(q, b, h);
        }
        for (int h = 0; h < ks.length; h++) {
            ks[h] = Vectors.rows(kt, b, h);
        }
        double scale = 1.0 / Math.sqrt(d);
        double[] buf = new double[Math.max(1, ctx.keyLength())];
        return PerRowSelection.select(ctx, k, forced, (row, last, s) -> {
            java.util.Arrays.fill(s, 0, last + 1, 0f);
            for (int h = 0; h < heads; h++) {
                float[] kr = ks[ctx.shape().kvHeadOf(h)];
                double max = Double.NEGATIVE_INFINITY;
                for (int key = 0; key <= last; key++) {
                    buf[key] = scale * Vectors.dot(qs[h], row, kr, key, d);
                    max = Math.max(max, buf[key]);
                }
                double sum = 0;
                for (int key = 0; key <= last; key++) {
                    buf[key] = Math.exp(buf[key] - max);
                    sum += buf[key];
                }
                for (int key = 0; key <= last; key++) {
                    s[key] += (float) (buf[key] / sum);
                }
            }
        });
    }

    /** Every head's every visible score: exactly dense Q·Kᵀ. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return dev.sparsa.patterns.EstimatorCost.denseScoreMacs(ctx);
    }
}
