package dev.sparsa.backend;

import dev.sparsa.attention.Options;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.plan.TileGeometry;
import dev.sparsa.tensor.Tensor;

/**
 * The service-provider interface of a kernel backend: it runs any {@link SparsePlan} of a geometry
 * it declares. Found through {@link java.util.ServiceLoader} (see {@link Backends}); construction
 * must be cheap and must not fail where the hardware is missing: report it through {@link
 * #availability()} instead.
 *
 * <p>Implementations are thread-safe: concurrent {@code forward} calls are allowed.
 */
public interface AttentionBackend {

    /** A short stable name ({@code "cpu"}, {@code "cuda"}). */
    String name();

    /** Whether this backend can run here, with the reason. Cheap after the first call. */
    Availability availability();

    /** Higher wins when {@link Backends#preferred()} chooses; the CPU backend is 0. */
    default int priority() {
        return 0;
    }

    /** Whether plans of this geometry run here. */
    boolean supports(TileGeometry geometry);

    /** The geometries this backend runs, in words, for error messages. */
    String supportedGeometries();

    /**
     * Why this backend would refuse a call of this shape, dtype and geometry, or null when it runs
     * it. {@code forward} throws {@link IllegalArgumentException} with this reason for such calls;
     * test suites use it to skip (and count) configurations a backend does not cover.
     */
    default String refusal(dev.sparsa.attention.AttentionShape shape, dev.sparsa.tensor.DType dtype,
                           TileGeometry geometry) {
        return supports(geometry) ? null
                : "geometry " + geometry + " is not supported by " + name() + " (it runs " + supportedGeometries() + ")";
    }

    /**
     * Computes attention over the plan.
     *
     * @param plan    the plan; its shape must match the tensors
     * @param q       {@code [batch, qHeads, queryLength, headDim]}, f32/f16/bf16
     * @param k       {@code [batch, kvHeads, keyLength, headDim]}, same dtype as q
     * @param v       {@code [batch, kvHeads, keyLength, valueDim]}, same dtype as q
     * @param out     {@code [batch, qHeads, queryLength, valueDim]}, f32 or q's dtype; written
     *                for every row (rows with no admitted key get 0)
     * @param lse     {@code [batch, qHeads, queryLength, 1]} f32 receiving the natural-log
     *                log-sum-exp of each row's scores (−∞ for an empty row), or null
     * @param options scale, soft-cap and validation (causality and offset are already in the plan)
     * @throws IllegalArgumentException for mismatched shapes, dtypes or an unsupported geometry
     *                                  or head dimension, before any kernel runs
     * @throws BackendUnavailableException if the backend is not available here
     */
    void forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Options options);
}
