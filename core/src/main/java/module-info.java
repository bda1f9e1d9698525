/**
 * Sparsa's core: tensors on the host and on devices, shapes and options, the {@code Pattern}
 * interface, the {@code SparsePlan} IR, KV caches and decode patterns, the backend SPI and its
 * registry, the fp64 oracles and the {@code Attention} facade. Backends are found through {@link java.util.ServiceLoader}; add {@code
 * dev.sparsa:sparsa} (core, patterns and the CPU backend) or a backend artifact to run anything.
 */
module dev.sparsa.core {
    requires java.logging;

    exports dev.sparsa.tensor;
    exports dev.sparsa.spec;
    exports dev.sparsa.plan;
    exports dev.sparsa.pattern;
    exports dev.sparsa.kv;
    exports dev.sparsa.backend;
    exports dev.sparsa.reference;
    exports dev.sparsa.attention;
    // growable arrays and the Vector API lookup, shared by Sparsa's own modules only
    exports dev.sparsa.internal to dev.sparsa.patterns, dev.sparsa.cpu, dev.sparsa.cuda;

    uses dev.sparsa.backend.AttentionBackend;
}
