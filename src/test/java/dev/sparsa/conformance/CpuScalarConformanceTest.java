package dev.sparsa.conformance;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.cpu.KernelFlavour;

/** The conformance suite against the CPU backend's scalar twin (what runs without the incubator module). */
class CpuScalarConformanceTest extends BackendConformance {
    private static final AttentionBackend BACKEND = new CpuBackend(KernelFlavour.SCALAR, 2);

    @Override
    protected AttentionBackend backend() {
        return BACKEND;
    }
}
