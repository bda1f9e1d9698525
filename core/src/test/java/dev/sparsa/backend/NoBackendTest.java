package dev.sparsa.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Core's own tests run with no backend on the class path, as an application that depends on
 * sparsa-core alone would: every way in says which artifact to add.
 */
class NoBackendTest {

    @Test
    void theMessageNamesTheArtifactToAdd() {
        assertEquals(List.of(), Backends.all(), "core's test class path holds no backend");
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, Backends::preferred);
        assertTrue(e.getMessage().contains("dev.sparsa:sparsa "), e.getMessage());
        Tensor q = Tensor.of(new float[4 * 8], 1, 1, 4, 8);
        BackendUnavailableException drop = assertThrows(BackendUnavailableException.class,
                () -> Attention.forward(q, q, q, Dense.INSTANCE, Options.defaults()));
        assertTrue(drop.getMessage().contains(BackendUnavailableException.ADD_A_BACKEND), drop.getMessage());
    }
}
