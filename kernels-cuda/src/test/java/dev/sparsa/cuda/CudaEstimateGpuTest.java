package dev.sparsa.cuda;

import static dev.sparsa.cuda.EstimateData.rows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
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
 * {@link MeanPoolBlockTopK} estimated on the device ({@link CudaEstimatedPlan}) against its CPU twin:
 * the selection equals {@code select} block for block, the device plan's full and partial block lists
 * equal those of the host plan ({@code plan}), and attention over the device plan gives the same bits
 * as over the host-planned one; host tensors take the host path. Random data and data built to tie (equal pooled scores: repeated key
 * blocks, constant rows, zero queries), causal and not, with and without the diagonal, shorter last
 * blocks, GQA, f32/f16/bf16, both geometries; a query block that pools to NaN selects nothing. Needs a GPU: skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaEstimateGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    /** Data kinds: random rows, or rows built so that pooled scores tie. */
    enum Data { RANDOM, REPEATED_BLOCKS, CONSTANT, ZERO_QUERIES, NAN_FIRST_BLOCK }

    record Case(long seed, DType dtype, int geometry, int blockSize, int topBlocks, boolean keepDiagonal, boolean causal,
                int batch, int kvHeads, int group, int nq, int nk, int dim, Data data) {
        @Override
        public String toString() {
            return "seed " + seed + " " + dtype + " g" + geometry + " bs" + blockSize + " top" + topBlocks
                    + (keepDiagonal ? "+diag" : "") + (causal ? " causal" : "") + " b" + batch + " kv" + kvHeads + "x" + group
                    + " nq" + nq + " nk" + nk + " d" + dim + " " + data;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        DType[] types = {DType.BF16, DType.F16, DType.F32};
        Data[] kinds = Data.values();
        for (int i = 0; i < 80; i++) {
            SplittableRandom r = new SplittableRandom(500 + i);
            int g = i % 2 == 0 ? 64 : 128;
            int bs = g * (1 + r.nextInt(2));
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1400);
            // causal: the query offset nk - nq a multiple of 128 (any length when nq == nk)
            int nq = causal ? (r.nextBoolean() ? nk : nk - 128 * r.nextInt(0, 1 + (nk - 1) / 128)) : r.nextInt(1, 1400);
            if (causal && nq < 1) {
                nq = nk;
            }
            int kBlocks = (nk + bs - 1) / bs;
            int top = r.nextInt(4) == 0 ? kBlocks + 2 : r.nextInt(1, Math.max(2, kBlocks));
            out.add(Arguments.of(new Case(500 + i, types[i % 3], g, bs, top, (i / 4) % 2 == 0, causal, r.nextInt(1, 3),
                    r.nextInt(1, 3), new int[] {1, 2}[r.nextInt(2)], nq, nk, new int[] {64, 128}[r.nextInt(2)],
                    kinds[(i / 8) % kinds.length])));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void theDeviceSelectsWhatTheCpuTwinSelectsAndRunsTheSameBits(Case c) {
        AttentionShape s = new AttentionShape(c.batch(), c.kvHeads() * c.group(), c.kvHeads(), c.nq(), c.nk(), c.dim(), c.dim());
        Options o = Options.defaults().withCausal(c.causal()).withGeometry(new TileGeometry(c.geometry(), c.geometry()));
        PlanContext ctx = PlanContext.of(s, o);
        MeanPoolBlockTopK pattern = new MeanPoolBlockTopK(c.topBlocks(), c.blockSize(), c.keepDiagonal(), null);
        assertNull(CudaEstimatedPlan.refusal(pattern, ctx), c.toString());
        Problems.Qkv p = data(c, s);
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
             CudaEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            BACKEND.forward(prepared, q, k, v, outHost, lseHost, o.run());
            BACKEND.forward(est, q, k, v, outDev, lseDev, o.run());
            assertTrue(CudaBackend.lastKernel().startsWith("sparsa_est_pool+sparsa_est_select+sparsa_est_emit+"),
                    CudaBackend.lastKernel());
            for (int b = 0; b < s.batch(); b++) {
                for (int h = 0; h < s.qHeads(); h++) {
                    int slice = b * s.qHeads() + h;
                    int[][] cpu = pattern.select(ctx, rows(p.q(), b, h), rows(p.k(), b, s.kvHeadOf(h)));
                    int[][] gpu = est.selection(slice);
                    assertEquals(cpu.length, gpu.length, c + " query blocks");
                    for (int i = 0; i < cpu.length; i++) {
                        int qb = i;
                        assertArrayEquals(cpu[i], gpu[i], () -> c + " slice " + slice + " query block " + qb);
                    }
                    HeadLayout hl = hostPlan.layouts().get(hostPlan.layoutIndex(b, h));
                    int[][] lists = est.blockLists(slice);
                    int tiles = (s.queryLength() + c.geometry() - 1) / c.geometry();
                    assertEquals(tiles, hl.tileCount(), c + " tiles");
                    assertArrayEquals(hl.fullOffsets(), lists[0], c + " slice " + slice + " full offsets");
                    assertArrayEquals(hl.fullBlocks(), lists[1], c + " slice " + slice + " full blocks");
                    assertArrayEquals(hl.partialOffsets(), lists[2], c + " slice " + slice + " partial offsets");
                    assertArrayEquals(hl.partialBlocks(), lists[3], c + " slice " + slice + " partial blocks");
                    assertArrayEquals(new int[tiles + 1], hl.gatherOffsets(), c + " the host plan gathers nothing");
                    assertArrayEquals(new int[tiles + 1], hl.unconditionalOffsets(), c + " nor lists unconditional keys");
                }
            }
            assertArrayEquals(outHost.toHost().toFloatArray(), outDev.toHost().toFloatArray(), c + ": output bits");
            assertArrayEquals(lseHost.toHost().toFloatArray(), lseDev.toHost().toFloatArray(), c + ": LSE bits");
        }
    }

    @Test
    void repeatedCallsOnTheCallersStreamFollowNewInputs() {
        AttentionShape s = new AttentionShape(1, 4, 2, 700, 700, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        MeanPoolBlockTopK pattern = MeanPoolBlockTopK.minference(3);
        CudaDevice dev = BACKEND.device();
        try (CudaEstimatedPlan est = BACKEND.prepareEstimated(pattern, ctx, Device.cuda(dev.ordinal()))) {
            EstimateCases.assertStreamFollowsNewInputs(BACKEND, est, ctx, o, p -> pattern.plan(ctx, p.q(), p.k()));
        }
    }

    @Test
    void hostTensorsTakeTheHostPath() {
        MeanPoolBlockTopK pattern = new MeanPoolBlockTopK(2, 64, true, null);
        EstimateCases.assertHostTensorsTakeTheHostPath(BACKEND,
                ctx -> BACKEND.prepareEstimated(pattern, ctx, Device.cuda(BACKEND.device().ordinal())),
                (ctx, p) -> pattern.plan(ctx, p.q(), p.k()));
    }

    /** Q, K, V of a case: random, or built so that pooled scores tie. */
    private static Problems.Qkv data(Case c, AttentionShape s) {
        Problems.Qkv p = Problems.qkv(c.seed(), s, c.dtype(), Layout.BHSD);
        int bs = c.blockSize();
        switch (c.data()) {
            case RANDOM -> { }
            case REPEATED_BLOCKS -> {
                // key block j repeats key block j mod 2 (a shorter last block pools to a scaled mean)
                float[] row = new float[s.headDim()];
                for (int b = 0; b < s.batch(); b++) {
                    for (int h = 0; h < s.kvHeads(); h++) {
                        for (int r = 2 * bs; r < s.keyLength(); r++) {
                            p.k().readRow(b, h, r % (2 * bs), row, 0);
                            p.k().writeRow(b, h, r, row, 0);
                        }
                    }
                }
            }
            case CONSTANT -> {
                EstimateData.fill(p.q(), 0.75f);
                EstimateData.fill(p.k(), 0.75f);
            }
            case NAN_FIRST_BLOCK -> {
                // head 0's first query block pools to NaN: every score NaN, nothing selected (but the diagonal)
                for (int b = 0; b < s.batch(); b++) {
                    for (int r = 0; r < Math.min(bs, s.queryLength()); r++) {
                        p.q().fillRow(b, 0, r, Float.NaN);
                    }
                }
            }
            case ZERO_QUERIES -> EstimateData.signedZeros(p.q());
        }
        return p;
    }
}
