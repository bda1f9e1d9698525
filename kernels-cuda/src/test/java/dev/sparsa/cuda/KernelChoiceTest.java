package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Kernel selection and the refusals that name what the CUDA backend does not run. */
class KernelChoiceTest {
    private static final TileGeometry G64 = new TileGeometry(64, 64);
    private static final TileGeometry G128 = new TileGeometry(128, 128);

    @Test
    void picksTensorCoreKernelsForHalfTypes() {
        KernelChoice k = KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 128), DType.BF16, G128, 232448);
        assertEquals("sparsa_tc_bf16_d128_r128", k.name());
        assertEquals(128, k.threads(), "four warps of two 16-row m-tiles");
        assertEquals(128, k.rows());
        assertEquals(256, KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 256), DType.BF16, G128, 232448).threads());
        assertTrue(k.tensorCores());
        KernelChoice h = KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 80), DType.F16, G64, 232448);
        assertEquals("sparsa_tc_f16_d80_r64", h.name());
        assertEquals(128, h.threads());
    }

    @Test
    void packedListsRunTheGatherPipelinedKernelWhereCompiledAndTheSixtyFourRowKernelElsewhere() {
        KernelChoice g = KernelChoice.packed(AttentionShape.of(1, 32, 100, 100, 128), DType.BF16, 232448);
        assertEquals("sparsa_tcg_bf16_d128_r64", g.name());
        assertEquals(128, g.threads());
        assertEquals(64, g.rows());
        assertTrue(g.tensorCores());
        assertTrue(g.gatherPipelined());
        assertFalse(KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 128), DType.BF16, G64, 232448).gatherPipelined());
        assertEquals("sparsa_tcg_f16_d64_r64", KernelChoice.packed(AttentionShape.of(1, 8, 10, 10, 64), DType.F16, 0).name());
        // no gather-pipelined kernel for these dims: the 64-row kernel of a 64x64 plan, as before
        for (AttentionShape s : new AttentionShape[] {AttentionShape.of(1, 8, 10, 10, 96), AttentionShape.of(1, 8, 10, 10, 256),
                new AttentionShape(1, 8, 2, 10, 10, 128, 64)}) {
            assertEquals(KernelChoice.of(s, DType.BF16, G64, 0, 0), KernelChoice.packed(s, DType.BF16, 232448), s.toString());
        }
        // a device that cannot give the gather kernel its shared memory gets the 64-row kernel
        AttentionShape s = AttentionShape.of(1, 8, 10, 10, 128);
        assertEquals(KernelChoice.of(s, DType.BF16, G64, 0, 0), KernelChoice.packed(s, DType.BF16, 101376));
        assertThrows(IllegalArgumentException.class, () -> KernelChoice.packed(s, DType.F32, 0));
    }

    @Test
    void gatherKernelsTakeTheDeepestPipelineThatLeavesTwoCtasPerMultiprocessor() {
        for (java.util.List<Integer> p : KernelChoice.GATHER_DIMS) {
            int d = p.get(0);
            int dv = p.get(1);
            int stages = KernelChoice.gatherStages(d, dv);
            int bytes = KernelChoice.gatherSharedBytes(d, dv);
            int stage = 2 * 64 * ((d + 8) + (dv + 8)) + 8 * 64;  // K and V rows, key positions, log-weights
            assertTrue(stages >= 3, d + ": at least two chunks in flight while one is computed");
            assertTrue(2 * (bytes + 1024) <= 228 * 1024, d + ": two CTAs per multiprocessor, " + bytes);
            assertTrue(stages == 6 || 2 * (bytes + stage + 1024) > 228 * 1024, d + ": one more stage would not fit");
            assertTrue(bytes <= 166912, d + ": fits an A100 too");
        }
        assertEquals(3, KernelChoice.gatherStages(128, 128));
        assertEquals(6, KernelChoice.gatherStages(64, 64));
    }

    @Test
    void gatherKernelRunsOnlyWhereEveryRowOffsetFitsAnInt() {
        // offsets in 16-byte units (8 elements): the last key's is (keyLength - 1) * stride / 8
        assertTrue(KernelChoice.gatherOffsetsFit(32768, 8 * 128, 8 * 128));
        long keys = (Integer.MAX_VALUE - 1) / 128 + 1;  // (keys - 1) * 1024 / 8 is the largest that fits
        assertTrue(KernelChoice.gatherOffsetsFit(keys, 1024, 1024));
        assertFalse(KernelChoice.gatherOffsetsFit(keys + 1, 1024, 1024));
        assertFalse(KernelChoice.gatherOffsetsFit(keys + 1, 128, 1024), "the wider of the two strides decides");
        assertTrue(KernelChoice.gatherOffsetsFit(0, 1L << 40, 1L << 40), "no keys, no offsets");
        assertTrue(KernelChoice.gatherOffsetsFit(1, 1L << 40, 1L << 40), "one key at offset 0");
        AttentionShape fits = AttentionShape.of(1, 8, 10, 32768, 128);
        assertTrue(KernelChoice.packed(fits, DType.BF16, 0, 1024, 1024).gatherPipelined());
        AttentionShape past = AttentionShape.of(1, 8, 10, (int) keys + 1, 128);
        assertEquals(KernelChoice.of(past, DType.BF16, G64, 0, 0), KernelChoice.packed(past, DType.BF16, 0, 1024, 1024),
                "offsets past 2^31: the plain 64-row kernel");
    }

    @Test
    void picksTheExactKernelForF32WithSixtyFourRowSubTiles() {
        KernelChoice k = KernelChoice.of(AttentionShape.of(1, 1, 10, 10, 256), DType.F32, G128, 232448);
        assertEquals("sparsa_f32_d256", k.name());
        assertEquals(64, k.rows());
        assertFalse(k.tensorCores());
    }

    @Test
    void everyCompiledKernelFitsAnA100() {
        // sm_80 offers 163 KiB (166912 bytes) of opt-in shared memory per block
        java.util.List<int[]> dims = new java.util.ArrayList<>();
        KernelChoice.HEAD_DIMS.forEach(d -> dims.add(new int[] {d, d}));
        KernelChoice.MIXED_DIMS.forEach(p -> dims.add(new int[] {p.get(0), p.get(1)}));
        for (int[] d : dims) {
            for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                for (TileGeometry g : KernelChoice.GEOMETRIES) {
                    KernelChoice k = KernelChoice.of(new AttentionShape(1, 1, 1, 8, 8, d[0], d[1]), t, g, 166912);
                    assertTrue(k.sharedBytes() <= 166912, k.toString());
                }
            }
        }
    }

    @Test
    void e4m3RunsUnlessSwitchedOffAndTheCpuTakesItThen() {
        withE4m3Switch("false", () -> assertEquals("dtype: the CUDA backend's e4m3 kernels are switched off "
                + "(-Dsparsa.cuda.e4m3=false); the CPU backend runs e4m3 inputs",
                refusal(new AttentionShape(1, 32, 8, 8, 8, 128, 128), new TileGeometry(128, 128), 90)));
        withE4m3Switch(null, () -> assertTrue(KernelChoice.e4m3Enabled(), "on by default"));
        withE4m3Switch("TRUE", () -> assertTrue(KernelChoice.e4m3Enabled()));
    }

    /** Runs {@code body} with the e4m3 kernel enabled, restoring the property after. */
    static void withE4m3(Runnable body) {
        withE4m3Switch("true", body);
    }

    /** Runs {@code body} with {@link KernelChoice#E4M3_PROPERTY} set to {@code value} (null: unset), then restores it. */
    static void withE4m3Switch(String value, Runnable body) {
        String was = setE4m3Switch(value);
        try {
            body.run();
        } finally {
            setE4m3Switch(was);
        }
    }

    /** Sets {@link KernelChoice#E4M3_PROPERTY} to {@code value} (null: clears it); returns its previous value. */
    static String setE4m3Switch(String value) {
        return value == null ? System.clearProperty(KernelChoice.E4M3_PROPERTY)
                : System.setProperty(KernelChoice.E4M3_PROPERTY, value);
    }

    @Test
    void e4m3RunsTheHopperKernelAtHeadDim128AndIsRefusedElsewhere() {
        withE4m3(KernelChoiceTest::e4m3Routing);
    }

    private static void e4m3Routing() {
        TileGeometry g128 = new TileGeometry(128, 128);
        KernelChoice k = KernelChoice.of(new AttentionShape(1, 32, 8, 8, 8, 128, 128), DType.E4M3, g128, 232448, 90);
        assertEquals("sparsa_wg_e4m3_d128_r128", k.name());
        assertEquals(384, k.threads());
        assertEquals(128, k.rows());
        assertTrue(k.hopper() && k.tensorCores(), k.toString());
        // WgConfig<__nv_fp8_e4m3, 128>::SMEM: Q 16 KiB, 8 stages of K and Vᵀ (8 KiB each; turns of two chunks),
        // 4 V staging buffers of 8 KiB, key positions and log-weights, chunk descriptors, rows, info, mbarriers
        // (2 per stage, 3, and one per staging buffer), 1 KiB slack
        assertEquals(1024 + 16384 + 8 * 2 * 8192 + 32768 + 8 * 64 * 8 + 8 * 16 + 1024 + 64 + (2 * 8 + 3 + 4) * 8, k.sharedBytes());
        String[] refused = new String[5];
        refused[0] = refusal(AttentionShape.of(1, 1, 8, 8, 128), g128, 80);
        refused[1] = refusal(AttentionShape.of(1, 1, 8, 8, 64), g128, 90);
        refused[2] = refusal(AttentionShape.of(1, 1, 8, 8, 128), new TileGeometry(64, 64), 90);
        refused[3] = refusal(new AttentionShape(1, 129, 1, 8, 8, 128, 128), g128, 90);
        refused[4] = refusal(AttentionShape.of(1, 1, 8, 8, 128), g128, 0);
        for (String m : refused) {
            assertTrue(m != null && m.startsWith("dtype: the CUDA backend runs e4m3 on compute capability 9.0")
                    && m.endsWith("the CPU backend runs the others"), m);
        }
        assertTrue(refused[3].contains("129 heads"), refused[3]);
        String off = System.getProperty("sparsa.cuda.wgmma");
        System.setProperty("sparsa.cuda.wgmma", "false");
        try {
            assertTrue(refusal(AttentionShape.of(1, 1, 8, 8, 128), g128, 90) != null);
        } finally {
            if (off == null) {
                System.clearProperty("sparsa.cuda.wgmma");
            } else {
                System.setProperty("sparsa.cuda.wgmma", off);
            }
        }
    }

    private static String refusal(AttentionShape s, TileGeometry g, int cc) {
        try {
            KernelChoice.of(s, DType.E4M3, g, 0, cc);
            return null;
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    @Test
    void e4m3ScalesTravelPerHeadInBlocksOfTheKernelsWidth() {
        int m = KernelChoice.E4M3_MAX_HEADS;
        Tensor q = Tensor.ofE4m3(new byte[4 * 2 * 128], new float[] {0.5f, 1f, 2f, 4f}, Layout.BHSD, 1, 4, 2, 128);
        Tensor k = Tensor.ofE4m3(new byte[2 * 2 * 128], new float[] {3f}, Layout.BHSD, 1, 2, 2, 128);
        Tensor v = Tensor.ofE4m3(new byte[2 * 2 * 128], new float[] {0.25f, 8f}, Layout.BHSD, 1, 2, 2, 128);
        float[] s = CudaBackend.e4m3Scales(q, k, v);
        assertEquals(3 * m, s.length);
        assertEquals(List.of(0.5f, 1f, 2f, 4f, 0f), List.of(s[0], s[1], s[2], s[3], s[4]));
        assertEquals(List.of(3f, 3f, 0f), List.of(s[m], s[m + 1], s[m + 2]));
        assertEquals(List.of(0.25f, 8f, 0f), List.of(s[2 * m], s[2 * m + 1], s[2 * m + 2]));
    }

    @Test
    void refusesOtherGeometriesByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KernelChoice.of(AttentionShape.of(1, 1, 8, 8, 64), DType.BF16, new TileGeometry(32, 64), 0));
        assertTrue(e.getMessage().contains("64x64 and 128x128") && e.getMessage().contains("32x64"), e.getMessage());
    }

    @Test
    void refusesOtherHeadDimsClearly() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KernelChoice.of(AttentionShape.of(1, 1, 8, 8, 72), DType.F16, G64, 0));
        assertTrue(e.getMessage().startsWith("headDim:") && e.getMessage().contains("72"), e.getMessage());
        IllegalArgumentException v = assertThrows(IllegalArgumentException.class,
                () -> KernelChoice.of(new AttentionShape(1, 1, 1, 8, 8, 128, 96), DType.F16, G64, 0));
        assertTrue(v.getMessage().startsWith("valueDim:") && v.getMessage().contains("96"), v.getMessage());
    }

    @Test
    void mixedHeadAndValueDimsHaveTheirOwnKernels() {
        assertEquals("sparsa_tc_bf16_d192v128_r128",
                KernelChoice.of(new AttentionShape(1, 1, 1, 8, 8, 192, 128), DType.BF16, G128, 232448).name());
        assertEquals("sparsa_f32_d128v64",
                KernelChoice.of(new AttentionShape(1, 1, 1, 8, 8, 128, 64), DType.F32, G64, 232448).name());
        KernelChoice small = KernelChoice.of(new AttentionShape(1, 1, 1, 8, 8, 64, 128), DType.F16, G128, 232448);
        assertEquals(128, small.threads(), "two m-tiles per warp up to 128 wide");
    }

    @Test
    void refusesKernelsThatExceedTheDevicesSharedMemory() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KernelChoice.of(AttentionShape.of(1, 1, 8, 8, 256), DType.BF16, G128, 48 * 1024));
        assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
    }

    @Test
    void hopperRunsTheWgmmaKernelForHalfTypesAtHeadDims64And128On128RowTiles() {
        AttentionShape s = AttentionShape.of(1, 4, 100, 100, 128);
        KernelChoice b = KernelChoice.of(s, DType.BF16, G128, 232448, KernelChoice.HOPPER);
        assertEquals("sparsa_wg_bf16_d128_r128", b.name());
        assertEquals(384, b.threads(), "one producer and two consumer warpgroups");
        assertEquals(128, b.rows());
        assertTrue(b.hopper() && b.tensorCores());
        assertTrue(b.sharedBytes() <= 232448, "fits the H100/H200's opt-in shared memory");
        assertEquals("sparsa_wg_f16_d128_r128", KernelChoice.of(s, DType.F16, G128, 232448, 90).name());
        AttentionShape s64 = AttentionShape.of(1, 4, 100, 100, 64);
        KernelChoice b64 = KernelChoice.of(s64, DType.BF16, G128, 232448, KernelChoice.HOPPER);
        assertEquals("sparsa_wg_bf16_d64_r128", b64.name());
        assertEquals(384, b64.threads());
        // at D = 64 Q (128 rows) takes 16 KiB less, and eight stages of K and V of 16 KiB (turns of two chunks)
        // replace five of 32 KiB, each further stage with its key positions, log-weights, descriptor and two mbarriers
        assertEquals(b.sharedBytes() - 16 * 1024 - 5 * 32 * 1024 + 8 * 16 * 1024 + 3 * (64 * 8 + 16 + 2 * 8), b64.sharedBytes());
        assertEquals("sparsa_wg_f16_d64_r128", KernelChoice.of(s64, DType.F16, G128, 232448, 90).name());
        for (String name : new String[] {b.name(), b64.name()}) {
            assertTrue(KernelTable.NAMES.contains(name), name + " is compiled");
        }
        // WgConfig<__nv_bfloat16, 256>::SMEM: Q 64 KiB, two stages of K and V of
        // 32 KiB each, and the V ring's own full and empty mbarriers
        assertEquals(2, KernelChoice.wgStages(256, 2));
        assertEquals(1024 + 65536 + 2 * 2 * 32768 + 2 * 64 * 8 + 2 * 16 + 1024 + 64 + (2 * 2 + 3 + 2 * 2) * 8,
                KernelChoice.wgSharedBytes(256));
        assertTrue(KernelChoice.wgSharedBytes(256) <= 232448, "fits the H100/H200's opt-in shared memory");
        KernelChoice b256 = KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 256), DType.BF16, G128, 232448, 90);
        assertEquals(KernelChoice.wgSharedBytes(256), b256.sharedBytes());
        assertTrue(KernelTable.NAMES.contains(b256.name()), b256.name() + " is compiled");
    }

    @Test
    void everythingElseFallsBackToTheMmaSyncKernels() {
        AttentionShape s = AttentionShape.of(1, 4, 100, 100, 128);
        // other chips: A100 (80), Ada (89), Blackwell (100): the sm_90a image does not run there
        for (int cc : new int[] {0, 80, 89, 100}) {
            assertEquals("sparsa_tc_bf16_d128_r128", KernelChoice.of(s, DType.BF16, G128, 232448, cc).name(), "cc " + cc);
        }
        assertEquals("sparsa_tc_bf16_d128_r64", KernelChoice.of(s, DType.BF16, G64, 232448, 90).name(), "64-row tiles");
        assertEquals("sparsa_tc_bf16_d96_r128",
                KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 96), DType.BF16, G128, 232448, 90).name(), "head dim 96");
        assertEquals("sparsa_tc_bf16_d64v128_r128",
                KernelChoice.of(new AttentionShape(1, 4, 4, 100, 100, 64, 128), DType.BF16, G128, 232448, 90).name(),
                "head dim 64, value dim 128");
        assertEquals("sparsa_wg_bf16_d256_r128",
                KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 256), DType.BF16, G128, 232448, 90).name(),
                "head dim 256");
        assertEquals("sparsa_wg_f16_d256_r128",
                KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 256), DType.F16, G128, 232448, 90).name());
        assertEquals("sparsa_tc_bf16_d256_r128",
                KernelChoice.of(AttentionShape.of(1, 4, 100, 100, 256), DType.BF16, G128, 232448, 80).name(),
                "head dim 256 on an A100");
        assertEquals("sparsa_tc_bf16_d128v64_r128",
                KernelChoice.of(new AttentionShape(1, 4, 4, 100, 100, 128, 64), DType.BF16, G128, 232448, 90).name(),
                "value dim 64");
        assertEquals("sparsa_f32_d128", KernelChoice.of(s, DType.F32, G128, 232448, 90).name(), "f32 stays exact");
        assertEquals("sparsa_tc_bf16_d128_r128", KernelChoice.of(s, DType.BF16, G128, 150_000, 90).name(),
                "too little shared memory for the wgmma kernel");
        String old = System.getProperty("sparsa.cuda.wgmma");
        System.setProperty("sparsa.cuda.wgmma", "false");
        try {
            assertEquals("sparsa_tc_bf16_d128_r128", KernelChoice.of(s, DType.BF16, G128, 232448, 90).name(), "switched off");
        } finally {
            if (old == null) {
                System.clearProperty("sparsa.cuda.wgmma");
            } else {
                System.setProperty("sparsa.cuda.wgmma", old);
            }
        }
    }
}
