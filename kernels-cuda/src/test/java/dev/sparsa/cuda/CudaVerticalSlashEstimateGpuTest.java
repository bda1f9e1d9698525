package dev.sparsa.cuda;

import static dev.sparsa.cuda.EstimateData.rows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
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
 * {@link VerticalSlashEstimator} estimated on the device ({@link CudaVsEstimatedPlan}) against its CPU
 * twin: the chosen columns and diagonals equal {@code select}'s bit for bit, the device plan's full,
 * partial and gathered lists equal those of the host plan ({@code plan}), and attention over the device
 * plan gives the same bits as over the host-planned one. Random data and data built to tie (constant
 * keys and queries, zero queries), a NaN scored row; causal and not, query offsets, Nq ≠ Nk, lengths
 * off the 64 grid, GQA, f32/f16/bf16, both geometries, both semantics the device builds. Needs a GPU:
 * skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaVerticalSlashEstimateGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    enum Data { RANDOM, CONSTANT, ZERO_QUERIES, NAN_ROW }

    record Case(long seed, DType dtype, int geometry, VsSemantics semantics, int vertical, int slash, int lastQueries,
                boolean causal, int batch, int kvHeads, int group, int nq, int nk, int dim, Data data) {
        @Override
        public String toString() {
            return "seed " + seed + " " + dtype + " g" + geometry + " " + semantics + " v" + vertical + " s" + slash
                    + " last" + lastQueries + (causal ? " causal" : "") + " b" + batch + " kv" + kvHeads + "x" + group
                    + " nq" + nq + " nk" + nk + " d" + dim + " " + data;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        DType[] types = {DType.BF16, DType.F16, DType.F32};
        Data[] kinds = Data.values();
        for (int i = 0; i < 64; i++) {
            SplittableRandom r = new SplittableRandom(900 + i);
            int g = i % 4 == 3 ? 128 : 64;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1500);
            // causal: any query offset nk - nq >= 0; not causal: any lengths
            int nq = causal ? (r.nextBoolean() ? nk : r.nextInt(1, nk + 1)) : r.nextInt(1, 1500);
            VsSemantics sem = i % 2 == 0 ? VsSemantics.BLOCK_EXPANDED : VsSemantics.GRID_EXPANDED;
            int last = r.nextInt(4) == 0 ? r.nextInt(1, 64) : 64;
            out.add(Arguments.of(new Case(900 + i, types[i % 3], g, sem, r.nextInt(1, 120), r.nextInt(1, 160), last,
                    causal, r.nextInt(1, 3), r.nextInt(1, 3), new int[] {1, 2}[r.nextInt(2)], nq, nk,
                    new int[] {64, 128}[r.nextInt(2)], kinds[(i / 8) % kinds.length])));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void theDeviceSelectsWhatTheCpuTwinSelectsAndRunsTheSameBits(Case c) {
        AttentionShape s = new AttentionShape(c.batch(), c.kvHeads() * c.group(), c.kvHeads(), c.nq(), c.nk(), c.dim(), c.dim());
        Options o = Options.defaults().withCausal(c.causal()).withGeometry(new TileGeometry(c.geometry(), c.geometry()));
        PlanContext ctx = PlanContext.of(s, o);
        VerticalSlashEstimator est = new VerticalSlashEstimator(c.vertical(), c.slash(), c.semantics(), c.lastQueries(),
                Double.NaN);
        assertNull(CudaVsEstimatedPlan.refusal(est, ctx), c.toString());
        Problems.Qkv p = data(c, s);
        SparsePlan hostPlan = est.plan(ctx, p.q(), p.k());
        CudaDevice dev = BACKEND.device();
        DType outType = c.dtype();
        try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
             Tensor v = CudaTensors.upload(dev, p.v());
             Tensor outHost = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor outDev = CudaTensors.allocate(dev, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
             Tensor lseHost = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             Tensor lseDev = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
             PreparedPlan prepared = BACKEND.prepare(hostPlan, Device.cuda(dev.ordinal()));
             CudaVsEstimatedPlan plan = BACKEND.prepareEstimated(est, ctx, Device.cuda(dev.ordinal()))) {
            BACKEND.forward(prepared, q, k, v, outHost, lseHost, o.run());
            BACKEND.forward(plan, q, k, v, outDev, lseDev, o.run());
            assertTrue(CudaBackend.lastKernel().startsWith("sparsa_vs_scores+"), CudaBackend.lastKernel());
            for (int b = 0; b < s.batch(); b++) {
                for (int h = 0; h < s.qHeads(); h++) {
                    int slice = b * s.qHeads() + h;
                    VerticalSlashEstimator.Selection cpu = est.select(ctx, rows(p.q(), b, h), rows(p.k(), b, s.kvHeadOf(h)));
                    VerticalSlashEstimator.Selection gpu = plan.selection(slice);
                    assertArrayEquals(cpu.columns(), gpu.columns(), c + " slice " + slice + " columns");
                    assertArrayEquals(cpu.diagonals(), gpu.diagonals(), c + " slice " + slice + " diagonals");
                    HeadLayout hl = hostPlan.layouts().get(hostPlan.layoutIndex(b, h));
                    int[][] lists = plan.lists(slice);
                    int tiles = (s.queryLength() + c.geometry() - 1) / c.geometry();
                    assertEquals(tiles, hl.tileCount(), c + " tiles");
                    assertArrayEquals(hl.fullOffsets(), lists[0], c + " slice " + slice + " full offsets");
                    assertArrayEquals(hl.fullBlocks(), lists[1], c + " slice " + slice + " full blocks");
                    assertArrayEquals(hl.partialOffsets(), lists[2], c + " slice " + slice + " partial offsets");
                    assertArrayEquals(hl.partialBlocks(), lists[3], c + " slice " + slice + " partial blocks");
                    assertArrayEquals(hl.gatherOffsets(), lists[4], c + " slice " + slice + " gather offsets");
                    assertArrayEquals(hl.gatherKeys(), lists[5], c + " slice " + slice + " gathered keys");
                    assertArrayEquals(new int[tiles + 1], hl.unconditionalOffsets(), c + " no unconditional keys");
                }
            }
            assertArrayEquals(outHost.toHost().toFloatArray(), outDev.toHost().toFloatArray(), c + ": output bits");
            assertArrayEquals(lseHost.toHost().toFloatArray(), lseDev.toHost().toFloatArray(), c + ": LSE bits");
        }
    }

    @Test
    void aLongCausalSliceWithMInferenceBudgets() {
        // the benchmark's budgets on a shorter sequence: many diagonals, ranges merging, far columns
        AttentionShape s = new AttentionShape(1, 4, 2, 4100, 4100, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        for (VsSemantics sem : new VsSemantics[] {VsSemantics.BLOCK_EXPANDED, VsSemantics.GRID_EXPANDED}) {
            VerticalSlashEstimator est = VerticalSlashEstimator.of(1000, 1000, sem);
            Problems.Qkv p = Problems.qkv(77, s, DType.BF16, Layout.BHSD);
            SparsePlan hostPlan = est.plan(ctx, p.q(), p.k());
            CudaDevice dev = BACKEND.device();
            try (Tensor q = CudaTensors.upload(dev, p.q()); Tensor k = CudaTensors.upload(dev, p.k());
                 Tensor v = CudaTensors.upload(dev, p.v());
                 Tensor a = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 4, 4100, 128);
                 Tensor b = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 4, 4100, 128);
                 PreparedPlan prepared = BACKEND.prepare(hostPlan, Device.cuda(dev.ordinal()));
                 CudaVsEstimatedPlan plan = BACKEND.prepareEstimated(est, ctx, Device.cuda(dev.ordinal()));
                 CudaStream stream = new CudaStream(dev)) {
                BACKEND.forwardAsync(plan, q, k, v, b, null, o.run(), stream);
                BACKEND.forwardAsync(prepared, q, k, v, a, null, o.run(), stream);
                stream.synchronize();
                for (int h = 0; h < 4; h++) {
                    VerticalSlashEstimator.Selection cpu = est.select(ctx, rows(p.q(), 0, h), rows(p.k(), 0, s.kvHeadOf(h)));
                    assertArrayEquals(cpu.columns(), plan.selection(h).columns(), sem + " head " + h + " columns");
                    assertArrayEquals(cpu.diagonals(), plan.selection(h).diagonals(), sem + " head " + h + " diagonals");
                }
                assertArrayEquals(a.toHost().toFloatArray(), b.toHost().toFloatArray(), sem + ": output bits");
            }
        }
    }

    /** Q, K, V of a case: random, or built so that scores tie. */
    private static Problems.Qkv data(Case c, AttentionShape s) {
        Problems.Qkv p = Problems.qkv(c.seed(), s, c.dtype(), Layout.BHSD);
        switch (c.data()) {
            case RANDOM -> { }
            case CONSTANT -> {
                EstimateData.fill(p.q(), 0.75f);
                EstimateData.fill(p.k(), 0.75f);
            }
            case ZERO_QUERIES -> EstimateData.signedZeros(p.q());
            case NAN_ROW -> {
                // head 0's last query row is NaN: its probabilities are NaN, and so are the columns it sees
                for (int b = 0; b < s.batch(); b++) {
                    p.q().fillRow(b, 0, s.queryLength() - 1, Float.NaN);
                }
            }
        }
        return p;
    }
}
