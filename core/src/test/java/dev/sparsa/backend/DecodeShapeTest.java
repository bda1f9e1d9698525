package dev.sparsa.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** A decode problem's shape without its data, and the SPI's default answer and refusal from it. */
class DecodeShapeTest {

    @Test
    void ofReadsTheCachesDeviceDtypeAndDimsAndOnMovesIt() {
        KvCache flat = ContiguousKvCache.allocate(DType.BF16, 2, 3, 32, 64, 48);
        assertEquals(new DecodeShape(Device.CPU, DType.BF16, 64, 48, 5), DecodeShape.of(flat, 5));
        KvCache paged = PagedKvCache.allocate(DType.F16, 1, 2, 128, 128, 16, 4, true);
        assertEquals(new DecodeShape(Device.CPU, DType.F16, 128, 128, 1), DecodeShape.of(paged, 1));
        assertEquals(new DecodeShape(Device.cuda(1), DType.F16, 128, 128, 1), DecodeShape.of(paged, 1).on(Device.cuda(1)));
        assertEquals("bf16 cache on cpu, head dim 64, value dim 48, 5 query row(s)", DecodeShape.of(flat, 5).toString());
    }

    @Test
    void theQuerysDtypeIsTheCachesOrForAnE4m3CacheBf16UnlessTheCallSaysOtherwise() {
        KvCache fp8 = ContiguousKvCache.allocateE4m3(1, 2, 32, 64, 64, new float[] {0.5f}, new float[] {0.25f});
        DecodeShape usual = DecodeShape.of(fp8, 1);
        assertEquals(DType.BF16, usual.queryDType());
        assertEquals("e4m3 cache on cpu read by a bf16 query, head dim 64, value dim 64, 1 query row(s)", usual.toString());
        Tensor f32 = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 3, 64);
        DecodeShape call = DecodeShape.of(fp8, f32);
        assertEquals(new DecodeShape(Device.CPU, DType.E4M3, DType.F32, 64, 64, 3), call);
        assertEquals(call, call.on(Device.cuda(0)).on(Device.CPU));
        KvCache bf16 = ContiguousKvCache.allocate(DType.BF16, 1, 2, 32, 64, 64);
        assertEquals(DecodeShape.of(bf16, 3), DecodeShape.of(bf16, Tensor.allocate(DType.BF16, Layout.BHSD, 1, 4, 3, 64)));
        assertMessage("queryDType: a bf16 cache is read by a bf16 query, got f32", () -> DecodeShape.of(bf16, f32));
        assertMessage("cache and q: must not be null", () -> DecodeShape.of(bf16, (Tensor) null));
    }

    @Test
    void outOfRangeValuesAreRefusedNamingThem() {
        assertMessage("queryRows: 0 query rows", () -> new DecodeShape(Device.CPU, DType.F32, 64, 64, 0));
        assertMessage("queryRows: 65 query rows", () -> new DecodeShape(Device.CPU, DType.F32, 64, 64, 65));
        new DecodeShape(Device.CPU, DType.F32, 64, 64, DecodeArguments.MAX_QUERY_ROWS);
        assertMessage("dim: need headDim >= 1", () -> new DecodeShape(Device.CPU, DType.F32, 0, 64, 1));
        assertMessage("dim: need headDim >= 1", () -> new DecodeShape(Device.CPU, DType.F32, 64, -1, 1));
        assertMessage("device and dtype", () -> new DecodeShape(null, DType.F32, 64, 64, 1));
        assertMessage("device and dtype", () -> new DecodeShape(Device.CPU, null, 64, 64, 1));
        assertMessage("device and dtype", () -> new DecodeShape(Device.CPU, DType.F32, null, 64, 64, 1));
        assertMessage("cache: must not be null", () -> DecodeShape.of(null, 1));
    }

    @Test
    void aBackendWithoutDecodeRefusesEveryShapeAndEveryCallWithTheSameReason() {
        AttentionBackend none = new NoDecode();
        KvCache cache = ContiguousKvCache.allocate(DType.F32, 1, 1, 16, 8, 8);
        String reason = none.decodeRefusal(DecodeShape.of(cache, 1));
        assertEquals("nodecode has no decode kernel", reason);
        assertEquals(reason, none.decodeRefusal(cache, 1));
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 1, 8);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 1, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> none.decode(q, cache, null, out, null, DecodeOptions.defaults()));
        assertEquals(reason, e.getMessage());
        assertMessage("shape: must not be null", () -> none.decodeRefusal((DecodeShape) null));
    }

    private static void assertMessage(String start, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(start), e.getMessage());
    }

    /** A backend that only declares itself: every decode method is the SPI's default. */
    private static final class NoDecode implements AttentionBackend {
        @Override
        public String name() {
            return "nodecode";
        }

        @Override
        public Availability availability() {
            return new Availability(true, "always");
        }

        @Override
        public boolean supports(TileGeometry geometry) {
            return false;
        }

        @Override
        public String supportedGeometries() {
            return "none";
        }

        @Override
        public boolean runsOn(Device device) {
            return device.isHost();
        }

        @Override
        public Device defaultDevice() {
            return Device.CPU;
        }

        @Override
        public PreparedPlan prepare(SparsePlan plan, Device device) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void forward(PreparedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                            RunOptions options) {
            throw new UnsupportedOperationException();
        }
    }
}
