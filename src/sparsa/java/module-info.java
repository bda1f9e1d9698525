/**
 * Sparsa in one module: {@code requires dev.sparsa;} reads the core API ({@code dev.sparsa.core}),
 * every pattern family ({@code dev.sparsa.patterns}) and the CPU backend ({@code dev.sparsa.cpu}).
 * Start at {@code dev.sparsa.attention.Attention} and {@code dev.sparsa.patterns.Patterns}. The CUDA
 * backend is the separate, optional module {@code dev.sparsa.cuda} (artifact {@code
 * dev.sparsa:sparsa-kernels-cuda}).
 */
module dev.sparsa {
    requires transitive dev.sparsa.core;
    requires transitive dev.sparsa.patterns;
    requires transitive dev.sparsa.cpu;
}
