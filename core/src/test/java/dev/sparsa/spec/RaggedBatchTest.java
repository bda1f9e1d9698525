package dev.sparsa.spec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class RaggedBatchTest {

    @Test
    void packedOffsetsGiveEachSequenceItsTokens() {
        RaggedBatch b = RaggedBatch.packed(new int[] {0, 3, 3, 10}, new int[] {0, 5, 9, 9});
        assertEquals(RaggedBatch.Layout.PACKED, b.layout());
        assertEquals(3, b.sequences());
        assertArrayEquals(new int[] {3, 0, 7}, new int[] {b.queryLength(0), b.queryLength(1), b.queryLength(2)});
        assertArrayEquals(new int[] {5, 4, 0}, new int[] {b.keyLength(0), b.keyLength(1), b.keyLength(2)});
        assertEquals(3, b.queryStart(2));
        assertEquals(9, b.keyStart(2));
        assertEquals(10, b.totalQueries());
        assertEquals(9, b.totalKeys());
        assertEquals(7, b.maxQueryLength());
        assertEquals(5, b.maxKeyLength());
        assertEquals(RaggedBatch.packed(new int[] {0, 2, 5}), RaggedBatch.packedLengths(2, 3));
    }

    @Test
    void packedViewsReadTheSequencesTokensWithoutCopying() {
        int heads = 2;
        int dim = 8;
        RaggedBatch b = RaggedBatch.packedLengths(2, 0, 3);
        float[] data = new float[5 * heads * dim];
        Tensor q = Tensor.of(data, Layout.BSHD, 1, heads, 5, dim);
        for (int t = 0; t < 5; t++) {
            for (int h = 0; h < heads; h++) {
                q.set(0, h, t, 0, t * 10 + h);
            }
        }
        Tensor s2 = b.queries(q, 2);
        assertArrayEquals(new int[] {1, heads, 3, dim}, s2.shape());
        assertEquals(31f, s2.get(0, 1, 1, 0));
        assertEquals(0, b.queries(q, 1).seqLen());
        s2.set(0, 0, 0, 1, -1f);
        assertEquals(-1f, data[(2 * heads) * dim + 1], "a view writes through to the packed tensor");
    }

    @Test
    void paddedViewsTakeTheBatchEntryAndItsFirstRows() {
        RaggedBatch b = RaggedBatch.padded(new int[] {4, 1}, new int[] {2, 3});
        Tensor k = Tensor.allocate(dev.sparsa.tensor.DType.F32, Layout.BHSD, 2, 1, 3, 8);
        k.set(1, 0, 2, 5, 7f);
        Tensor view = b.keys(k, 1);
        assertArrayEquals(new int[] {1, 1, 3, 8}, view.shape());
        assertEquals(7f, view.get(0, 0, 2, 5));
        assertEquals(0, b.queryStart(1));
        assertEquals(2, b.keys(k, 0).seqLen());
    }

    @Test
    void badOffsetsAreRefusedNamingTheSequenceAndTheValues() {
        assertMessage("cuSeqlensQ: must start at 0, got cuSeqlensQ[0] = 1", () -> RaggedBatch.packed(new int[] {1, 4}));
        assertMessage("cuSeqlensQ: sequence 1 would have a negative length: cuSeqlensQ[1] = 5 > cuSeqlensQ[2] = 3",
                () -> RaggedBatch.packed(new int[] {0, 5, 3}, new int[] {0, 1, 2}));
        assertMessage("cuSeqlensK: need B + 1 >= 2", () -> RaggedBatch.packed(new int[] {0, 1}, new int[] {0}));
        assertMessage("cuSeqlensQ has 3 entries (2 sequences) but cuSeqlensK has 2 (1 sequences)",
                () -> RaggedBatch.packed(new int[] {0, 1, 2}, new int[] {0, 2}));
        assertMessage("lengths: sequence 2 has negative length -4", () -> RaggedBatch.packedLengths(1, 2, -4));
        assertMessage("lengths: need at least one sequence", RaggedBatch::packedLengths);
        assertMessage("lengths: the lengths up to sequence 1 add up to",
                () -> RaggedBatch.packedLengths(Integer.MAX_VALUE, 1));
        assertMessage("keyLengths: sequence 0 has negative length -1", () -> RaggedBatch.padded(new int[] {1}, new int[] {-1}));
        assertMessage("queryLengths has 2 sequences but keyLengths has 1",
                () -> RaggedBatch.padded(new int[] {1, 2}, new int[] {1}));
        assertMessage("sequence: index 3 outside [0, 3)", () -> RaggedBatch.packedLengths(1, 2, 3).queryLength(3));
    }

    @Test
    void tensorsThatDoNotHoldTheBatchAreRefusedNamingTheTensor() {
        Tensor q = Tensor.allocate(dev.sparsa.tensor.DType.F32, Layout.BSHD, 1, 2, 10, 8);
        Tensor k = Tensor.allocate(dev.sparsa.tensor.DType.F32, Layout.BSHD, 1, 2, 9, 8);
        RaggedBatch packed = RaggedBatch.packed(new int[] {0, 4, 10}, new int[] {0, 4, 9});
        AttentionShape s = packed.shapeOf(q, k, k);
        assertEquals(10, s.queryLength());
        assertMessage("q: holds 10 tokens but cuSeqlensQ ends at 11",
                () -> RaggedBatch.packed(new int[] {0, 4, 11}, new int[] {0, 4, 9}).shapeOf(q, k, k));
        assertMessage("k: holds 9 tokens but cuSeqlensK ends at 8",
                () -> RaggedBatch.packed(new int[] {0, 4, 10}, new int[] {0, 4, 8}).shapeOf(q, k, k));
        Tensor q2 = Tensor.allocate(dev.sparsa.tensor.DType.F32, Layout.BHSD, 2, 2, 10, 8);
        Tensor k2 = Tensor.allocate(dev.sparsa.tensor.DType.F32, Layout.BHSD, 2, 2, 9, 8);
        assertMessage("q: a packed batch has batch axis 1", () -> packed.shapeOf(q2, k2, k2));
        assertMessage("keyLengths: sequence 1 has 12 keys but k holds 9 per sequence",
                () -> RaggedBatch.padded(new int[] {3, 4}, new int[] {9, 12}).shapeOf(q2, k2, k2));
        assertMessage("q: a padded batch of 3 sequences needs batch axis 3, got 2",
                () -> RaggedBatch.padded(1, 2, 3).shapeOf(q2, k2, k2));
    }

    @Test
    void sequenceShapesKeepHeadsAndDims() {
        RaggedBatch b = RaggedBatch.packed(new int[] {0, 3, 10}, new int[] {0, 5, 6});
        AttentionShape whole = new AttentionShape(1, 8, 2, 10, 6, 64, 32);
        assertEquals(new AttentionShape(1, 8, 2, 7, 1, 64, 32), b.sequenceShape(1, whole));
        assertTrue(b.toString().contains("7/1"), b.toString());
    }

    private static void assertMessage(String prefix, Supplier<?> call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::get);
        assertTrue(e.getMessage().startsWith(prefix), "expected '" + prefix + "...', got: " + e.getMessage());
    }
}
