package dev.sparsa.backend;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
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
 * <p>Decode (one to {@value DecodeArguments#MAX_QUERY_ROWS} query rows per sequence against a {@link
 * KvCache}) goes through {@link #decode}, its sparse selections through {@link #select} (both in
 * one step: {@link #selectAndDecode}), and chunked prefill against a cache through {@link
 * #forward(PreparedPlan, Tensor, KvCache, int, Tensor, Tensor, RunOptions)}. Which decode problems a
 * backend runs it says from their shape alone, through {@link #decodeRefusal(DecodeShape)} (a backend
 * without a decode kernel refuses them all).
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
     * As {@link #refusal(AttentionShape, DType, TileGeometry)} for a call on Q of dtype {@code q} and K
     * and V of dtype {@code kv}, which may differ when K and V are e4m3 (a bf16 query against an FP8
     * cache). By default the refusal of the call's {@link ForwardArguments#inputType input type}; a
     * backend whose kernels need Q in K's dtype refuses the mixed call here.
     */
    default String refusal(AttentionShape shape, DType q, DType kv, TileGeometry geometry) {
        return refusal(shape, ForwardArguments.inputType(q, kv), geometry);
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
     * A data-dependent pattern prepared to have its selection estimated on {@code device} at each
     * call ({@link EstimatedPlan}), or null when this backend does not estimate that pattern in that
     * context there; the caller then plans on the host ({@link Pattern#plan}) and
     * prepares that plan. The default: null (no estimate on a device).
     *
     * @throws IllegalArgumentException if an argument is null
     */
    default EstimatedPlan prepareEstimated(Pattern pattern, PlanContext context,
                                           Device device) {
        if (pattern == null || context == null || device == null) {
            throw new IllegalArgumentException("pattern, context and device: must not be null");
        }
        return null;
    }

    /**
     * {@link #prepareEstimated(Pattern, PlanContext, Device)}, and null as well when the plan could
     * visit {@code visitedBelow} or more of the context's pairs ({@link
     * EstimatedPlan#visitedFractionBound()} not below it). A backend that knows the bound from the
     * pattern and context alone answers before allocating anything on the device; the default
     * prepares the plan, reads its bound and closes it when the bound is too high.
     *
     * @throws IllegalArgumentException if an argument is null or {@code visitedBelow} is NaN
     */
    default EstimatedPlan prepareEstimated(Pattern pattern, PlanContext context, Device device,
                                           double visitedBelow) {
        if (Double.isNaN(visitedBelow)) {
            throw new IllegalArgumentException("visitedBelow: must be a number, got NaN");
        }
        EstimatedPlan plan = prepareEstimated(pattern, context, device);
        if (plan != null && !(plan.visitedFractionBound() < visitedBelow)) {
            plan.close();
            return null;
        }
        return plan;
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
     * @throws java.util.concurrent.CancellationException if the calling thread (or a thread working
     *     for the call) is interrupted before the work is done; the interrupt status stays set and the
     *     output and LSE are undefined
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

    /**
     * A tensor on {@code device} for an output that the next {@code forward} writes entirely: its
     * contents before that are unspecified, so a backend on an accelerator may skip clearing it. On
     * the host it may be memory the backend owns ({@link Tensor#onHost}, e.g. page-locked memory its
     * copies write directly), which closing the tensor gives back. The facade allocates its outputs
     * this way. Defaults to {@link #allocate}.
     *
     * @throws IllegalArgumentException if this backend does not run on the device
     */
    default Tensor allocateOutput(Device device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        return allocate(device, dtype, layout, batch, heads, seq, dim);
    }

    // ------------------------------------------------------------------ decode against a KV cache

    /**
     * Why this backend would refuse decode calls of this shape, in one line, or null when it runs
     * them. The answer depends on the shape alone (and on {@link #availability()}: a backend that
     * is not available may say so): it reads no tensor and allocates nothing, so a caller asks before
     * it allocates or copies a cache for this backend. {@link #decode} throws
     * {@link IllegalArgumentException} with this reason, for the call's {@link DecodeShape#of(KvCache,
     * Tensor) shape},
     * for every call it refuses on these grounds; a backend overrides this method, not {@link
     * #decodeRefusal(KvCache, int)}. Arguments that do not fit each other (Q against the cache, the
     * outputs, a selection) are {@link DecodeArguments#validate}'s to refuse, not this method's. The
     * default: no decode kernel.
     *
     * @throws IllegalArgumentException if {@code shape} is null
     */
    default String decodeRefusal(DecodeShape shape) {
        if (shape == null) {
            throw new IllegalArgumentException("shape: must not be null");
        }
        return name() + " has no decode kernel";
    }

    /**
     * Why this backend would refuse decode calls of {@code queryRows} rows on {@code cache}, or null
     * when it runs them: {@link #decodeRefusal(DecodeShape)} of {@link DecodeShape#of(KvCache, int)}.
     *
     * @throws IllegalArgumentException if the cache is null or {@code queryRows} is outside {@code [1,}
     *     {@value DecodeArguments#MAX_QUERY_ROWS}{@code ]}
     */
    default String decodeRefusal(KvCache cache, int queryRows) {
        return decodeRefusal(DecodeShape.of(cache, queryRows));
    }

    /**
     * Decode: attention of each sequence's {@code rows} new query rows against its keys in the cache,
     * causal with the rows at the end of the sequence (row {@code i} of a sequence of length {@code
     * L} sits at position {@code L − rows + i}), restricted to {@code selection} when given. Query
     * head {@code h} reads KV head {@code h / (qHeads / kvHeads)}; the heads of one group share one
     * read of their keys. A row that admits no key (a sequence of length 0, a row at a negative
     * position) gets 0 and LSE −∞. Arguments are checked by {@link DecodeArguments#validate} before
     * any kernel runs.
     *
     * @param q         {@code [batch, qHeads, rows, headDim]} in the cache's dtype, on the cache's device
     * @param cache     the keys and values, the step's own tokens already appended
     * @param selection a sparse selection over the cache's positions, or null for dense decode
     * @param out       {@code [batch, qHeads, rows, valueDim]}, f32 or the cache's dtype
     * @param lse       {@code [batch, qHeads, rows, 1]} f32, or null
     * @throws IllegalArgumentException for arguments that do not fit, or when this backend refuses
     *     the call's shape (with {@link #decodeRefusal(DecodeShape)}'s reason)
     */
    default void decode(Tensor q, KvCache cache, DecodeSelection selection, Tensor out, Tensor lse,
                        DecodeOptions options) {
        DecodeArguments.validate(q, cache, selection, out, lse, options);
        throw new IllegalArgumentException(decodeRefusal(DecodeShape.of(cache, q)));
    }

    /**
     * Sparse decode with a pattern selected for this step: {@link #select} then {@link #decode(Tensor,
     * KvCache, DecodeSelection, Tensor, Tensor, DecodeOptions)}. Backends may override it to choose and
     * attend in one pass where the cache lives (no selection object in between); the result is the
     * same as the two steps'. (A name of its own, not a {@code decode} overload: callers pass null
     * as the selection of dense decode.)
     *
     * @throws IllegalArgumentException as {@link #select} and {@link #decode(Tensor, KvCache,
     *     DecodeSelection, Tensor, Tensor, DecodeOptions)}
     */
    default void selectAndDecode(Tensor q, KvCache cache, DecodePattern pattern, Tensor out, Tensor lse, DecodeOptions options) {
        if (pattern == null) {
            throw new IllegalArgumentException("pattern: must not be null (DecodePattern.dense() for dense decode)");
        }
        decode(q, cache, pattern instanceof DecodePattern.Dense ? null : select(q, cache, pattern, options), out, lse,
                options);
    }

    /**
     * Plans {@code pattern} for this step's Q on {@code cache}: a selection made at the cache's current
     * lengths. The default scores in plain Java on host copies ({@link DecodeSelector#select(Tensor,
     * KvCache, DecodePattern)}); backends override it to score where the cache lives.
     *
     * @throws IllegalArgumentException if Q does not fit the cache or the pattern cannot run on it
     *     (Quest without page bounds)
     */
    default DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        return DecodeSelector.select(q, cache, pattern);
    }

    /**
     * Chunked prefill: a prepared plan over one sequence of the cache, whose keys are its first {@code
     * cache.length(sequence)} tokens (the chunk's own tokens already appended); the plan is for {@code
     * [1, qHeads, kvHeads, chunk, length, …]}, normally with query offset {@code length − chunk}. The
     * default reads the sequence's K/V through {@link KvCache#keys}/{@link KvCache#values} (a view of
     * a contiguous cache, a host copy of a paged one) and runs {@link #forward(PreparedPlan, Tensor,
     * Tensor, Tensor, Tensor, Tensor, RunOptions)}; backends that read pages in place override it.
     *
     * @throws IllegalArgumentException as {@code forward}, and if the sequence is out of range
     */
    default void forward(PreparedPlan plan, Tensor q, KvCache cache, int sequence, Tensor out, Tensor lse,
                         RunOptions options) {
        if (cache == null) {
            throw new IllegalArgumentException("cache: must not be null");
        }
        forward(plan, q, cache.keys(sequence), cache.values(sequence), out, lse, options);
    }
}
