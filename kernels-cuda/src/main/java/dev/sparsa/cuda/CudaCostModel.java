package dev.sparsa.cuda;

import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.LinearCostModel.Coefficients;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.PlanFeatures;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import java.util.EnumMap;
import java.util.Map;

/**
 * The CUDA kernels' cost model, derived from the H200 figures in docs/PERFORMANCE.md, not fitted on
 * the device it runs on (the dispatch only needs it to rank plans of one call):
 *
 * <ul>
 *   <li>matrix products at the measured dense rates, spread over the device's multiprocessors: the
 *       Hopper (wgmma) kernel 398 TFLOP/s (bf16, D 128, 128×128, N 32k), the mma.sync kernels 275
 *       TFLOP/s (the same shape on the kernel the Hopper one replaced); f32 runs CUDA-core FMA, for
 *       which no figure was measured: 1/8 of the mma.sync rate is assumed;
 *   <li>5 µs per tile (what a sliding-window tile costs beyond its pairs on the Hopper kernel);
 *   <li>a tile's rows padded to 64 (one warpgroup's wgmma, four warps of 16-row mma.sync, or the
 *       f32 kernel's 64-row sub-tile), so one-row tiles cost a 64-row tile; gathered keys cost what
 *       block keys do (both are copied by cp.async); element tests are free next to the products;
 *   <li>no GQA stacking: each CTA runs one query head.
 * </ul>
 */
final class CudaCostModel implements KernelCostModel {
    static final String SOURCE = "cuda: derived from the H200 figures of docs/PERFORMANCE.md (wgmma 398, mma.sync 275 "
            + "TFLOP/s dense, 5 us per tile; f32 rate assumed), not fitted on this device";
    static final int ROW_QUANTUM = 64;
    static final double TILE_NANOS = 5000;
    static final double HOPPER_TFLOPS = 398;
    static final double MMA_TFLOPS = 275;
    static final double F32_TFLOPS = MMA_TFLOPS / 8;

    private final LinearCostModel hopper;
    private final LinearCostModel mma;
    private final int computeCapability;

    /**
     * @param multiprocessors   the device's SM count (132 on the H200)
     * @param computeCapability {@code major * 10 + minor}, 0 when unknown
     */
    CudaCostModel(int multiprocessors, int computeCapability) {
        this.computeCapability = computeCapability;
        int sms = Math.max(1, multiprocessors);
        this.hopper = model(sms, HOPPER_TFLOPS);
        this.mma = model(sms, MMA_TFLOPS);
    }

    private static LinearCostModel model(int sms, double tflops) {
        Map<DType, Coefficients> c = new EnumMap<>(DType.class);
        c.put(DType.BF16, coefficients(tflops, sms));
        c.put(DType.F16, coefficients(tflops, sms));
        c.put(DType.F32, coefficients(F32_TFLOPS, sms));
        // e4m3 (the Hopper kernel at head dim 128) at the bf16 rate: no separate figure measured for the model
        c.put(DType.E4M3, coefficients(tflops, sms));
        return new LinearCostModel(SOURCE, ROW_QUANTUM, false, sms, c);
    }

    /** Per SM: 2 flops per (padded row, key, element of headDim + valueDim) at {@code tflops / sms}. */
    private static Coefficients coefficients(double tflops, int sms) {
        double nanosPerFlopPerSm = 1e9 / (tflops * 1e12 / sms);
        return new Coefficients(0, TILE_NANOS, 0, 2 * nanosPerFlopPerSm, 0, 0, 0, 0, 0, 0);
    }

    @Override
    public String description() {
        return SOURCE;
    }

    @Override
    public double millis(SparsePlan plan, DType dtype) {
        LinearCostModel m = modelFor(plan.context(), dtype);
        return m.millis(PlanFeatures.of(plan, ROW_QUANTUM, false), dtype);
    }

    @Override
    public double denseMillis(PlanContext context, DType dtype) {
        return modelFor(context, dtype).denseMillis(context, dtype);
    }

    /** The Hopper kernel's rate where {@link KernelChoice} runs it, else the mma.sync kernels'. */
    private LinearCostModel modelFor(PlanContext ctx, DType dtype) {
        try {
            return KernelChoice.of(ctx.shape(), dtype, ctx.geometry(), 0, computeCapability).hopper() ? hopper : mma;
        } catch (IllegalArgumentException e) {
            return mma;  // a shape or geometry no CUDA kernel runs: priced as the mma.sync kernels
        }
    }
}
