package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** {@link CudaGraph}'s argument checks, which run before any device is touched (its captures are GPU-tested). */
class CudaGraphTest {
    @Test
    void aCaptureNeedsAStreamAndWork() {
        assertEquals("stream and work: must not be null",
                assertThrows(IllegalArgumentException.class, () -> CudaGraph.capture(null, () -> { })).getMessage());
    }
}
