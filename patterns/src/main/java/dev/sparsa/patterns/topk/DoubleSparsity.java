package dev.sparsa.patterns.topk;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * Double Sparsity's approximate top-k (Yang et al., "Post-Training Sparse Attention with Double
 * Sparsity"): scores are {@code Σ_{c ∈ C} q_c·k_c} over a given subset {@code C} of channels (found
 * offline, e.g. the outlier channels), and each row keeps its {@code k} best visible keys (ties to
 * the lower key) besides its {@link ForcedKeys}. Cost O(Nq · N · |C|).
 *
 * <p>Throws {@link IllegalArgumentException} if the channel set is empty, has repeats or (at plan time) a
 *     channel outside {@code [0, headDim)}; if {@code k < 0}, or {@code k == 0} with nothing forced
 */
public final class DoubleSparsity extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int[] channels;
    private final int k;
    private final ForcedKeys forced;

    public DoubleSparsity(int[] channels, int k, ForcedKeys forced) {
        if (channels == null || channels.length == 0) {
            throw new IllegalArgumentException("channels: need at least one channel index");
        }
        int[] s = channels.clone();
        Arrays.sort(s);
        for (int i = 0; i < s.length; i++) {
            if (s[i] < 0 || (i > 0 && s[i] == s[i - 1])) {
                throw new IllegalArgumentException("channels: need distinct non-negative indices, got " + Arrays.toString(channels));
            }
        }
        this.channels = s;
        this.forced = Checks.notNull("forced", forced);
        this.k = PerRowSelection.checkK(k, forced);
    }

    @Override
    public String name() {
        return "doubleSparsity(" + k + ", " + channels.length + " channels)" + forced;
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor kt) {
        Plans.checkInputs(ctx, q, kt);
        int d = ctx.shape().headDim();
        if (channels[channels.length - 1] >= d) {
            throw new IllegalArgumentException("channels: index " + channels[channels.length - 1] + " outside [0, " + d + ")");
        }
        return Plans.perSliceParallel(ctx, (b, h) -> {
            float[] qr = Vectors.rows(q, b, h);
            float[] kr = Vectors.rows(kt, b, ctx.shape().kvHeadOf(h));
            int[][] sel = PerRowSelection.select(ctx, k, forced, (row, last, s) -> {
                for (int key = 0; key <= last; key++) {
                    float acc = 0;
                    for (int c : channels) {
                        acc += qr[row * d + c] * kr[key * d + c];
                    }
                    s[key] = acc;
                }
            });
            return PerRowSelection.layout(ctx, forced, sel);
        }, name(), q, kt);
    }

    /** Partial scores over |C| channels: dense · |C| / D. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return dev.sparsa.patterns.EstimatorCost.denseScoreMacs(ctx) * channels.length / ctx.shape().headDim();
    }
}
