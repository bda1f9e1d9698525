package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Hopper kernel's TMA copies of block slices and of Q: the driver makes the tensor maps of device tensors in
 * both layouts, and a call gives the same output and LSE bits with the copies on as with
 * {@code -Dsparsa.cuda.tma=false} (every chunk and Q by {@code cp.async}), on plans of full and partial block
 * slices, a slice that ends the keys (1650 keys: 50 past the last 64-key boundary, which TMA fills with zeros),
 * a last tile of 60 rows (700 queries: Q's box runs past the queries), listed rows, gathered keys beside blocks, GQA,
 * BHSD and BSHD, head dims 64, 128 and 256 (e4m3: 128), bf16, f16 and e4m3. Runs on a compute capability 9.0 device; skipped
 * elsewhere.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(E4m3SwitchOn.class)
class CudaTmaGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final TileGeometry G128 = new TileGeometry(128, 128);

    @BeforeAll
    static void needsHopper() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
        assumeTrue(BACKEND.device().computeCapability() == KernelChoice.HOPPER, "the TMA copies are in the Hopper kernel");
    }

    @Test
    void theDriverMakesMapsOfDeviceTensorsInBothLayouts() {
        CudaDevice dev = BACKEND.device();
        for (Layout layout : Layout.values()) {
            try (Tensor k = CudaTensors.allocate(dev, DType.BF16, layout, 2, 4, 1650, 128);
                 Tensor v = CudaTensors.allocate(dev, DType.BF16, layout, 2, 4, 1650, 128);
                 Tensor q = CudaTensors.allocate(dev, DType.BF16, layout, 2, 8, 700, 128)) {
                long[] ks = strides(k), vs = strides(v), qs = strides(q);
                byte[] p = CudaTensorMaps.of(address(k), address(v), address(q), ks, vs, qs, 128, 1650, 700, 4, 8, 2,
                        DType.BF16);
                assertNull(CudaTensorMaps.unavailable(), "the driver's cuTensorMapEncodeTiled");
                ByteBuffer b = ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(CudaTensorMaps.PARAM_BYTES, p.length);
                assertEquals(1, b.getInt(CudaTensorMaps.ON_OFFSET), layout + ": the maps are on");
                for (int m = 0; m < 3; m++) {
                    assertTrue(b.getLong(128 * m) != 0 || b.getLong(128 * m + 8) != 0, layout + ": map " + m + " is written");
                }
                // a data address off 16 bytes cannot be mapped: the kernel copies with cp.async
                byte[] off = CudaTensorMaps.of(address(k), address(v), address(q) + 8, ks, vs, qs, 128, 1650, 700, 4, 8, 2,
                        DType.BF16);
                assertEquals(0, ByteBuffer.wrap(off).order(ByteOrder.LITTLE_ENDIAN).getInt(CudaTensorMaps.ON_OFFSET));
            }
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (int d : KernelChoice.HOPPER_DIMS) {
            for (Layout layout : Layout.values()) {
                for (String p : new String[] {"dense", "window-300", "blocks-30%", "gathered+listed"}) {
                    a.add(Arguments.of(p, d % 128 == 0 ? DType.BF16 : DType.F16, d, layout));
                }
            }
        }
        a.add(Arguments.of("causal", DType.F16, 128, Layout.BHSD));
        a.add(Arguments.of("causal", DType.BF16, 64, Layout.BSHD));
        // e4m3: K by TMA into its stage, V by TMA into the producer warp's staging buffer, then transposed
        for (String p : new String[] {"dense", "causal", "window-300", "blocks-30%", "gathered+listed"}) {
            a.add(Arguments.of(p, DType.E4M3, 128, p.length() % 2 == 0 ? Layout.BHSD : Layout.BSHD));
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} d{2} {3}")
    @MethodSource("cases")
    void tmaCopiesGiveTheSameBitsAsCpAsync(String pattern, DType dtype, int d, Layout layout) {
        AttentionShape s = new AttentionShape(1, 8, 2, 700, 1650, d, d);
        boolean causal = !pattern.equals("dense") && !pattern.equals("blocks-30%");
        Options o = Options.defaults().withGeometry(G128).withCausal(causal).withQueryOffset(causal ? 950 : null);
        PlanContext ctx = PlanContext.of(s, o);
        SparsePlan plan = switch (pattern) {
            case "dense", "causal" -> Dense.INSTANCE.plan(ctx);
            case "window-300" -> CudaWgmmaGpuTest.window(ctx, 300);
            case "blocks-30%" -> RandomPlans.randomBlockSparse(31, ctx, 0.3);
            default -> CudaWgmmaGpuTest.gatheredAndListed(ctx, 9);
        };
        assertTrue(BACKEND.kernelFor(s, dtype, G128).hopper());
        Problems.Qkv p = Problems.qkv(pattern.hashCode() + d, s, dtype, layout);
        float[][] on = run(plan, p, o, dtype, layout, true);
        float[][] off = run(plan, p, o, dtype, layout, false);
        assertNull(CudaTensorMaps.unavailable(), "the driver's cuTensorMapEncodeTiled");
        assertArrayEquals(off[0], on[0], pattern + ": outputs with TMA and with cp.async");
        assertArrayEquals(off[1], on[1], pattern + ": LSEs with TMA and with cp.async");
    }

    private static float[][] run(SparsePlan plan, Problems.Qkv p, Options o, DType dtype, Layout layout, boolean tma) {
        String before = System.getProperty(CudaTensorMaps.PROPERTY);
        System.setProperty(CudaTensorMaps.PROPERTY, Boolean.toString(tma));
        try {
            AttentionShape s = plan.context().shape();
            DType outType = dtype == DType.E4M3 ? DType.BF16 : dtype;
            Tensor out = CudaAttentionGpuTest.poisoned(outType, layout, 1, s.qHeads(), s.queryLength(), s.valueDim());
            Tensor lse = CudaAttentionGpuTest.poisoned(DType.F32, Layout.BHSD, 1, s.qHeads(), s.queryLength(), 1);
            BACKEND.forward(plan, p.q(), p.k(), p.v(), out, lse, o);
            return new float[][] {out.toFloatArray(), lse.toFloatArray()};
        } finally {
            if (before == null) {
                System.clearProperty(CudaTensorMaps.PROPERTY);
            } else {
                System.setProperty(CudaTensorMaps.PROPERTY, before);
            }
        }
    }

    private static long[] strides(Tensor t) {
        return new long[] {t.stride(0), t.stride(1), t.stride(2)};
    }

    private static long address(Tensor t) {
        return CudaTensors.address("tensor", t);
    }
}
