package dev.sparsa.cuda;

import static dev.sparsa.cuda.EstimateCases.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
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
 * {@link LightningIndexer} estimated on the device ({@link CudaLightningIndexerEstimatedPlan}) against
 * its CPU twin: the selection equals {@link LightningIndexer#select} row for row, bit for bit (the
 * device's index scores are the Java's f32 arithmetic), the device plan's lists equal those of {@link
 * CudaLightningIndexerEstimatedPlan#hostLayout} built from the CPU selection, attention over the device
 * plan gives the same output and LSE bits as over that host-built plan (every head of an entry mapped
 * to its layout), stays within the kernel's rounding of the host-planned road ({@code
 * LightningIndexer.plan}: the same pairs, tiled by the token-set encoder), and within the numerics
 * contract's tolerance of the fp64 oracle. Causal and not, query offsets, Nq ≠ Nk, odd lengths, top k
 * above the visible keys, MQA and GQA (and no sharing), f32/f16/bf16 attention and indexer inputs with
 * weights of any of the three, 1 to 6 indexer heads of 8 to 64 channels (some run a few heads at a
 * time), both geometries; random data and data built to tie (repeated keys, ReLU zeros). Also a
 * scratch of a few row groups (many chunks), repeated calls following new indexer inputs, and the
 * facade's device road, and host tensors taking the host path over copies of the indexer's inputs. Needs a GPU: skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaLightningIndexerEstimateGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    record Case(long seed, DType dtype, DType weights, int geometry, int topK, boolean causal, int batch, int kvHeads,
                int group, int nq, int nk, int dim, int indexerHeads, int indexerDim, IndexerData.Kind data) {
        @Override
        public String toString() {
            return "seed " + seed + " " + dtype + " w" + weights + " g" + geometry + " top" + topK
                    + (causal ? " causal" : "") + " b" + batch + " kv" + kvHeads + "x" + group + " nq" + nq + " nk" + nk
                    + " d" + dim + " indexer " + indexerHeads + "x" + indexerDim + " " + data;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        DType[] types = {DType.BF16, DType.F16, DType.F32};
        IndexerData.Kind[] kinds = IndexerData.Kind.values();
        for (int i = 0; i < 36; i++) {
            SplittableRandom r = new SplittableRandom(1300 + i);
            int g = i % 2 == 0 ? 64 : 128;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1300);
            int nq = switch (r.nextInt(3)) {
                case 0 -> nk;
                case 1 -> r.nextInt(1, nk + 1);
                default -> r.nextInt(1, 900);
            };
            int topK = r.nextInt(4) == 0 ? nk + r.nextInt(1, 50) : r.nextInt(1, Math.max(2, nk / 3));
            int kv = r.nextInt(1, 3);
            int group = new int[] {1, 4, 8, 32}[i % 4];
            int indexerHeads = r.nextInt(1, 7);
            int indexerDim = new int[] {8, 32, 64, 40}[r.nextInt(4)];
            out.add(Arguments.of(new Case(1300 + i, types[i % 3], types[(i / 3) % 3], g, topK, causal,
                    r.nextInt(1, 3), group == 32 ? 1 : kv, group, nq, nk, new int[] {64, 128}[r.nextInt(2)],
                    indexerHeads, indexerDim, kinds[(i / 4) % kinds.length])));
        }
        // DeepSeek's packing at a small scale: 32 heads over one KV head, 4 indexer heads of 32
        out.add(Arguments.of(new Case(1400, DType.BF16, DType.F32, 128, 256, true, 1, 1, 32, 2000, 2000, 128, 4, 32,
                IndexerData.Kind.RANDOM)));
        // an indexer too large for every head's queries in shared memory: a few heads at a time
        out.add(Arguments.of(new Case(1401, DType.BF16, DType.BF16, 64, 100, true, 1, 1, 8, 333, 900, 64, 64, 128,
                IndexerData.Kind.RANDOM)));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void theDeviceSelectsWhatTheCpuTwinSelectsAndRunsTheSameBits(Case c) {
        AttentionShape s = new AttentionShape(c.batch(), c.kvHeads() * c.group(), c.kvHeads(), c.nq(), c.nk(), c.dim(),
                c.dim());
        Options o = Options.defaults().withCausal(c.causal()).withGeometry(new TileGeometry(c.geometry(), c.geometry()));
        PlanContext ctx = PlanContext.of(s, o);
        IndexerInputs host = IndexerData.inputs(c.seed(), c.batch(), c.indexerHeads(), c.nq(), c.nk(), c.indexerDim(),
                c.dtype(), c.weights(), c.data());
        LightningIndexer onHost = LightningIndexer.of(c.topK(), host);
        List<int[][]> cpuSel = new ArrayList<>();
        SparsePlan.Builder twin = SparsePlan.builder(ctx).describe("per-row lists of " + onHost.name());
        for (int b = 0; b < s.batch(); b++) {
            int[][] sel = onHost.select(ctx, host, b);
            cpuSel.add(sel);
            HeadLayout layout = CudaLightningIndexerEstimatedPlan.hostLayout(ctx, sel);
            for (int h = 0; h < s.qHeads(); h++) {
                twin.slice(b, h, layout);
            }
        }
        SparsePlan hostPlan = twin.build();
        Problems.Qkv p = Problems.qkv(c.seed() * 7, s, c.dtype(), Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        Device where = Device.cuda(dev.ordinal());
        DType outType = c.dtype();
        try (Tensor iq = CudaTensors.upload(dev, host.queries()); Tensor ik = CudaTensors.upload(dev, host.keys());
             Tensor iw = CudaTensors.upload(dev, host.weights());
             Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor outHost = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outDev = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outPlan = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor lseHost = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lseDev = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lsePlan = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             PreparedPlan prepared = BACKEND.prepare(hostPlan, where)) {
            LightningIndexer onDevice = LightningIndexer.of(c.topK(), new IndexerInputs(iq, ik, iw));
            assertNull(CudaLightningIndexerEstimatedPlan.refusal(onDevice, ctx), c.toString());
            try (CudaLightningIndexerEstimatedPlan est = BACKEND.prepareEstimated(onDevice, ctx, where)) {
                BACKEND.forward(prepared, q, k, v, outHost, lseHost, o.run());
                BACKEND.forward(est, q, k, v, outDev, lseDev, o.run());
                String kernel = CudaBackend.lastKernel();
                assertTrue(kernel.startsWith(CudaLightningIndexerEstimatedPlan.KERNELS + "+"), c + ": " + kernel);
                if (c.dtype() != DType.F32 && (c.group() > 1 || c.nq() > DevicePlan.FEW_ROWS)) {
                    assertTrue(kernel.endsWith(KernelChoice.packed(s, c.dtype(), dev.maxSharedPerBlockOptin()).name()),
                            c + ": the gather kernel, got " + kernel);
                }
                for (int b = 0; b < s.batch(); b++) {
                    int[][] cpu = cpuSel.get(b);
                    int[][] gpu = est.selection(b);
                    assertEquals(cpu.length, gpu.length, c + " rows");
                    EstimateCases.assertRows(cpu, gpu, c + " entry " + b);
                    HeadLayout hl = hostPlan.layouts().get(hostPlan.layoutIndex(b, 0));
                    EstimateCases.assertLists(hl, est.lists(b), c + " entry " + b);
                }
            }
            Tensor gotOut = outDev.toHost();
            Tensor gotLse = lseDev.toHost();
            assertArrayEquals(outHost.toHost().toFloatArray(), gotOut.toFloatArray(), c + ": output bits");
            assertArrayEquals(lseHost.toHost().toFloatArray(), gotLse.toFloatArray(), c + ": LSE bits");
            // the host-planned road: the same pairs, tiled by the token-set encoder (another summation order)
            try (PreparedPlan planned = BACKEND.prepare(onHost.plan(ctx, p.q(), p.k()), where)) {
                BACKEND.forward(planned, q, k, v, outPlan, lsePlan, o.run());
            }
            float tol = c.dtype() == DType.F32 ? 1e-4f : 3e-2f;
            assertClose(outPlan.toHost().toFloatArray(), gotOut.toFloatArray(), tol, c + ": output against the host-planned road");
            assertClose(lsePlan.toHost().toFloatArray(), gotLse.toFloatArray(), 1e-3f, c + ": LSE against the host-planned road");
            // the fp64 oracle over the CPU selection
            ReferenceResult ref = ReferenceAttention.plan(hostPlan, p.q(), p.k(), p.v(), o);
            double err = ref.maxRelativeError(gotOut);
            assertTrue(err <= Problems.tolerance(c.dtype()), c + ": relative error " + err);
            double lseErr = ref.maxLseError(gotLse);
            assertTrue(lseErr <= (c.dtype() == DType.F32 ? 1e-4 : 1e-3), c + ": LSE error " + lseErr);
        }
    }

    @Test
    void aScratchOfAFewRowGroupsRunsManyChunksAndSelectsTheSame() {
        // 2 entries of 19 row groups: chunks of 1 and of 2 groups (these span two entries) and all at once
        AttentionShape s = new AttentionShape(2, 8, 1, 300, 700, 128, 128);
        for (boolean causal : new boolean[] {true, false}) {
            Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64));
            PlanContext ctx = PlanContext.of(s, o);
            IndexerInputs host = IndexerData.inputs(31, 2, 4, 300, 700, 32, DType.BF16, DType.F32, IndexerData.Kind.RANDOM);
            LightningIndexer onHost = LightningIndexer.of(150, host);
            Problems.Qkv p = Problems.qkv(32, s, DType.BF16, Layout.BHSD);
            CudaDevice dev = BACKEND.device();
            Device where = Device.cuda(dev.ordinal());
            for (long budget : new long[] {1, 2L * 16 * 700 * 4, 1L << 30}) {
                try (Tensor iq = CudaTensors.upload(dev, host.queries()); Tensor ik = CudaTensors.upload(dev, host.keys());
                     Tensor iw = CudaTensors.upload(dev, host.weights());
                     Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
                     Tensor v = CudaTensors.upload(dev, p.v());
                     Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 2, 8, 300, 128);
                     CudaLightningIndexerEstimatedPlan est = BACKEND.prepareEstimated(
                             LightningIndexer.of(150, new IndexerInputs(iq, ik, iw)), ctx, where, budget)) {
                    BACKEND.forward(est, q, k, v, out, null, o.run());
                    for (int b = 0; b < 2; b++) {
                        int[][] cpu = onHost.select(ctx, host, b);
                        int[][] gpu = est.selection(b);
                        EstimateCases.assertRows(cpu, gpu, "causal " + causal + " budget " + budget + " entry " + b);
                    }
                }
            }
        }
    }

    @Test
    void repeatedCallsOnTheCallersStreamFollowNewIndexerInputs() {
        AttentionShape s = new AttentionShape(1, 16, 2, 700, 900, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        CudaDevice dev = BACKEND.device();
        Device where = Device.cuda(dev.ordinal());
        Problems.Qkv p = Problems.qkv(3, s, DType.BF16, Layout.BHSD);
        IndexerInputs first = IndexerData.inputs(1, 1, 4, 700, 900, 32, DType.BF16, DType.F32, IndexerData.Kind.RANDOM);
        try (Tensor iq = CudaTensors.upload(dev, first.queries()); Tensor ik = CudaTensors.upload(dev, first.keys());
             Tensor iw = CudaTensors.upload(dev, first.weights());
             Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             CudaLightningIndexerEstimatedPlan est = BACKEND.prepareEstimated(
                     LightningIndexer.of(96, new IndexerInputs(iq, ik, iw)), ctx, where);
             CudaStream stream = new CudaStream(dev)) {
            for (long seed = 1; seed <= 3; seed++) {
                // the model writes new indexer outputs into the same device tensors between calls
                IndexerInputs host = IndexerData.inputs(seed, 1, 4, 700, 900, 32, DType.BF16, DType.F32,
                        seed == 2 ? IndexerData.Kind.REPEATED_KEYS : IndexerData.Kind.RANDOM);
                Tensor.copy(host.queries(), iq);
                Tensor.copy(host.keys(), ik);
                Tensor.copy(host.weights(), iw);
                LightningIndexer onHost = LightningIndexer.of(96, host);
                SparsePlan.Builder twin = SparsePlan.builder(ctx).describe("per-row lists");
                HeadLayout layout = CudaLightningIndexerEstimatedPlan.hostLayout(ctx, onHost.select(ctx, host, 0));
                for (int h = 0; h < 16; h++) {
                    twin.slice(0, h, layout);
                }
                try (Tensor a = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 16, 700, 128);
                     Tensor b = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 16, 700, 128);
                     PreparedPlan prepared = BACKEND.prepare(twin.build(), where)) {
                    BACKEND.forwardAsync(est, q, k, v, b, null, o.run(), stream);
                    BACKEND.forwardAsync(prepared, q, k, v, a, null, o.run(), stream);
                    stream.synchronize();
                    assertArrayEquals(a.toHost().toFloatArray(), b.toHost().toFloatArray(), "seed " + seed);
                }
            }
        }
    }

    @Test
    void hostTensorsTakeTheHostPathOverCopiesOfTheIndexersInputs() {
        AttentionShape s = new AttentionShape(1, 8, 2, 600, 600, 64, 64);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        IndexerInputs host = IndexerData.inputs(9, 1, 3, 600, 600, 32, DType.F16, DType.F16, IndexerData.Kind.RANDOM);
        Problems.Qkv p = Problems.qkv(9, s, DType.F16, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        Tensor viaEstimate = Tensor.allocate(DType.F16, Layout.BHSD, 1, 8, 600, 64);
        Tensor viaPlan = Tensor.allocate(DType.F16, Layout.BHSD, 1, 8, 600, 64);
        try (Tensor iq = CudaTensors.upload(dev, host.queries()); Tensor ik = CudaTensors.upload(dev, host.keys());
             Tensor iw = CudaTensors.upload(dev, host.weights());
             CudaLightningIndexerEstimatedPlan est = BACKEND.prepareEstimated(
                     LightningIndexer.of(40, new IndexerInputs(iq, ik, iw)), ctx, Device.cuda(dev.ordinal()))) {
            BACKEND.forward(est, p.q(), p.k(), p.v(), viaEstimate, null, o.run());
        }
        BACKEND.forward(LightningIndexer.of(40, host).plan(ctx, p.q(), p.k()), p.q(), p.k(), p.v(), viaPlan, null, o);
        assertArrayEquals(viaPlan.toFloatArray(), viaEstimate.toFloatArray());
    }

    @Test
    void theFacadeEstimatesOnTheDeviceForDeviceInputsAndPlansOnTheHostOtherwise() {
        AttentionShape s = new AttentionShape(1, 32, 1, 777, 777, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(128, 128)).withDispatch(Dispatch.SPARSE);
        PlanContext ctx = PlanContext.of(s, o);
        IndexerInputs host = IndexerData.inputs(5, 1, 4, 777, 777, 32, DType.BF16, DType.F32, IndexerData.Kind.RANDOM);
        Problems.Qkv p = Problems.qkv(31, s, DType.BF16, Layout.BHSD);
        CudaDevice dev = BACKEND.device();
        Device where = Device.cuda(dev.ordinal());
        // inputs in host memory, and the projected stand-in: the device estimate refuses them
        assertNull(BACKEND.prepareEstimated(LightningIndexer.of(64, host), ctx, where, Double.POSITIVE_INFINITY));
        assertNull(BACKEND.prepareEstimated(LightningIndexer.projected(64, 4, 32, 1), ctx, where, Double.POSITIVE_INFINITY));
        LightningIndexer onHost = LightningIndexer.of(64, host);
        SparsePlan.Builder twin = SparsePlan.builder(ctx).describe("per-row lists");
        HeadLayout layout = CudaLightningIndexerEstimatedPlan.hostLayout(ctx, onHost.select(ctx, host, 0));
        for (int h = 0; h < 32; h++) {
            twin.slice(0, h, layout);
        }
        try (Tensor iq = CudaTensors.upload(dev, host.queries()); Tensor ik = CudaTensors.upload(dev, host.keys());
             Tensor iw = CudaTensors.upload(dev, host.weights());
             Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor out = CudaTensors.allocate(dev, o.run().outputTypeFor(DType.BF16), Layout.BHSD, 1, 32, 777, 128);
             Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 32, 777, 1);
             PreparedPlan prepared = BACKEND.prepare(twin.build(), where)) {
            LightningIndexer pattern = LightningIndexer.of(64, new IndexerInputs(iq, ik, iw));
            AttentionResult onDevice = Attention.forwardWithLse(q, k, v, pattern, o);
            try {
                assertEquals(Ran.DEVICE_ESTIMATED, onDevice.dispatch().get(0).ran(), onDevice.dispatch().get(0).toString());
                assertTrue(CudaBackend.lastKernel().startsWith(CudaLightningIndexerEstimatedPlan.KERNELS + "+"),
                        CudaBackend.lastKernel());
                BACKEND.forward(prepared, q, k, v, out, lse, o.run());
                assertArrayEquals(out.toHost().toFloatArray(), onDevice.output().toHost().toFloatArray(), "outputs");
                assertArrayEquals(lse.toHost().toFloatArray(), onDevice.lse().toHost().toFloatArray(), "LSEs");
            } finally {
                onDevice.output().close();
                onDevice.lse().close();
            }
        }
    }
}
