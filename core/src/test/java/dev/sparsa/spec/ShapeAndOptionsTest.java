package dev.sparsa.spec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import org.junit.jupiter.api.Test;

class ShapeAndOptionsTest {

    @Test
    void shapeReadsGqaAndValueDim() {
        Tensor q = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 2, 8, 5, 16);
        Tensor k = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 2, 2, 7, 16);
        Tensor v = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 2, 2, 7, 24);
        AttentionShape s = AttentionShape.of(q, k, v);
        assertEquals(new AttentionShape(2, 8, 2, 5, 7, 16, 24), s);
        assertEquals(4, s.groupSize());
        assertEquals(1, s.kvHeadOf(5));
    }

    @Test
    void mismatchesNameTheAxis() {
        Tensor q = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 3, 5, 16);
        Tensor k = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 2, 7, 16);
        Tensor v = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 2, 7, 16);
        starts("heads", () -> AttentionShape.of(q, k, v));
        Tensor k8 = Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 3, 7, 8);
        starts("headDim", () -> AttentionShape.of(q, k8, Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 3, 7, 8)));
        starts("keyLength", () -> AttentionShape.of(q, Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 3, 7, 16),
                Tensor.allocate(DType.F32, dev.sparsa.tensor.Layout.BHSD, 1, 3, 6, 16)));
        starts("batch", () -> new AttentionShape(0, 1, 1, 1, 1, 8, 8));
    }

    @Test
    void optionsDefaultsAndValidation() {
        Options o = Options.defaults();
        assertEquals(0.25, o.scaleFor(16), 0);
        assertEquals(3, o.queryOffsetFor(4, 7));
        assertEquals(0, o.withQueryOffset(0).queryOffsetFor(4, 7));
        assertEquals(DType.BF16, o.outputTypeFor(DType.BF16));
        assertEquals(DType.F32, o.withOutputDType(DType.F32).outputTypeFor(DType.BF16));
        starts("scale", () -> o.withScale(-1));
        starts("softCap", () -> o.withSoftCap(-1f));
        starts("softCap", () -> o.withSoftCap(Float.NaN));
        starts("scale", () -> o.withScale(1e300));
        starts("scale", () -> o.withScale(1e-300));
        starts("run", () -> o.withRun(null));
        assertNull(o.geometry(), "the default leaves the geometry to the backend");
        assertEquals(TileGeometry.DEFAULT, o.geometryOr(TileGeometry.DEFAULT));
        TileGeometry big = new TileGeometry(128, 128);
        assertEquals(big, o.withGeometry(big).geometryOr(TileGeometry.DEFAULT));
    }

    @Test
    void runOptionsCarryOnlyWhatMayChangeBetweenRuns() {
        RunOptions r = Options.causalMask().withScale(0.5).withSoftCap(30f).withOutputDType(DType.F32).run();
        assertEquals(new RunOptions(0.5, 30f, false, DType.F32), r);
        assertEquals(0.5, r.scaleFor(128), 0);
        assertEquals(1 / Math.sqrt(128), RunOptions.defaults().scaleFor(128), 0);
    }

    static void starts(String argument, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().startsWith(argument), "expected '" + argument + "…', got: " + e.getMessage());
    }
}
