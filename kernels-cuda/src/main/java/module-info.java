/**
 * Sparsa's CUDA backend ({@code "cuda"}): FlashAttention-style kernels over any {@code SparsePlan},
 * shipped as a fatbin and launched through JCuda's driver binding; device tensors through {@link
 * dev.sparsa.cuda.CudaTensors}. Registered as a service; without a driver or device it reports
 * itself unavailable with the reason.
 */
module dev.sparsa.cuda {
    requires transitive dev.sparsa.core;
    requires jcuda;

    exports dev.sparsa.cuda;

    provides dev.sparsa.backend.AttentionBackend with dev.sparsa.cuda.CudaBackend;
}
