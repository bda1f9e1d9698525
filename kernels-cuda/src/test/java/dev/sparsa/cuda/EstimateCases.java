package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Checks the device-estimate GPU tests share: a device plan's lists against a host layout's, repeated
 * calls of one plan on a caller's stream against host-built plans, and host tensors taking the host
 * path. Each throws the assertion error of the first difference.
 */
final class EstimateCases {
    private EstimateCases() {
    }

    /** Names of the eight lists of {@link HeadLayout}, in the order of the plans' {@code lists(slice)}. */
    static final String[] LIST_NAMES = {"full offsets", "full blocks", "partial offsets", "partial blocks",
        "gather offsets", "gathered keys", "unconditional offsets", "unconditional keys"};

    /**
     * Asserts that {@code lists} (a plan's {@code lists(slice)}) equal {@code hl}'s full offsets and
     * blocks, partial offsets and blocks, gather offsets and keys, unconditional offsets and keys, each
     * failure named {@code where} and the list's name.
     */
    static void assertLists(HeadLayout hl, int[][] lists, String where) {
        int[][] want = {hl.fullOffsets(), hl.fullBlocks(), hl.partialOffsets(), hl.partialBlocks(),
            hl.gatherOffsets(), hl.gatherKeys(), hl.unconditionalOffsets(), hl.unconditionalKeys()};
        for (int j = 0; j < want.length; j++) {
            assertArrayEquals(want[j], lists[j], where + " " + LIST_NAMES[j]);
        }
    }

    /**
     * For seeds 1 to 3: random bf16 Q, K, V of {@code ctx}'s shape ({@link Problems#qkv}, BHSD), then on
     * one new stream {@code est} and the plan {@code hostPlan} makes of them, each into its own output
     * without LSE; asserts the outputs' bits equal per seed.
     */
    static void assertStreamFollowsNewInputs(CudaBackend backend, CudaDeviceEstimatedPlan est, PlanContext ctx,
                                             Options o, Function<Problems.Qkv, SparsePlan> hostPlan) {
        AttentionShape s = ctx.shape();
        CudaDevice dev = backend.device();
        try (CudaStream stream = new CudaStream(dev)) {
            for (long seed = 1; seed <= 3; seed++) {
                Problems.Qkv p = Problems.qkv(seed, s, DType.BF16, Layout.BHSD);
                SparsePlan plan = hostPlan.apply(p);
                try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
                     Tensor v = CudaTensors.upload(dev, p.v());
                     Tensor a = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, s.batch(), s.qHeads(),
                             s.queryLength(), s.valueDim());
                     Tensor b = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, s.batch(), s.qHeads(),
                             s.queryLength(), s.valueDim());
                     PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()))) {
                    backend.forwardAsync(est, q, k, v, b, null, o.run(), stream);
                    backend.forwardAsync(prepared, q, k, v, a, null, o.run(), stream);
                    stream.synchronize();
                    assertArrayEquals(a.toHost().toFloatArray(), b.toHost().toFloatArray(), "seed " + seed);
                }
            }
        }
    }

    /**
     * On shape (1, 4 heads over 2, 600 × 600, dim 64), causal, 64 × 64 tiles, random f16 host Q, K, V
     * of seed 9: asserts that the plan {@code prepare} makes, run on those host tensors, gives the bits
     * of the plan {@code plan} makes of them.
     */
    static void assertHostTensorsTakeTheHostPath(CudaBackend backend,
                                                 Function<PlanContext, CudaDeviceEstimatedPlan> prepare,
                                                 BiFunction<PlanContext, Problems.Qkv, SparsePlan> plan) {
        AttentionShape s = new AttentionShape(1, 4, 2, 600, 600, 64, 64);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        Problems.Qkv p = Problems.qkv(9, s, DType.F16, Layout.BHSD);
        Tensor viaEstimate = Tensor.allocate(DType.F16, Layout.BHSD, 1, 4, 600, 64);
        Tensor viaPlan = Tensor.allocate(DType.F16, Layout.BHSD, 1, 4, 600, 64);
        try (CudaDeviceEstimatedPlan est = prepare.apply(ctx)) {
            backend.forward(est, p.q(), p.k(), p.v(), viaEstimate, null, o.run());
        }
        backend.forward(plan.apply(ctx, p), p.q(), p.k(), p.v(), viaPlan, null, o);
        assertArrayEquals(viaPlan.toFloatArray(), viaEstimate.toFloatArray());
    }
}
