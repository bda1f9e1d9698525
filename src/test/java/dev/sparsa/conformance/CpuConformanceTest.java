package dev.sparsa.conformance;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.cpu.CpuBackend;

/** The conformance suite against the CPU backend in its best flavour (Vector API where readable). */
class CpuConformanceTest extends BackendConformance {
    private static final AttentionBackend BACKEND = new CpuBackend(2);

    @Override
    protected AttentionBackend backend() {
        return BACKEND;
    }
}
