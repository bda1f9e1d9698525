package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Checks and reference definitions the device-estimate tests share: a device plan's lists against a
 * host layout's, repeated calls of one plan on a caller's stream against host-built plans, host
 * tensors taking the host path, closeness within a tolerance (each check throws the assertion error
 * of the first difference); and, for the tests that model the per-row kernels on the host, the keys a
 * query row sees, the kernels' order key of a score and the pairs a layout admits.
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
     * Asserts that row {@code r} of {@code got} equals row {@code r} of {@code want}, for every row of
     * {@code want}, each failure named {@code where} and the row.
     */
    static void assertRows(int[][] want, int[][] got, String where) {
        for (int r = 0; r < want.length; r++) {
            int row = r;
            assertArrayEquals(want[r], got[r], () -> where + " row " + row);
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

    /** Equal within {@code tol · (1 + |want|)}, with infinities and NaN where the other has them. */
    static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            float a = want[i];
            float b = got[i];
            boolean same = Float.compare(a, b) == 0 || (Float.isFinite(a) && Math.abs(a - b) <= tol * (1 + Math.abs(a)));
            int at = i;
            assertTrue(same, () -> what + " at " + at + ": " + a + " vs " + b);
        }
    }

    /** Plans.lastVisibleKey + 1 of query row r (0 when it sees none). */
    static int visible(PlanContext ctx, int r) {
        long p = (long) r + ctx.queryOffset();
        long last = ctx.causal() ? Math.min(ctx.keyLength() - 1L, p) : ctx.keyLength() - 1L;
        return last < 0 ? 0 : (int) (last + 1);
    }

    /** tkOrder: smaller is better, NaN above every score, -0 as +0. */
    static int order(float v) {
        if (v != v) {
            return 0xFFFFFFFF;
        }
        int bits = Float.floatToRawIntBits(v == 0f ? 0f : v);
        bits ^= (bits >> 31) & 0x7FFFFFFF;
        return ~(bits ^ 0x80000000);
    }

    /** (row, key) pairs a layout admits, over all its tiles; asserts that none comes twice. */
    static Set<Long> pairs(HeadLayout h) {
        Set<Long> out = new TreeSet<>();
        for (int t = 0; t < h.tileCount(); t++) {
            for (int i = 0; i < h.rowCount(t); i++) {
                int row = h.row(t, i);
                h.forEachAdmittedKey(t, row, (key, w) -> assertTrue(out.add((long) row << 32 | key), "a pair twice"));
            }
        }
        return out;
    }
}
