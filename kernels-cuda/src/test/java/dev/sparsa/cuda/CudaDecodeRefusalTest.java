package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.sparsa.backend.Availability;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend's decode rule from the shape alone, host code that runs without a GPU: caches in
 * CUDA memory, head dims 64, 128 and 256 with valueDim == headDim, in every dtype and for any row
 * count.
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
    void e4m3CachesAreLeftToTheCpu() {
        assertEquals("cuda decode has no e4m3 kernel yet; the cpu backend decodes e4m3 caches",
                CudaDecode.refusal(new DecodeShape(Device.cuda(0), DType.E4M3, 128, 128, 1)));
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
