package dev.sparsa.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class TensorTest {

    @Test
    void bshdAndBhsdViewsAgreeOnLogicalElements() {
        int b = 2, h = 3, s = 5, d = 8;
        float[] bhsd = new float[b * h * s * d];
        float[] bshd = new float[bhsd.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int si = 0; si < s; si++) {
                    for (int di = 0; di < d; di++) {
                        float x = bi * 1000 + hi * 100 + si * 10 + di;
                        bhsd[((bi * h + hi) * s + si) * d + di] = x;
                        bshd[((bi * s + si) * h + hi) * d + di] = x;
                    }
                }
            }
        }
        Tensor a = Tensor.of(bhsd, Layout.BHSD, b, h, s, d);
        Tensor c = Tensor.of(bshd, Layout.BSHD, b, h, s, d);
        assertArrayEquals(a.toFloatArray(), c.toFloatArray());
        assertEquals(1234f + 0, c.get(1, 2, 3, 4) - 0);
    }

    @Test
    void narrowTypesRoundToNearestEven() {
        // 1 + 2^-8 is exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one, 1
        assertEquals(1f, DType.BF16.round(1f + 0x1p-8f));
        assertEquals(1f + 0x1p-7f, DType.BF16.round(1f + 0x1p-7f));
        assertEquals(1f + 0x1p-6f, DType.BF16.round(1f + 3 * 0x1p-8f));
        assertTrue(Float.isNaN(DType.BF16.round(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, DType.BF16.round(Float.POSITIVE_INFINITY));
        assertEquals(1f, DType.F16.round(1f + 0x1p-11f));
        assertEquals(65504f, DType.F16.round(65504f));
    }

    @Test
    void rowsRoundTripThroughEveryDtypeAndArena() {
        try (Arena arena = Arena.ofConfined()) {
            for (DType t : DType.values()) {
                Tensor x = Tensor.allocate(arena, t, Layout.BSHD, 1, 2, 3, 8);
                float[] row = {1, -2, 0.5f, 3.25f, -0.125f, 8, 16, 1e-3f};
                x.writeRow(0, 1, 2, row, 0);
                float[] back = new float[8];
                x.readRow(0, 1, 2, back, 0);
                for (int i = 0; i < 8; i++) {
                    assertEquals(t.round(row[i]), back[i], 0f, t + " element " + i);
                }
                assertEquals(0f, x.get(0, 0, 2, 3));
            }
        }
    }

    @Test
    void conversionCopiesAndRounds() {
        Tensor x = Tensor.of(new float[] {1.0009765625f, 2, 3, 4, 5, 6, 7, 8}, 1, 1, 1, 8);
        Tensor h = x.to(DType.F16, Layout.BHSD);
        assertEquals(DType.F16, h.dtype());
        assertEquals(1.0009765625f, h.get(0, 0, 0, 0));
        Tensor b = x.to(DType.BF16, Layout.BSHD);
        assertEquals(1f, b.get(0, 0, 0, 0));
    }

    @Test
    void narrowSeqIsAViewWithoutCopy() {
        float[] data = new float[2 * 6 * 8];
        Tensor t = Tensor.of(data, 1, 2, 6, 8);
        Tensor n = t.narrowSeq(2, 3);
        n.set(0, 1, 0, 0, 42f);
        assertEquals(42f, t.get(0, 1, 2, 0));
        assertEquals(3, n.seqLen());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.narrowSeq(4, 3));
        assertTrue(e.getMessage().contains("narrowSeq"), e.getMessage());
    }

    @Test
    void narrowBatchIsAViewOfOneEntryInEveryLayout() {
        for (Layout layout : Layout.values()) {
            int b = 3, h = 2, s = 5, d = 8;
            float[] data = new float[b * h * s * d];
            Tensor t = Tensor.of(data, layout, b, h, s, d);
            for (int bi = 0; bi < b; bi++) {
                for (int hi = 0; hi < h; hi++) {
                    for (int si = 0; si < s; si++) {
                        t.set(bi, hi, si, 3, bi * 100 + hi * 10 + si);
                    }
                }
            }
            Tensor one = t.narrowBatch(1, 1);
            assertArrayEquals(new int[] {1, h, s, d}, one.shape());
            assertEquals(112f, one.get(0, 1, 2, 3), layout.toString());
            Tensor seq = one.narrowSeq(1, 3);
            assertEquals(113f, seq.get(0, 1, 2, 3), layout.toString());
            seq.set(0, 0, 0, 0, -7f);
            assertEquals(-7f, t.get(1, 0, 1, 0), "a view writes through, " + layout);
            Tensor tail = t.narrowBatch(1, 2);
            assertEquals(2, tail.batch());
            assertEquals(204f, tail.get(1, 0, 4, 3), layout.toString());
            assertEquals(0, t.narrowSeq(5, 0).seqLen(), "an empty sequence view at the end");
            assertTrue(t.narrowSeq(5, 0).spanElements() == 0);
        }
        Tensor t = Tensor.of(new float[2 * 8], 2, 1, 1, 8);
        assertMessage("narrowBatch", () -> t.narrowBatch(1, 2));
        assertMessage("narrowBatch", () -> t.narrowBatch(-1, 1));
        assertMessage("narrowBatch", () -> t.narrowBatch(0, 0));
        assertMessage("narrowSeq", () -> t.narrowSeq(1, Integer.MAX_VALUE));
    }

    @Test
    void aPackedSequenceViewCopiesLikeAContiguousTensor() {
        // packed tokens x heads x dim is a BSHD tensor of batch 1; a sequence is a range of tokens
        int tokens = 7, heads = 2, dim = 8;
        float[] data = new float[tokens * heads * dim];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        Tensor packed = Tensor.of(data, Layout.BSHD, 1, heads, tokens, dim);
        Tensor seq = packed.narrowSeq(3, 4);
        Tensor copy = seq.to(DType.F32, Layout.BHSD);
        for (int h = 0; h < heads; h++) {
            for (int s = 0; s < 4; s++) {
                for (int d = 0; d < dim; d++) {
                    assertEquals(data[((3 + s) * heads + h) * dim + d], copy.get(0, h, s, d));
                }
            }
        }
        assertEquals(4L * heads * dim, seq.spanElements(), "the view reaches only its own tokens");
        assertTrue(seq.spanIsDense());
    }

    @Test
    void factoriesNameTheBadArgument() {
        assertMessage("data", () -> Tensor.of(new float[10], 1, 1, 2, 8));
        assertMessage("shape", () -> Tensor.of(new float[0], 0, 1, 0, 8));
        assertMessage("dtype", () -> Tensor.ofBits(new short[8], DType.F32, Layout.BHSD, 1, 1, 1, 8));
        MemorySegment seg = MemorySegment.ofArray(new float[16]);
        assertMessage("segment", () -> Tensor.wrap(seg, DType.F32, new int[] {1, 1, 3, 8}, new long[] {24, 24, 8, 1}, 0));
        assertMessage("strides", () -> Tensor.wrap(seg, DType.F32, new int[] {1, 1, 2, 8}, new long[] {16, 16, -8, 1}, 0));
        assertMessage("shape", () -> Tensor.wrap(seg, DType.F32, new int[] {1, 2, 8}, new long[] {16, 8, 1}, 0));
    }

    @Test
    void requireFiniteNamesTensorAndIndex() {
        float[] data = new float[16];
        data[11] = Float.NaN;
        Tensor t = Tensor.of(data, 1, 1, 2, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.requireFinite("k"));
        assertTrue(e.getMessage().startsWith("k:"), e.getMessage());
        assertTrue(e.getMessage().contains("s=1, d=3"), e.getMessage());
    }

    static void assertMessage(String argument, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().startsWith(argument), "expected message about '" + argument + "', got: " + e.getMessage());
    }

    @Test
    void aHostTensorOverBackendMemoryRunsItsReleaseOnCloseAndItsViewsDoNot() {
        int[] released = {0};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(2 * 3 * 4 * 8 * 4 + 16);
            Tensor t = Tensor.onHost(seg, () -> released[0]++, DType.F32, Layout.BSHD, 2, 3, 4, 8);
            assertTrue(t.isHost());
            assertEquals(Device.CPU, t.device());
            assertArrayEquals(Layout.BSHD.strides(2, 3, 4, 8), t.strides());
            t.set(1, 2, 3, 7, 5f);
            assertEquals(5f, seg.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, t.index(1, 2, 3, 7)));
            t.narrowSeq(1, 2).close();
            assertEquals(0, released[0], "a view owns nothing");
            t.close();
            assertEquals(1, released[0]);
            t.close();
            assertEquals(2, released[0], "close runs the release each time: the release makes itself idempotent");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.onHost(seg.asSlice(0, 100), () -> { }, DType.F32, Layout.BHSD, 2, 3, 4, 8));
            assertTrue(e.getMessage().contains("segment"), e.getMessage());
            assertThrows(NullPointerException.class,
                    () -> Tensor.onHost(seg, null, DType.F32, Layout.BHSD, 1, 1, 1, 1));
        }
    }

    @Test
    void layoutNamesTheOrderOfContiguousStridesOnly() {
        assertEquals(java.util.Optional.of(Layout.BHSD), Tensor.allocate(DType.F32, Layout.BHSD, 2, 3, 4, 8).layout());
        assertEquals(java.util.Optional.of(Layout.BSHD), Tensor.allocate(DType.BF16, Layout.BSHD, 2, 3, 4, 8).layout());
        assertEquals(java.util.Optional.of(Layout.BSHD), Tensor.allocate(DType.F32, Layout.BSHD, 2, 1, 4, 8).layout());
        // one head and one position: both orders give the same strides
        assertEquals(java.util.Optional.of(Layout.BHSD), Tensor.allocate(DType.F32, Layout.BSHD, 2, 1, 1, 8).layout());
        // a slice of the sequence, or of the heads, keeps its parent's strides, which no longer fit its shape
        assertEquals(java.util.Optional.empty(), Tensor.allocate(DType.F32, Layout.BHSD, 2, 3, 4, 8).narrowSeq(1, 2).layout());
        assertEquals(java.util.Optional.empty(), Tensor.allocate(DType.F32, Layout.BSHD, 2, 3, 4, 8).narrowHeads(0, 2).layout());
    }
}
