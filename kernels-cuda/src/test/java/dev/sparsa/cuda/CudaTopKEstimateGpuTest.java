package dev.sparsa.cuda;

import static dev.sparsa.cuda.EstimateData.rows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cuda.EstimateData.Data;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
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
 * {@link TopKPerQueryBlock} (pooled scoring) estimated on the device ({@link CudaTopKEstimatedPlan})
 * against its CPU twin: the selection equals {@code select} key for key, the device plan's block and
 * key lists equal those of the host plan ({@code plan}), and attention over the device plan gives the
 * same bits as over the host-planned one; host tensors take the host path. Causal and not, query
 * offsets, Nq ≠ Nk, lengths not multiples of the tile, sinks and windows, k above the visible keys,
 * f32/f16/bf16, GQA, both geometries, one chunk of tile groups or several; random data and data
 * built to tie (constant keys, repeated keys, zero queries). Needs a GPU: skipped where the backend is
 * unavailable.
 */
@Tag("gpu")
class CudaTopKEstimateGpuTest {
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
        for (int i = 0; i < 80; i++) {
            SplittableRandom r = new SplittableRandom(700 + i);
            int g = i % 2 == 0 ? 64 : 128;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1500);
            int nq = switch (r.nextInt(3)) {
                case 0 -> nk;                       // no offset
                case 1 -> r.nextInt(1, nk + 1);     // causal: a query offset nk − nq, any value
                default -> r.nextInt(1, 1500);      // Nq ≠ Nk, above Nk too (a negative offset)
            };
            int k = r.nextInt(4) == 0 ? nk + r.nextInt(1, 50) : r.nextInt(1, Math.max(2, nk / 3));
            int sinks = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 150);
            int window = r.nextInt(g, g + 600);
            out.add(Arguments.of(new Case(700 + i, types[i % 3], g, k, sinks, window, causal, r.nextInt(1, 3),
                    r.nextInt(1, 3), new int[] {1, 2}[r.nextInt(2)], nq, nk, new int[] {64, 128}[r.nextInt(2)],
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
        TopKPerQueryBlock pattern = new TopKPerQueryBlock(c.k(), new ForcedKeys(c.sinks(), c.window()),
                TopKPerQueryBlock.Scoring.POOLED_QUERY);
        assertNull(CudaTopKEstimatedPlan.refusal(pattern, ctx), c.toString());
        Problems.Qkv p = EstimateData.qkv(c.seed(), s, c.dtype(), c.data());
        SparsePlan hostPlan = pattern.plan(ctx, p.q(), p.k());
        CudaDevice dev = BACKEND.device();
        DType outType = c.dtype();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor outHost = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outDev = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor lseHost = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lseDev = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             PreparedPlan prepared = BACKEND.prepare(hostPlan, Device.cuda(dev.ordinal()));
             // every third case with a scores' scratch of two tile groups: several chunks
             CudaTopKEstimatedPlan est = c.seed() % 3 == 0
                     ? BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()), 4L * 16 * c.nk() * 2)
                     : BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            BACKEND.forward(prepared, q, k, v, outHost, lseHost, o.run());
            BACKEND.forward(est, q, k, v, outDev, lseDev, o.run());
            assertTrue(CudaBackend.lastKernel().startsWith(CudaTopKEstimatedPlan.KERNELS + "+"), CudaBackend.lastKernel());
            for (int b = 0; b < s.batch(); b++) {
                for (int h = 0; h < s.qHeads(); h++) {
                    int slice = b * s.qHeads() + h;
                    int[][] cpu = pattern.select(ctx, rows(p.q(), b, h), rows(p.k(), b, s.kvHeadOf(h)));
                    int[][] gpu = est.selection(slice);
                    assertEquals(cpu.length, gpu.length, c + " tiles");
                    for (int t = 0; t < cpu.length; t++) {
                        int tile = t;
                        assertArrayEquals(cpu[t], gpu[t], () -> c + " slice " + slice + " tile " + tile);
                    }
                    HeadLayout hl = hostPlan.layouts().get(hostPlan.layoutIndex(b, h));
                    EstimateCases.assertLists(hl, est.lists(slice), c + " slice " + slice);
                }
            }
            assertArrayEquals(outHost.toHost().toFloatArray(), outDev.toHost().toFloatArray(), c + ": output bits");
            assertArrayEquals(lseHost.toHost().toFloatArray(), lseDev.toHost().toFloatArray(), c + ": LSE bits");
        }
    }

    @Test
    void repeatedCallsOnTheCallersStreamFollowNewInputs() {
        AttentionShape s = new AttentionShape(1, 4, 2, 700, 900, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        TopKPerQueryBlock pattern = new TopKPerQueryBlock(96, new ForcedKeys(16, 128), TopKPerQueryBlock.Scoring.POOLED_QUERY);
        CudaDevice dev = BACKEND.device();
        try (CudaTopKEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            EstimateCases.assertStreamFollowsNewInputs(BACKEND, est, ctx, o, p -> pattern.plan(ctx, p.q(), p.k()));
        }
    }

    @Test
    void hostTensorsTakeTheHostPath() {
        TopKPerQueryBlock pattern = new TopKPerQueryBlock(40, new ForcedKeys(4, 64), TopKPerQueryBlock.Scoring.POOLED_QUERY);
        EstimateCases.assertHostTensorsTakeTheHostPath(BACKEND,
                ctx -> BACKEND.prepareEstimated(pattern, ctx, Device.cuda(BACKEND.device().ordinal())),
                (ctx, p) -> pattern.plan(ctx, p.q(), p.k()));
    }
}
