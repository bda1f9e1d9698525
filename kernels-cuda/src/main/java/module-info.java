/**
 * Sparsa's CUDA backend ({@code "cuda"}): FlashAttention-style kernels over any {@code SparsePlan},
 * shipped as a fatbin and launched through JCuda's driver binding; device tensors through {@link
 * dev.sparsa.cuda.CudaTensors}. Registered as a service; without a driver or device it reports
 * itself unavailable with the reason.
 */
module dev.sparsa.cuda {
    requires transitive dev.sparsa.core;
    // MeanPoolBlockTopK's selection estimated on the device (CudaEstimatedPlan)
    requires transitive dev.sparsa.patterns;
    requires jcuda;
    // the default bound of page-locked outputs reads the host's memory size where the runtime has it
    requires static jdk.management;

    exports dev.sparsa.cuda;

    provides dev.sparsa.backend.AttentionBackend with dev.sparsa.cuda.CudaBackend;
}
