package dev.sparsa.cuda;

import static dev.sparsa.cuda.EstimateCases.assertClose;
import static dev.sparsa.cuda.EstimateData.rows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cuda.EstimateData.Data;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link TopKPerQuery} estimated on the device ({@link CudaTopKQueryEstimatedPlan}) against its CPU
 * twin: the selection equals {@code select} row for row, the device plan's lists equal those of
 * {@link CudaTopKQueryEstimatedPlan#hostLayout} built from the CPU selection, attention over the
 * device plan gives the same output and LSE bits as over that host-built plan, and stays within the
 * kernel's rounding of the host-planned road ({@code TopKPerQuery.plan}, the same pairs in another
 * tiling); host tensors take the host path, and {@code Attention.forward} on device tensors takes the
 * device road. Causal and not, query offsets, Nq ≠ Nk, lengths not multiples of the tile, sinks and
 * windows (none too), k above the visible keys, f32/f16/bf16, GQA, both geometries; random data and
 * data built to tie (constant keys, repeated keys, zero queries). Needs a GPU: skipped where the
 * backend is unavailable.
 */
@Tag("gpu")
class CudaTopKQueryEstimateGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    record Case(long seed, DType dtype, int geometry, int k, int sinks, int window, boolean causal, int batch,
                int kvHeads, int group, int nq, int nk, int dim, Data data) {
        @Override
        public String toString() {
            return "seed " + seed + " " + dtype + " g" + geometry + " k" + k + " sinks" + sinks + " window" + window
                    + (causal ? " causal" : "") + " b" + batch + " kv" + kvHeads + "x" + group + " nq" + nq + " nk" + nk
                    + " d" + dim + " " + data;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        DType[] types = {DType.BF16, DType.F16, DType.F32};
        Data[] kinds = Data.values();
        for (int i = 0; i < 48; i++) {
            SplittableRandom r = new SplittableRandom(900 + i);
            int g = i % 2 == 0 ? 64 : 128;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1200);
            int nq = switch (r.nextInt(3)) {
                case 0 -> nk;                       // no offset
                case 1 -> r.nextInt(1, nk + 1);     // causal: a query offset nk − nq, any value
                default -> r.nextInt(1, 900);       // Nq ≠ Nk, above Nk too (a negative offset)
            };
            int k = r.nextInt(4) == 0 ? nk + r.nextInt(1, 50) : r.nextInt(1, Math.max(2, nk / 3));
            int sinks = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 40);
            int window = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 300);
            out.add(Arguments.of(new Case(900 + i, types[i % 3], g, k, sinks, window, causal, r.nextInt(1, 3),
                    r.nextInt(1, 3), new int[] {1, 2, 4}[r.nextInt(3)], nq, nk, new int[] {64, 128}[r.nextInt(2)],
                    kinds[(i / 6) % kinds.length])));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void theDeviceSelectsWhatTheCpuTwinSelectsAndRunsTheSameBits(Case c) {
        AttentionShape s = new AttentionShape(c.batch(), c.kvHeads() * c.group(), c.kvHeads(), c.nq(), c.nk(), c.dim(), c.dim());
        Options o = Options.defaults().withCausal(c.causal()).withGeometry(new TileGeometry(c.geometry(), c.geometry()));
        PlanContext ctx = PlanContext.of(s, o);
        TopKPerQuery pattern = new TopKPerQuery(c.k(), new ForcedKeys(c.sinks(), c.window()));
        assertNull(CudaTopKQueryEstimatedPlan.refusal(pattern, ctx), c.toString());
        Problems.Qkv p = EstimateData.qkv(c.seed(), s, c.dtype(), c.data());
        // the host road in the device plan's form: per-row lists of the CPU selection
        SparsePlan.Builder twin = SparsePlan.builder(ctx).describe("per-row lists of " + pattern.name());
        List<int[][]> cpuSel = new ArrayList<>();
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                int[][] sel = pattern.select(ctx, rows(p.q(), b, h), rows(p.k(), b, s.kvHeadOf(h)));
                cpuSel.add(sel);
                twin.slice(b, h, CudaTopKQueryEstimatedPlan.hostLayout(ctx, pattern.forced(), sel));
            }
        }
        SparsePlan hostPlan = twin.build();
        CudaDevice dev = BACKEND.device();
        DType outType = c.dtype();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor outHost = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outDev = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outPlan = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor lseHost = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lseDev = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lsePlan = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             PreparedPlan prepared = BACKEND.prepare(hostPlan, Device.cuda(dev.ordinal()));
             CudaTopKQueryEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            BACKEND.forward(prepared, q, k, v, outHost, lseHost, o.run());
            BACKEND.forward(est, q, k, v, outDev, lseDev, o.run());
            assertTrue(CudaBackend.lastKernel().startsWith(CudaTopKQueryEstimatedPlan.KERNELS + "+"), CudaBackend.lastKernel());
            for (int b = 0; b < s.batch(); b++) {
                for (int h = 0; h < s.qHeads(); h++) {
                    int slice = b * s.qHeads() + h;
                    int[][] cpu = cpuSel.get(slice);
                    int[][] gpu = est.selection(slice);
                    assertEquals(cpu.length, gpu.length, c + " rows");
                    EstimateCases.assertRows(cpu, gpu, c + " slice " + slice);
                    HeadLayout hl = hostPlan.layouts().get(hostPlan.layoutIndex(b, h));
                    EstimateCases.assertLists(hl, est.lists(slice), c + " slice " + slice);
                }
            }
            float[] dev0 = outDev.toHost().toFloatArray();
            float[] lse0 = lseDev.toHost().toFloatArray();
            assertArrayEquals(outHost.toHost().toFloatArray(), dev0, c + ": output bits");
            assertArrayEquals(lseHost.toHost().toFloatArray(), lse0, c + ": LSE bits");
            // the host-planned road: the same pairs, tiled by the token-set encoder (another summation order)
            try (PreparedPlan planned = BACKEND.prepare(pattern.plan(ctx, p.q(), p.k()), Device.cuda(dev.ordinal()))) {
                BACKEND.forward(planned, q, k, v, outPlan, lsePlan, o.run());
            }
            float tol = c.dtype() == DType.F32 ? 1e-4f : 3e-2f;
            assertClose(outPlan.toHost().toFloatArray(), dev0, tol, c + ": output against the host-planned road");
            assertClose(lsePlan.toHost().toFloatArray(), lse0, 1e-3f, c + ": LSE against the host-planned road");
        }
    }

    @Test
    void aScratchOfAFewRowGroupsRunsManyChunksAndSelectsTheSame() {
        // 3 slices of 19 row groups: chunks of 1 and of 2 groups (these span two slices) and all at once
        AttentionShape s = new AttentionShape(1, 3, 3, 300, 700, 128, 128);
        for (boolean causal : new boolean[] {true, false}) {
            Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64));
            PlanContext ctx = PlanContext.of(s, o);
            TopKPerQuery pattern = new TopKPerQuery(150, new ForcedKeys(8, 64));
            Problems.Qkv p = EstimateData.qkv(31, s, DType.BF16, Data.RANDOM);
            CudaDevice dev = BACKEND.device();
            for (long budget : new long[] {1, 2L * 16 * 700 * 4, 1L << 30}) {
                try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
                     Tensor v = CudaTensors.upload(dev, p.v());
                     Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 3, 300, 128);
                     CudaTopKQueryEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()),
                             budget)) {
                    BACKEND.forward(est, q, k, v, out, null, o.run());
                    for (int h = 0; h < 3; h++) {
                        int[][] cpu = pattern.select(ctx, rows(p.q(), 0, h), rows(p.k(), 0, h));
                        int[][] gpu = est.selection(h);
                        EstimateCases.assertRows(cpu, gpu, "causal " + causal + " budget " + budget + " head " + h);
                    }
                }
            }
        }
    }

    @Test
    void repeatedCallsOnTheCallersStreamFollowNewInputs() {
        AttentionShape s = new AttentionShape(1, 4, 2, 700, 900, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        TopKPerQuery pattern = new TopKPerQuery(96, new ForcedKeys(16, 128));
        CudaDevice dev = BACKEND.device();
        try (CudaTopKQueryEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            EstimateCases.assertStreamFollowsNewInputs(BACKEND, est, ctx, o, p -> twin(ctx, pattern, p));
        }
    }

    @Test
    void hostTensorsTakeTheHostPath() {
        TopKPerQuery pattern = new TopKPerQuery(40, new ForcedKeys(4, 64));
        EstimateCases.assertHostTensorsTakeTheHostPath(BACKEND,
                ctx -> BACKEND.prepareEstimated(pattern, ctx, Device.cuda(BACKEND.device().ordinal())),
                (ctx, p) -> pattern.plan(ctx, p.q(), p.k()));
    }

    @Test
    void theFacadeEstimatesOnTheDeviceForDeviceTensors() {
        AttentionShape s = new AttentionShape(1, 8, 2, 777, 777, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(128, 128)).withDispatch(Dispatch.SPARSE);
        PlanContext ctx = PlanContext.of(s, o);
        TopKPerQuery pattern = new TopKPerQuery(64, new ForcedKeys(8, 64));
        Problems.Qkv p = Problems.qkv(31, s, DType.BF16, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor out = CudaTensors.allocate(dev, o.run().outputTypeFor(DType.BF16), Layout.BHSD, 1, 8, 777, 128);
             Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 8, 777, 1);
             PreparedPlan prepared = BACKEND.prepare(twin(ctx, pattern, p), Device.cuda(dev.ordinal()))) {
            AttentionResult onDevice = Attention.forwardWithLse(q, k, v, pattern, o);
            try {
                assertEquals(Ran.DEVICE_ESTIMATED, onDevice.dispatch().get(0).ran(), onDevice.dispatch().get(0).toString());
                assertTrue(CudaBackend.lastKernel().startsWith(CudaTopKQueryEstimatedPlan.KERNELS + "+"),
                        CudaBackend.lastKernel());
                BACKEND.forward(prepared, q, k, v, out, lse, o.run());
                assertArrayEquals(out.toHost().toFloatArray(), onDevice.output().toHost().toFloatArray(), "outputs");
                assertArrayEquals(lse.toHost().toFloatArray(), onDevice.lse().toHost().toFloatArray(), "LSEs");
            } finally {
                onDevice.output().close();
                onDevice.lse().close();
            }
            // AUTO: 64 + 8 + 64 keys of a row's up to 777 visit about a third of the causal pairs
            AttentionResult auto = Attention.forwardWithLse(q, k, v, pattern, o.withDispatch(Dispatch.AUTO));
            assertEquals(Ran.DEVICE_ESTIMATED, auto.dispatch().get(0).ran(), auto.dispatch().get(0).toString());
            auto.output().close();
            auto.lse().close();
        }
    }

    /** The per-row lists of the CPU selection, every slice: the host road in the device plan's form. */
    private static SparsePlan twin(PlanContext ctx, TopKPerQuery pattern, Problems.Qkv p) {
        AttentionShape s = ctx.shape();
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe("per-row lists of " + pattern.name());
        for (int bi = 0; bi < s.batch(); bi++) {
            for (int h = 0; h < s.qHeads(); h++) {
                int[][] sel = pattern.select(ctx, rows(p.q(), bi, h), rows(p.k(), bi, s.kvHeadOf(h)));
                b.slice(bi, h, CudaTopKQueryEstimatedPlan.hostLayout(ctx, pattern.forced(), sel));
            }
        }
        return b.build();
    }
}
