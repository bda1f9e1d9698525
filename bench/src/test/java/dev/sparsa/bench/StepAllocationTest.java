package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class StepAllocationTest {
    private static volatile Object sink;

    @Test
    void theJvmsCountGrowsByWhatAThreadAllocates() {
        StepAllocation a = StepAllocation.ofThisJvm();
        long before = a.total();
        assertTrue(before >= 0, "HotSpot counts allocated bytes");
        sink = new byte[32 << 20];
        long grown = a.total() - before;
        assertTrue(grown >= 32 << 20, "a 32 MiB array counted as " + grown + " bytes");
    }

    @Test
    void flagsOnlyStepsOverTheFloorAndOverAQuarterOfTheirReads() {
        long floor = StepAllocation.FLAG_FLOOR_BYTES;
        assertNull(StepAllocation.warning("cpu bf16 contiguous dense", floor, 1));
        assertNull(StepAllocation.warning("cpu bf16 contiguous dense", 40L << 20, 200L << 20), "a fifth of the reads");
        assertNull(StepAllocation.warning("cpu bf16 contiguous dense", -1, 0), "not counted");
        String w = StepAllocation.warning("cpu bf16 contiguous dense", 270_000_000L, 67_108_864L);
        assertNotNull(w);
        assertEquals(1, w.lines().count(), w);
        assertTrue(w.startsWith("sparsa decode: warning: cpu bf16 contiguous dense allocated 270.0 MB a step while"
                + " reading 67.1 MB"), w);
        assertNotNull(StepAllocation.warning("cpu f32 paged quest(4096)", floor + 1, 4 * (floor + 1) - 4));
    }

    @Test
    void readsTheCountItIsGiven() {
        long[] n = {5};
        StepAllocation a = StepAllocation.of(() -> n[0]);
        assertEquals(5, a.total());
        n[0] = 12;
        assertEquals(12, a.total());
    }
}
