package dev.sparsa.conformance;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.cuda.CudaBackend;
import org.junit.jupiter.api.Tag;

/**
 * The conformance suite against the CUDA backend. Tagged {@code gpu}: CI (no device) excludes it,
 * and where it runs without a usable device every case is skipped with the backend's reason.
 * Configurations the backend refuses (e.g. valueDim != headDim) are skipped with the refusal.
 */
@Tag("gpu")
class CudaConformanceTest extends BackendConformance {
    private static final CudaBackend BACKEND = new CudaBackend();

    @Override
    protected AttentionBackend backend() {
        return BACKEND;
    }
}
