package dev.sparsa.cpu;

import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.LinearCostModel.Coefficients;
import dev.sparsa.tensor.DType;
import java.util.EnumMap;
import java.util.Map;

/**
 * The CPU kernel's cost model: a {@link LinearCostModel} whose coefficients were fitted (non-negative
 * least squares on relative error) to one-thread timings of the kernel on synthetic plans that span
 * its costs (dense, random blocks, windows and strides under element tests, gathered keys, one-row
 * and short tiles, GQA stacking), by {@code dev.sparsa.bench.CpuCostCalibration} on the 2-vCPU AMD
 * EPYC (Zen 5, AVX-512: 16 f32 lanes) machine of docs/PERFORMANCE.md. Rows are padded to the
 * kernel's lane count, GQA groups that share a layout are stacked, and the work is spread over the
 * backend's parallelism, as the kernel does. On another machine the ranking of plans, which is what
 * the dispatch uses, carries over better than the absolute times; rerun the calibration there to
 * refit (docs/architecture.md, "Dispatch").
 */
final class CpuCostModel {
    private CpuCostModel() {
    }

    /** Where the coefficients come from. */
    static final String SOURCE = "cpu: fitted to one-thread kernel timings on AMD EPYC Zen 5 (2 vCPU, AVX-512), "
            + "CpuCostCalibration";

    // CpuCostCalibration vector 9 (N 2048, worst fit error 23 % f32, 15 % bf16) and scalar 5 (N 512, 10 % and 7 %),
    // 2-vCPU AMD EPYC Zen 5 under load, thread CPU time, interleaved rounds; nanoseconds per unit
    static final Coefficients VECTOR_F32 = new Coefficients(1.12646e+06, 0.00000, 0.536960, 0.00873878, 0.814149,
            1.48762, 3.42644, 0.118479, 0.227552, 0.00000);
    static final Coefficients VECTOR_BF16 = new Coefficients(1.00750e+06, 0.00000, 0.480406, 0.00991377, 0.644829,
            1.69436, 3.58499, 0.0931807, 0.226979, 0.00000);
    static final Coefficients SCALAR_F32 = new Coefficients(566252, 0.00000, 0.00000, 0.269565, 9.38698, 0.00000,
            2.26167, 1.07401, 1.27873, 0.00000);
    static final Coefficients SCALAR_BF16 = new Coefficients(494056, 0.00000, 0.00000, 0.280327, 7.83868, 0.860784,
            0.707106, 1.39843, 1.68743, 0.00000);

    /** The model of a backend running {@code math} on {@code parallelism} workers. */
    static LinearCostModel of(TileMath math, int parallelism) {
        boolean vector = math.flavour() == KernelFlavour.VECTOR;
        Map<DType, Coefficients> c = new EnumMap<>(DType.class);
        c.put(DType.F32, vector ? VECTOR_F32 : SCALAR_F32);
        // f16 is widened in scalar code that HotSpot vectorises (F16C); it costs about what bf16 does
        c.put(DType.BF16, vector ? VECTOR_BF16 : SCALAR_BF16);
        c.put(DType.F16, vector ? VECTOR_BF16 : SCALAR_BF16);
        // e4m3 is widened in vectors like bf16 (5-6 % slower dense, not fitted): priced as the 16-bit types
        c.put(DType.E4M3, vector ? VECTOR_BF16 : SCALAR_BF16);
        return new LinearCostModel(SOURCE + " (" + math.description() + ")", math.lanes(), true, parallelism, c);
    }
}
