package dev.sparsa.backend;

import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * The service-provider interface of a kernel backend: it runs any {@link SparsePlan} of a geometry
 * it declares, on the devices it declares. Found through {@link java.util.ServiceLoader} (see {@link
 * Backends}); construction must be cheap and must not fail where the hardware is missing: report it
 * through {@link #availability()} instead.
 *
 * <p>The road through a backend: {@link #prepare(SparsePlan, Device)} turns a plan into the
 * backend's own form once ({@link PreparedPlan}); {@link #forward(PreparedPlan, Tensor, Tensor,
 * Tensor, Tensor, Tensor, RunOptions)} runs it as often as needed. What the plan was made for
 * (shape, causality, offset, geometry) travels in the plan; only {@link RunOptions} travel with a
 * run, so a run cannot contradict its plan.
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
    default String refusal(AttentionShape shape, DType dtype, TileGeometry geometry) {
        return supports(geometry) ? null
                : "geometry " + geometry + " is not supported by " + name() + " (it runs " + supportedGeometries() + ")";
    }

    /**
     * The geometry this backend runs fastest for this shape and dtype; the facade plans in it unless
     * the options fix one. Always one this backend {@link #supports}.
     */
    default TileGeometry proposedGeometry(AttentionShape shape, DType dtype) {
        return TileGeometry.DEFAULT;
    }

    /**
     * This backend's estimate of its kernel time on a plan, which the drop-in call's dispatch ({@link
     * dev.sparsa.spec.Dispatch#AUTO}) uses to choose between the pattern's plan, its block-expanded
     * form and dense attention. The default ({@link KernelCostModel#visitedPairs()}) never prefers a
     * substitute; backends with a model of their kernel override it.
     */
    default KernelCostModel costModel() {
        return KernelCostModel.visitedPairs();
    }

    /** Whether this backend runs calls whose tensors live on {@code device}. */
    boolean runsOn(Device device);

    /** The device a call on host tensors runs on when none is named. */
    Device defaultDevice();

    /**
     * The backend's form of {@code plan} on {@code device}, for any number of later runs. The caller
     * closes it.
     *
     * @throws IllegalArgumentException if the backend does not run on that device or refuses the
     *     plan's geometry
     * @throws BackendUnavailableException if the backend is not available here
     */
    PreparedPlan prepare(SparsePlan plan, Device device);

    /** {@link #prepare(SparsePlan, Device)} on {@link #defaultDevice()}. */
    default PreparedPlan prepare(SparsePlan plan) {
        return prepare(plan, defaultDevice());
    }

    /**
     * Computes attention over a prepared plan. The tensors all live on one device: the prepared
     * plan's, or the host (a backend on an accelerator then stages them and writes the output back
     * to the host; it never uploads the output).
     *
     * @param plan    a plan this backend prepared; its shape must match the tensors
     * @param q       {@code [batch, qHeads, queryLength, headDim]}, f32/f16/bf16
     * @param k       {@code [batch, kvHeads, keyLength, headDim]}, same dtype as q
     * @param v       {@code [batch, kvHeads, keyLength, valueDim]}, same dtype as q
     * @param out     {@code [batch, qHeads, queryLength, valueDim]}, f32 or q's dtype; written
     *                for every row (rows with no admitted key get 0)
     * @param lse     {@code [batch, qHeads, queryLength, 1]} f32 receiving the natural-log
     *                log-sum-exp of each row's scores (−∞ for an empty row), or null
     * @param options scale, soft-cap, validation
     * @throws IllegalArgumentException for mismatched shapes, dtypes or devices, a plan prepared by
     *     another backend or for another device, an unsupported geometry or head dimension, before
     *     any kernel runs
     * @throws IllegalStateException if the prepared plan is closed
     * @throws BackendUnavailableException if the backend is not available here
     */
    void forward(PreparedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options);

    /**
     * Prepares {@code plan} for this call only, runs it and releases it: convenient for one call,
     * wasteful in a loop (prepare once instead). Runs on the tensors' device, or {@link
     * #defaultDevice()} for host tensors.
     */
    default void forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        // the arguments first, so that a bad call is refused as such even where the device is missing
        ForwardArguments.validate(plan, q, k, v, out, lse, options == null ? null : options.withValidateFinite(false));
        Device device = q.isHost() ? defaultDevice() : q.device();
        try (PreparedPlan prepared = prepare(plan, device)) {
            forward(prepared, q, k, v, out, lse, options);
        }
    }

    /**
     * As {@link #forward(SparsePlan, Tensor, Tensor, Tensor, Tensor, Tensor, RunOptions)} with full
     * options, which must agree with the plan.
     *
     * @throws IllegalArgumentException if the options contradict the plan (causal flag, explicit
     *     query offset or geometry), naming both values
     */
    default void forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Options options) {
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        plan.context().requireConsistent(options);
        forward(plan, q, k, v, out, lse, options.run());
    }

    /**
     * The backend's form of every sequence plan of a ragged batch on {@code device}: one {@link
     * PreparedPlan} per distinct plan with queries and keys. The caller closes it.
     *
     * @throws IllegalArgumentException as {@link #prepare(SparsePlan, Device)}
     */
    default PreparedRaggedPlan prepare(RaggedPlan plan, Device device) {
        return PreparedRaggedPlan.prepare(this, plan, device);
    }

    /**
     * Computes attention over a ragged batch ({@link dev.sparsa.spec.RaggedBatch}): every sequence
     * as if alone, through {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
     * RunOptions)} on views of the tensors (no copies). Output rows of sequences without keys, and
     * padded rows past a sequence's queries, are 0 with LSE −∞. A backend may override this to run
     * the sequences together; the result must not change.
     *
     * @param plan    a ragged plan this backend prepared
     * @param q       packed {@code [1, qHeads, totalQueries, headDim]} or padded {@code [B, qHeads,
     *                Nq, headDim]}
     * @param k       packed {@code [1, kvHeads, totalKeys, headDim]} or padded {@code [B, kvHeads,
     *                Nk, headDim]}
     * @param v       as {@code k}, with {@code valueDim}
     * @param out     q's shape with {@code valueDim}, f32 or q's dtype
     * @param lse     q's shape with last axis 1, f32, or null
     * @param options scale, soft-cap, validation (of every sequence's rows, not the padding)
     * @throws IllegalArgumentException for tensors that do not hold the batch, naming the argument
     *     and the sequence, before any kernel runs
     * @throws IllegalStateException if the prepared plan is closed
     */
    default void forward(PreparedRaggedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                         RunOptions options) {
        RaggedRun.run(this, plan, q, k, v, out, lse, options);
    }

    /**
     * A zero-filled tensor on {@code device} (for outputs that stay where the inputs are). The host
     * gets a heap tensor; a backend on an accelerator allocates device memory the caller closes.
     *
     * @throws IllegalArgumentException if this backend does not run on the device
     */
    default Tensor allocate(Device device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        if (device == null || !device.isHost()) {
            throw new IllegalArgumentException("device: " + name() + " allocates only on the host, got " + device);
        }
        return Tensor.allocate(dtype, layout, batch, heads, seq, dim);
    }
}
