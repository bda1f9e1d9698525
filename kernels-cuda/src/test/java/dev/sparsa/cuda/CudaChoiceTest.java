package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CudaChoiceTest {
    @Test
    void eachCtaOfAClusterTakesWholeRowsAndTheSharesCoverEveryCandidate() {
        for (int width = 1; width <= 5000; width++) {
            int share = CudaChoice.shareKeys(width, true);
            assertEquals(0, share % 32, "width " + width);
            assertTrue(share * CudaChoice.CLUSTER >= width, "width " + width);
            // the kernel's slices: CTA r takes [r * share, (r + 1) * share) clipped to the candidates
            assertTrue((CudaChoice.CLUSTER - 1) * share < width + CudaChoice.CLUSTER * 32, "width " + width);
            assertEquals(width, CudaChoice.shareKeys(width, false));
        }
    }

    @Test
    void kernelNamesAndSharedMemoryFitTheTable() {
        assertEquals("sparsa_quest_topk_c8", CudaChoice.kernelName("sparsa_quest_topk", true));
        assertEquals("sparsa_decode_topk_choose", CudaChoice.kernelName("sparsa_decode_topk_choose", false));
        assertTrue(KernelTable.NAMES.contains(CudaChoice.kernelName("sparsa_quest_topk", true)));
        assertTrue(KernelTable.NAMES.contains(CudaChoice.kernelName("sparsa_decode_topk_choose", true)));
        // dynamic (order keys and the summed histogram) plus the kernels' 1568 static bytes within 227 KiB
        assertTrue(4 * (CudaChoice.MAX_SMEM_KEYS + 256) + 1568 <= 227 * 1024);
    }
}
