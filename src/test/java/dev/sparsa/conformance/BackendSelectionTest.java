package dev.sparsa.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.BackendUnavailableException;
import dev.sparsa.backend.Backends;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import org.junit.jupiter.api.Test;

/** How the facade picks a backend: available, highest priority, and covering the call. */
class BackendSelectionTest {

    @Test
    void everyBackendIsFoundAndTheChoiceCoversTheCall() {
        assertTrue(Backends.all().stream().anyMatch(b -> b.name().equals("cpu")));
        assertTrue(Backends.all().stream().anyMatch(b -> b.name().equals("cuda")));
        AttentionShape s = new AttentionShape(1, 2, 2, 10, 10, 32, 32);
        AttentionBackend chosen = Backends.preferred(s, DType.BF16, TileGeometry.DEFAULT);
        // head dim 32 is not a CUDA head dim: even on a GPU machine the CPU takes it
        assertEquals("cpu", chosen.name());
    }

    @Test
    void aWiderQueryAgainstE4m3KeysGoesToTheCpuEvenWhereTheGpuRunsE4m3() {
        AttentionShape s = new AttentionShape(1, 8, 2, 256, 256, 128, 128);
        TileGeometry g = new TileGeometry(128, 128);
        AttentionBackend cuda = Backends.get("cuda");
        String why = cuda.refusal(s, DType.BF16, DType.E4M3, g);
        assertTrue(why != null && why.contains("q is bf16"), why);
        assertEquals(cuda.refusal(s, DType.E4M3, g), cuda.refusal(s, DType.E4M3, DType.E4M3, g));
        assertEquals("cpu", Backends.preferred(null, s, DType.BF16, DType.E4M3, g).name());
        AttentionBackend cpu = Backends.get("cpu");
        assertEquals(null, cpu.refusal(s, DType.BF16, DType.E4M3, g), "the CPU runs the mix");
    }

    @Test
    void aCallNoBackendCoversSaysWhyForEachBackend() {
        AttentionShape s = new AttentionShape(1, 2, 2, 10, 10, 12, 12);
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class,
                () -> Backends.preferred(s, DType.F32, TileGeometry.DEFAULT));
        assertTrue(e.getMessage().contains("cpu:"), e.getMessage());
        assertTrue(e.getMessage().contains("cuda:"), e.getMessage());
    }
}
