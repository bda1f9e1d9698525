package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.Availability;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend's decode rule from the shape alone, host code that runs without a GPU: caches in
 * CUDA memory, head dims 64, 128 and 256 with valueDim == headDim (e4m3: 64 and 128), in every dtype
 * and for any row count; e4m3 caches with an f16, bf16 or e4m3 query.
 */
class CudaDecodeRefusalTest {

    private static DecodeShape onGpu(DType dtype, int headDim, int valueDim, int rows) {
        return new DecodeShape(Device.cuda(0), dtype, headDim, valueDim, rows);
    }

    @Test
    void everyDimOfTheKernelsInEveryDtypeIsAccepted() {
        for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int d : new int[] {64, 128, 256}) {
                for (int rows : new int[] {1, 16, 64}) {
                    assertNull(CudaDecode.refusal(onGpu(t, d, d, rows)), t + " d" + d + " rows " + rows);
                    assertNull(CudaDecode.refusal(new DecodeShape(Device.cuda(3), t, d, d, rows)));
                }
            }
        }
    }

    @Test
    void e4m3CachesAreRefusedOnlyWhenTheSwitchIsOff() {
        KernelChoiceTest.withE4m3Switch("false", () -> assertEquals("cuda decode of e4m3 caches is switched off "
                + "(-Dsparsa.cuda.e4m3=false); the cpu backend decodes e4m3 caches in host memory",
                CudaDecode.refusal(onGpu(DType.E4M3, 128, 128, 1))));
        KernelChoiceTest.withE4m3Switch(null,
                () -> assertNull(CudaDecode.refusal(onGpu(DType.E4M3, 128, 128, 1)), "on by default"));
    }

    @Test
    void e4m3CachesRunAtHeadDims64And128WithAnF16Bf16OrE4m3Query() {
        KernelChoiceTest.withE4m3(this::e4m3Rules);
    }

    private void e4m3Rules() {
        for (int d : new int[] {64, 128}) {
            assertNull(CudaDecode.refusal(onGpu(DType.E4M3, d, d, 1)));
            assertEquals("sparsa_decode_e4m3_bf16_d" + d + "_mma", CudaDecode.kernelName(DType.E4M3, DType.BF16, d));
            assertEquals("sparsa_decode_e4m3_f16_d" + d + "_mma", CudaDecode.kernelName(DType.E4M3, DType.F16, d));
        }
        assertEquals("cuda decode runs e4m3 caches at head dims [64, 128] with valueDim == headDim, got (256, 256)",
                CudaDecode.refusal(onGpu(DType.E4M3, 256, 256, 1)));
        assertNull(CudaDecode.queryRefusal(DType.E4M3, query(DType.BF16, 32)));
        assertNull(CudaDecode.queryRefusal(DType.E4M3, query(DType.F16, 32)));
        assertNull(CudaDecode.queryRefusal(DType.E4M3, query(DType.E4M3, 128)));
        assertNull(CudaDecode.queryRefusal(DType.BF16, query(DType.BF16, 256)));
        assertEquals("sparsa_decode_e4m3_e4m3_d128_mma", CudaDecode.kernelName(DType.E4M3, DType.E4M3, 128));
        assertEquals("cuda decodes e4m3 caches with an f16, bf16 or e4m3 query, got f32 (the cpu backend takes any query"
                + " dtype)", CudaDecode.queryRefusal(DType.E4M3, query(DType.F32, 8)));
        assertEquals("cuda decodes e4m3 caches with an e4m3 query of at most 128 heads, got 129",
                CudaDecode.queryRefusal(DType.E4M3, query(DType.E4M3, 129)));
        // the shape's query dtype: what the call of an f32 query is refused with, asked before the call
        assertEquals(CudaDecode.queryRefusal(DType.E4M3, query(DType.F32, 8)),
                CudaDecode.refusal(new DecodeShape(Device.cuda(0), DType.E4M3, DType.F32, 128, 128, 1)));
        for (DType qt : new DType[] {DType.BF16, DType.F16, DType.E4M3}) {
            assertNull(CudaDecode.refusal(new DecodeShape(Device.cuda(0), DType.E4M3, qt, 64, 64, 2)), qt.toString());
        }
        // the 16-bit kernels keep their names
        assertEquals("sparsa_decode_bf16_d128_mma", CudaDecode.kernelName(DType.BF16, DType.BF16, 128));
        assertEquals("sparsa_decode_f32_d128", CudaDecode.kernelName(DType.F32, DType.F32, 128));
    }

    @Test
    void e4m3SharedMemoryIsTheRawRingPlusOneWidenedTilePerWarpAndFitsAHopperBlock() {
        // DecMma<T, 128, 12, 2, 16, uint8_t>: Q 16 × 136 × 2; per warp two stages of 2 × 16 rows of 144 bytes and
        // 16 × 24 bytes of offsets, positions and bands, and one widened tile of 2 × 16 × 136 × 2 bytes
        assertEquals(2 * 16 * 136 + 12 * (2 * (2 * 16 * 144 + 16 * 24) + 2 * 16 * 136 * 2),
                CudaDecode.kernelSharedBytes(DType.E4M3, 128));
        assertTrue(CudaDecode.kernelSharedBytes(DType.E4M3, 128) <= 227 * 1024);
        // the 16-bit kernels' figure is unchanged: Q, then per warp two stages of 2 × 16 rows of 136 elements
        assertEquals(2 * 16 * 136 + 12 * 2 * (2 * 2 * 16 * 136 + 16 * 24), CudaDecode.kernelSharedBytes(DType.BF16, 128));
    }

    @Test
    void theTensorCoreKernelRunsWhereItsSharedMemoryFitsTheCudaCoreOneElsewhere() {
        int hopper = 232448;
        int sm80 = 166912;
        int sm86 = 101376;
        assertEquals("sparsa_decode_bf16_d128_mma", CudaDecode.kernelFor(DType.BF16, DType.BF16, 128, hopper));
        assertEquals("sparsa_decode_e4m3_bf16_d128_mma", CudaDecode.kernelFor(DType.E4M3, DType.BF16, 128, hopper));
        // 12 warps' rings at head dim 128 need more than compute capability 8.x offers
        assertEquals("sparsa_decode_bf16_d128", CudaDecode.kernelFor(DType.BF16, DType.BF16, 128, sm80));
        assertEquals("sparsa_decode_f16_d128", CudaDecode.kernelFor(DType.F16, DType.F16, 128, sm86));
        assertEquals("sparsa_decode_f16_d64_mma", CudaDecode.kernelFor(DType.F16, DType.F16, 64, sm80));
        assertEquals("sparsa_decode_f32_d128", CudaDecode.kernelFor(DType.F32, DType.F32, 128, hopper));
        assertEquals("sparsa_decode_bf16_d256", CudaDecode.kernelFor(DType.BF16, DType.BF16, 256, hopper));
        // e4m3 has no CUDA-core kernel: refused where its tensor-core one does not fit
        assertNull(CudaDecode.deviceRefusal(DType.E4M3, 128, hopper));
        assertNull(CudaDecode.deviceRefusal(DType.E4M3, 64, sm80));
        assertNull(CudaDecode.deviceRefusal(DType.BF16, 128, sm86));
        assertEquals("cuda decodes e4m3 caches at head dim 128 with " + CudaDecode.kernelSharedBytes(DType.E4M3, 128)
                + " bytes of shared memory per block; this device offers 166912 (the cpu backend decodes e4m3 caches in "
                + "host memory)", CudaDecode.deviceRefusal(DType.E4M3, 128, sm80));
    }

    /** A host query of {@code heads} heads, one row of 16 (e4m3: codes 0 under scale 1). */
    private static Tensor query(DType t, int heads) {
        return t == DType.E4M3 ? Tensor.ofE4m3(new byte[heads * 16], new float[] {1}, Layout.BHSD, 1, heads, 1, 16)
                : Tensor.allocate(t, Layout.BHSD, 1, heads, 1, 16);
    }

    @Test
    void e4m3ScalesArePerHeadByValueQThenKThenV() {
        int n = CudaDecode.MAX_E4M3_KV_HEADS;
        Tensor k = Tensor.ofE4m3(new byte[3 * 16], new float[] {1, 2, 3}, Layout.BHSD, 1, 3, 1, 16);
        Tensor v = k.withScales(0.5f);
        Tensor q = Tensor.ofE4m3(new byte[6 * 16], new float[] {4, 5, 6, 7, 8, 9}, Layout.BHSD, 1, 6, 1, 16);
        float[] a = CudaDecode.e4m3Scales(q, k, v);
        assertEquals(3 * n, a.length);
        assertEquals(9f, a[5]);
        assertEquals(0f, a[6]);
        assertEquals(2f, a[n + 1]);
        assertEquals(3f, a[n + 2]);
        assertEquals(0f, a[n + 3]);
        assertEquals(0.5f, a[2 * n + 2]);
        // a 16-bit query's entries are 1
        float[] b = CudaDecode.e4m3Scales(query(DType.BF16, 6), k, v);
        assertEquals(1f, b[0]);
        assertEquals(1f, b[5]);
        assertEquals(0f, b[6]);
    }

    @Test
    void otherDimsAreRefusedNamingTheDimsRun() {
        Set<Integer> built = Set.of(64, 128, 256);
        for (int d = 1; d <= 320; d++) {
            assertEquals(built.contains(d) ? null
                    : "cuda decode runs head dims [64, 128, 256] with valueDim == headDim, got (" + d + ", " + d + ")",
                    CudaDecode.refusal(onGpu(DType.BF16, d, d, 1)));
        }
        assertEquals("cuda decode runs head dims [64, 128, 256] with valueDim == headDim, got (128, 64)",
                CudaDecode.refusal(onGpu(DType.F16, 128, 64, 1)));
        assertEquals("cuda decode runs head dims [64, 128, 256] with valueDim == headDim, got (64, 128)",
                CudaDecode.refusal(onGpu(DType.F32, 64, 128, 1)));
    }

    @Test
    void hostCachesAreTheCpuBackendsWhateverTheirShape() {
        assertEquals("cuda decodes caches in CUDA memory; this one is on cpu",
                CudaDecode.refusal(new DecodeShape(Device.CPU, DType.BF16, 128, 128, 1)));
        assertEquals("cuda decodes caches in CUDA memory; this one is on cpu",
                CudaDecode.refusal(new DecodeShape(Device.CPU, DType.BF16, 96, 96, 1)));
        // a cache answers as its shape does
        KvCache host = ContiguousKvCache.allocate(DType.BF16, 1, 2, 16, 128, 128);
        assertEquals(CudaDecode.refusal(DecodeShape.of(host, 1)), CudaDecode.refusal(host));
        assertEquals("cache: must not be null", CudaDecode.refusal((KvCache) null));
    }

    @Test
    void theBackendAnswersWithTheRuleOrWhyItIsUnavailable() {
        CudaBackend backend = new CudaBackend();
        Availability a = backend.availability();
        for (DecodeShape s : new DecodeShape[] {onGpu(DType.BF16, 128, 128, 1), onGpu(DType.F32, 96, 96, 2),
                new DecodeShape(Device.CPU, DType.F16, 64, 64, 1)}) {
            assertEquals(a.available() ? CudaDecode.refusal(s) : "cuda: " + a.reason(), backend.decodeRefusal(s),
                    s.toString());
        }
    }

    @Test
    void aDecodeStepIsPreparedOnlyWithACacheOptionsAndAStream() {
        KvCache host = ContiguousKvCache.allocate(DType.BF16, 1, 2, 16, 128, 128);
        String m = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new CudaBackend().prepareDecodeStep(host, 4, 1, 16, dev.sparsa.kv.DecodeOptions.defaults(), null))
                .getMessage();
        assertEquals("cache, options and stream: must not be null (got cache=" + host + ", options="
                + dev.sparsa.kv.DecodeOptions.defaults() + ", stream=null)", m);
    }
}
