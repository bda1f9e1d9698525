/**
 * Sparsa's CPU backend ({@code "cpu"}): a tiled online-softmax kernel over any {@code SparsePlan}, in
 * the Vector API ({@code dev.sparsa.cpu.panama}, loaded only where {@code jdk.incubator.vector} is
 * readable) or in plain Java. Registered as a service; applications find it through {@code
 * dev.sparsa.backend.Backends} or construct {@link dev.sparsa.cpu.CpuBackend} themselves.
 */
module dev.sparsa.cpu {
    requires transitive dev.sparsa.core;
    requires java.logging;

    exports dev.sparsa.cpu;

    provides dev.sparsa.backend.AttentionBackend with dev.sparsa.cpu.CpuBackend;
}
