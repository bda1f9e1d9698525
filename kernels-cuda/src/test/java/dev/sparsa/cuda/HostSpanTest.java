package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The host span a copy moves, and when copying it back would overwrite elements outside the view. */
class HostSpanTest {

    @Test
    void contiguousTensorsInEitherLayoutAreDense() {
        for (Layout l : Layout.values()) {
            Tensor t = Tensor.allocate(DType.BF16, l, 2, 3, 5, 8);
            HostSpan s = HostSpan.of(t);
            assertTrue(s.dense(), l.toString());
            assertEquals(0, s.firstElement());
            assertEquals(2 * 3 * 5 * 8, s.elements());
            assertEquals(2L * 2 * 3 * 5 * 8, s.bytes());
        }
    }

    @Test
    void aSequenceWindowOfBhsdHasHolesButOfOneHeadDoesNot() {
        Tensor t = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 10, 4);
        HostSpan window = HostSpan.of(t.narrowSeq(3, 4));
        assertFalse(window.dense(), "head 0's rows 3..6 and head 1's rows 3..6 leave rows 7..12 between them");
        assertEquals(3 * 4, window.firstElement());
        assertEquals((10 + 3) * 4 + 4 * 4 - 3 * 4, window.elements());
        Tensor oneHead = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 10, 4).narrowSeq(2, 5);
        assertTrue(HostSpan.of(oneHead).dense());
    }

    @Test
    void broadcastViewsAreNotDense() {
        Tensor base = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 6, 4);
        Tensor broadcast = Tensor.wrap(base.segment(), DType.F32, new int[] {1, 3, 6, 4}, new long[] {24, 0, 4, 1}, 0);
        assertFalse(HostSpan.of(broadcast).dense(), "three heads share one span");
    }

    @Test
    void copyViewMovesOnlyTheViewsElements() {
        Tensor src = Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 6, 4);
        Tensor dst = Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 6, 4);
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 6; s++) {
                src.fillRow(0, h, s, 10 * h + s);
                dst.fillRow(0, h, s, -1);
            }
        }
        HostSpan.copyView(src.narrowSeq(1, 3), dst.narrowSeq(1, 3));
        assertEquals(-1f, dst.get(0, 1, 0, 2));
        assertEquals(11f, dst.get(0, 1, 1, 2));
        assertEquals(3f, dst.get(0, 0, 3, 0));
        assertEquals(-1f, dst.get(0, 0, 4, 3));
    }
}
