package dev.sparsa.attention;

import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.EstimatedPlan;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.SelectionReuse;
import dev.sparsa.backend.PreparedRaggedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The drop-in entry point: the same call as a dense scaled-dot-product attention, plus a pattern.
 *
 * <pre>{@code
 * Tensor out = Attention.forward(q, k, v, Dense.INSTANCE, Options.causalMask());
 * AttentionResult r = Attention.forwardWithLse(q, k, v, pattern, options);   // r.decision(): what ran
 * // plan and prepare once, run every layer
 * SparsePlan plan = Attention.plan(q, k, v, pattern, options);
 * try (PreparedPlan prepared = Attention.prepare(plan, q.device())) {
 *     Tensor out = Attention.forward(prepared, q, k, v, options.run());
 * }
 * // a ragged batch: packed tokens with cumulative offsets, each sequence attended alone
 * Tensor packedOut = Attention.forward(q, k, v, RaggedBatch.packed(cuSeqlens), pattern, options);
 * }</pre>
 *
 * <p>Decode against a {@link KvCache} (append the step's K/V first, then attend):
 * <pre>{@code
 * cache.appendStep(kStep, vStep);
 * Tensor out = Attention.decode(qStep, cache, DecodeOptions.defaults());                   // dense
 * Tensor o2 = Attention.decode(qStep, cache, DecodePattern.quest(2048), DecodeOptions.defaults());
 * // reuse one selection for the next 3 steps (keys since then come through the window)
 * DecodeSelection sel = Attention.select(qStep, cache, pattern, options, reuse);
 * // a long prompt in chunks: append the chunk's K/V, then prefill it against the cache
 * Tensor chunkOut = Attention.prefill(qChunk, cache, 0, Patterns.slidingWindow(1024), Options.causalMask());
 * }</pre>
 *
 * <p>Where a call runs: on the tensors' device when they live on an accelerator (the output is
 * allocated there too and the caller closes it); for host tensors, on {@link Options#device()} when
 * set, else on the available backend of highest priority that takes the shape and dtype
 * ({@link Backends#preferred(Device, AttentionShape, DType, TileGeometry)}), which copies host
 * inputs in and the output back. The geometry is the options' when set, else the chosen backend's
 * proposal for the shape and dtype.
 *
 * <p>What runs ({@link Options#dispatch()}): the drop-in calls with a pattern run, under the default
 * {@link Dispatch#AUTO}, the pattern's plan unless the backend's cost model says dense attention or
 * the plan's block-expanded form is faster (see {@link Dispatcher}); {@link Dispatch#SPARSE} always
 * runs the plan, {@link Dispatch#DENSE} dense attention. The result says what ran ({@link
 * AttentionResult#dispatch()}). Calls that pass a plan run that plan.
 *
 * <p>Plans of static patterns are cached by (pattern, shape, options) together with their dispatch
 * decision and prepared form, so a loop of drop-in calls plans, decides and uploads once (a ragged
 * batch: once per distinct sequence length); data-dependent patterns plan on every call (they look
 * at this call's Q and K).
 *
 * <p>Throws {@link IllegalArgumentException} for inputs that do not fit (the message names the argument)
 * <p>Throws {@link dev.sparsa.backend.BackendUnavailableException} when no backend can run here
 */
public final class Attention {
    private static final PlanCache CACHE = new PlanCache();

    private Attention() {
    }

    /** Attention of Q over K/V restricted to {@code pattern}; the output lives where Q does. */
    public static Tensor forward(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        return call(q, k, v, pattern, options, false).output();
    }

    /** As {@link #forward(Tensor, Tensor, Tensor, Pattern, Options)}, with the LSE. */
    public static AttentionResult forwardWithLse(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        return call(q, k, v, pattern, options, true);
    }

    /**
     * Attention over a ragged batch: each sequence of {@code batch} attends to its own keys under
     * {@code pattern}, planned for its own lengths (static patterns once per distinct length), as if
     * it were alone; the dispatch decides per sequence. The output has Q's layout along the
     * sequence axis ({@code [1, qHeads, totalQueries, valueDim]} in BSHD order for a packed batch,
     * {@code [B, qHeads, Nq, valueDim]} for a padded one) and lives where Q does; rows without keys
     * and padded rows are 0.
     *
     * @throws IllegalArgumentException also when the tensors do not hold the batch, naming the
     *     tensor and the sequence
     */
    public static Tensor forward(Tensor q, Tensor k, Tensor v, RaggedBatch batch, Pattern pattern, Options options) {
        return callRagged(q, k, v, batch, pattern, options, false).output();
    }

    /** As {@link #forward(Tensor, Tensor, Tensor, RaggedBatch, Pattern, Options)}, with the LSE (−∞ on empty rows). */
    public static AttentionResult forwardWithLse(Tensor q, Tensor k, Tensor v, RaggedBatch batch, Pattern pattern,
                                                 Options options) {
        return callRagged(q, k, v, batch, pattern, options, true);
    }

    /**
     * Runs a plan made earlier on the preferred backend, preparing it for this call only (to run it
     * many times, {@link #prepare} it once and call {@link #forward(PreparedPlan, Tensor, Tensor,
     * Tensor, RunOptions)}).
     *
     * @throws IllegalArgumentException also when the options contradict the plan (causal flag, an
     *     explicit query offset or geometry), naming both values
     */
    public static Tensor forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        return forwardWithLse(plan, q, k, v, options, false).output();
    }

    /** As {@link #forward(SparsePlan, Tensor, Tensor, Tensor, Options)}, with the LSE. */
    public static AttentionResult forwardWithLse(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        return forwardWithLse(plan, q, k, v, options, true);
    }

    private static AttentionResult forwardWithLse(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options,
                                                  boolean withLse) {
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        Device device = deviceOf(q, k, v, options);
        return run(Backends.preferred(device, plan.shape(), q.dtype(), k.dtype(), plan.geometry()), plan, q, k, v, options,
                withLse);
    }

    /** Runs a prepared plan on the backend that prepared it; the output lives where Q does. */
    public static Tensor forward(PreparedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options) {
        return run(backendOf(plan), plan, q, k, v, options, false, List.of(given(plan))).output();
    }

    /** As {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, RunOptions)}, with the LSE. */
    public static AttentionResult forwardWithLse(PreparedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options) {
        return run(backendOf(plan), plan, q, k, v, options, true, List.of(given(plan)));
    }

    /**
     * Runs a plan on a chosen backend (prepared for this call only), with or without the LSE.
     *
     * @throws IllegalArgumentException also when the options contradict the plan
     */
    public static AttentionResult run(AttentionBackend backend, SparsePlan plan, Tensor q, Tensor k, Tensor v,
                                      Options options, boolean withLse) {
        if (backend == null) {
            throw new IllegalArgumentException("backend: must not be null");
        }
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        plan.context().requireConsistent(options);
        Device device = deviceOf(q, k, v, options);
        try (PreparedPlan prepared = backend.prepare(plan, device != null ? device : backend.defaultDevice())) {
            return run(backend, prepared, q, k, v, options.run(), withLse, List.of(DispatchDecision.given(plan)));
        }
    }

    /**
     * Plans {@code pattern} for these inputs under {@code options}, in the options' geometry or the
     * one the backend that would run the call proposes. Static patterns come from the cache. This is
     * the pattern's own plan: no dispatch.
     */
    public static SparsePlan plan(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        if (pattern == null || options == null) {
            throw new IllegalArgumentException("pattern and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        AttentionBackend backend = Backends.preferred(deviceOf(q, k, v, options), s, q.dtype(), k.dtype(),
                options.geometry());
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, runsIn(q, k)));
        return planIn(context, pattern, q, k);
    }

    /**
     * Plans {@code pattern} for every sequence of a ragged batch (static patterns once per distinct
     * length, from the cache; data-dependent ones on each sequence's own Q and K), in the options'
     * geometry or the preferred backend's proposal. A sequence without queries or keys gets {@link
     * SparsePlan#empty}. The pattern's own plans: no dispatch.
     *
     * @throws IllegalArgumentException also when the tensors do not hold the batch
     */
    public static RaggedPlan plan(Tensor q, Tensor k, Tensor v, RaggedBatch batch, Pattern pattern, Options options) {
        if (pattern == null || options == null || batch == null) {
            throw new IllegalArgumentException("batch, pattern and options: must not be null");
        }
        AttentionShape whole = batch.shapeOf(q, k, v);
        AttentionBackend backend = raggedBackend(q, k, v, batch, whole, options);
        TileGeometry proposed = backend.proposedGeometry(longest(batch, whole), runsIn(q, k));
        List<SparsePlan> plans = new ArrayList<>();
        for (int i = 0; i < batch.sequences(); i++) {
            PlanContext ctx = PlanContext.of(batch.sequenceShape(i, whole), options, proposed);
            plans.add(runs(batch, i) ? planIn(ctx, pattern, batch.queries(q, i), batch.keys(k, i)) : SparsePlan.empty(ctx));
        }
        return RaggedPlan.of(batch, plans);
    }

    /**
     * The plan in the preferred backend's form on its default device, for any number of runs; the
     * caller closes it.
     */
    public static PreparedPlan prepare(SparsePlan plan) {
        return prepare(plan, null);
    }

    /**
     * The plan in the form of the preferred backend running on {@code device} ({@code null}: the
     * preferred backend's default device); the caller closes it.
     */
    public static PreparedPlan prepare(SparsePlan plan, Device device) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        AttentionBackend backend = Backends.preferred(device, plan.shape(), DType.F32, plan.geometry());
        return backend.prepare(plan, device != null ? device : backend.defaultDevice());
    }

    /**
     * One attention spread over several devices of this host: heads sharded (whole KV groups per
     * device), or the key range split with the partial outputs merged exactly through their LSEs
     * (see {@link Sharding}). The plan is made once, for the whole call, and split per device; the
     * output lives where the inputs do. Equal to the one-device result up to f32 reassociation.
     *
     * @throws IllegalArgumentException as {@link #forward(Tensor, Tensor, Tensor, Pattern, Options)},
     *     and when a device of the sharding has no backend that runs the call
     */
    public static AttentionResult forwardSharded(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options,
                                                 Sharding sharding) {
        if (pattern == null || options == null || sharding == null) {
            throw new IllegalArgumentException("pattern, options and sharding: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device first = sharding.devices().get(0);
        AttentionBackend backend = Backends.preferred(first, s, q.dtype(), k.dtype(), options.geometry());
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, runsIn(q, k)));
        SparsePlan plan = planIn(context, pattern, q, k);
        return ShardedRun.run(plan, q, k, v, options.run(), sharding, true);
    }

    // ------------------------------------------------------------------ decode and chunked prefill

    /**
     * Dense decode of Q {@code [batch, qHeads, rows, headDim]} (1 to 64 rows per sequence, at the end
     * of each sequence) against {@code cache}, on the preferred backend that decodes on the cache's
     * device; the output ({@code [batch, qHeads, rows, valueDim]}) lives there too.
     *
     * @throws IllegalArgumentException for arguments that do not fit (see {@code DecodeArguments})
     */
    public static Tensor decode(Tensor q, KvCache cache, DecodeOptions options) {
        return decodeWithLse(q, cache, (DecodeSelection) null, options).output();
    }

    /** As {@link #decode(Tensor, KvCache, DecodeOptions)} with the LSE. */
    public static AttentionResult decodeWithLse(Tensor q, KvCache cache, DecodeOptions options) {
        return decodeWithLse(q, cache, (DecodeSelection) null, options);
    }

    /** Sparse decode: selects {@code pattern} for this step, then decodes over the selection. */
    public static Tensor decode(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        return decodeWithLse(q, cache, pattern, options).output();
    }

    /** As {@link #decode(Tensor, KvCache, DecodePattern, DecodeOptions)} with the LSE. */
    public static AttentionResult decodeWithLse(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        if (pattern == null) {
            throw new IllegalArgumentException("pattern: must not be null (DecodePattern.dense() for dense decode)");
        }
        if (pattern instanceof DecodePattern.Dense) {
            return decodeWithLse(q, cache, (DecodeSelection) null, options);
        }
        if (q == null || cache == null || options == null) {
            throw new IllegalArgumentException("q, cache and options: must not be null");
        }
        AttentionBackend backend = Backends.preferredForDecode(cache, q.seqLen());
        return decodeInto(backend, q, cache, options, (out, lse) -> backend.selectAndDecode(q, cache, pattern, out, lse, options));
    }

    /** Decode over a selection made earlier (null: dense), possibly at an earlier step or layer. */
    public static Tensor decode(Tensor q, KvCache cache, DecodeSelection selection, DecodeOptions options) {
        return decodeWithLse(q, cache, selection, options).output();
    }

    /** As {@link #decode(Tensor, KvCache, DecodeSelection, DecodeOptions)} with the LSE. */
    public static AttentionResult decodeWithLse(Tensor q, KvCache cache, DecodeSelection selection,
                                                DecodeOptions options) {
        if (q == null || cache == null || options == null) {
            throw new IllegalArgumentException("q, cache and options: must not be null");
        }
        AttentionBackend backend = Backends.preferredForDecode(cache, q.seqLen());
        return decodeInto(backend, q, cache, options, (out, lse) -> backend.decode(q, cache, selection, out, lse, options));
    }

    /** Allocates a decode call's output and LSE where the cache lives and runs {@code call} into them. */
    private static AttentionResult decodeInto(AttentionBackend backend, Tensor q, KvCache cache, DecodeOptions options,
                                              java.util.function.BiConsumer<Tensor, Tensor> call) {
        Device where = cache.device();
        int rows = q.seqLen();
        Tensor out = backend.allocateOutput(where, options.run().outputTypeFor(q.dtype()), Layout.BHSD, q.batch(),
                q.heads(), rows, cache.valueDim());
        Tensor lse = null;
        try {
            lse = backend.allocateOutput(where, DType.F32, Layout.BHSD, q.batch(), q.heads(), rows, 1);
            call.accept(out, lse);
            return new AttentionResult(out, lse);
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    /**
     * The selection {@code pattern} makes for this step on the preferred decoding backend of the
     * cache's device (selection runs where the cache is).
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        if (q == null || cache == null || pattern == null || options == null) {
            throw new IllegalArgumentException("q, cache, pattern and options: must not be null");
        }
        return Backends.preferredForDecode(cache, q.seqLen()).select(q, cache, pattern, options);
    }

    /**
     * The selection for this step under {@code reuse}'s rule: the remembered one when the rule allows
     * it, else a fresh one (see {@link SelectionReuse}).
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options,
                                         SelectionReuse reuse) {
        if (reuse == null) {
            throw new IllegalArgumentException("reuse: must not be null");
        }
        return reuse.obtain(cache, pattern, () -> select(q, cache, pattern, options));
    }

    /**
     * Chunked prefill: Q {@code [1, qHeads, chunk, headDim]} of sequence {@code sequence}, whose
     * chunk's K/V are already appended, against the sequence's first {@code cache.length(sequence)}
     * keys under {@code pattern}. The query offset defaults to {@code length − chunk} (the chunk's
     * rows are the last positions); pass {@code Options.withQueryOffset} to say otherwise. Matches a
     * one-shot prefill of the whole prompt on the chunk's rows within the dtype's tolerance.
     *
     * @throws IllegalArgumentException for arguments that do not fit, naming them
     */
    public static Tensor prefill(Tensor q, KvCache cache, int sequence, Pattern pattern, Options options) {
        return prefillWithLse(q, cache, sequence, pattern, options).output();
    }

    /** As {@link #prefill} with the LSE. */
    public static AttentionResult prefillWithLse(Tensor q, KvCache cache, int sequence, Pattern pattern,
                                                 Options options) {
        if (q == null || cache == null || pattern == null || options == null) {
            throw new IllegalArgumentException("q, cache, pattern and options: must not be null");
        }
        int length = cache.length(sequence);
        if (q.batch() != 1) {
            throw new IllegalArgumentException("q: a chunk of one sequence has batch 1, got " + q.batch());
        }
        AttentionShape s = new AttentionShape(1, q.heads(), cache.kvHeads(), q.seqLen(), length, q.dim(), cache.valueDim());
        if (!cache.device().equals(q.device())) {
            throw new IllegalArgumentException("q: on " + q.device() + " but the cache is on " + cache.device());
        }
        Device device = cache.device().isHost() ? options.device() : cache.device();
        DType runsIn = ForwardArguments.inputType(q.dtype(), cache.dtype());
        AttentionBackend backend = Backends.preferred(device, s, q.dtype(), cache.dtype(), options.geometry());
        Device target = device != null ? device : backend.defaultDevice();
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, runsIn));
        Tensor out = backend.allocate(cache.device(), options.outputTypeFor(q.dtype()), Layout.BHSD, 1, s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = null;
        try {
            lse = backend.allocate(cache.device(), DType.F32, Layout.BHSD, 1, s.qHeads(), s.queryLength(), 1);
            SparsePlan ran;
            if (!pattern.dataDependent()) {
                PreparedPlan prepared = CACHE.prepared(pattern, context, backend, target);
                backend.forward(prepared, q, cache, sequence, out, lse, options.run());
                ran = prepared.plan();
            } else {
                ran = pattern.plan(context, q.toHost(), cache.keys(sequence).toHost());
                try (PreparedPlan prepared = backend.prepare(ran, target)) {
                    backend.forward(prepared, q, cache, sequence, out, lse, options.run());
                }
            }
            return new AttentionResult(out, lse, List.of(DispatchDecision.given(ran)));
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    /**
     * A ragged plan in the form of the preferred backend running on {@code device} ({@code null}:
     * its default device); the caller closes it.
     */
    public static PreparedRaggedPlan prepare(RaggedPlan plan, Device device) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        AttentionShape h = plan.headShape();
        AttentionShape rep = new AttentionShape(1, h.qHeads(), h.kvHeads(), plan.batch().maxQueryLength(),
                plan.batch().maxKeyLength(), h.headDim(), h.valueDim());
        AttentionBackend backend = Backends.preferred(device, rep, DType.F32, plan.geometry());
        return backend.prepare(plan, device != null ? device : backend.defaultDevice());
    }

    /** Runs a prepared ragged plan on the backend that prepared it; the output has Q's layout and device. */
    public static Tensor forward(PreparedRaggedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options) {
        return runRagged(plan, q, k, v, options, false, givenAll(plan)).output();
    }

    /** As {@link #forward(PreparedRaggedPlan, Tensor, Tensor, Tensor, RunOptions)}, with the LSE. */
    public static AttentionResult forwardWithLse(PreparedRaggedPlan plan, Tensor q, Tensor k, Tensor v,
                                                 RunOptions options) {
        return runRagged(plan, q, k, v, options, true, givenAll(plan));
    }

    /**
     * Runs a ragged plan on a chosen backend (prepared for this call only).
     *
     * @throws IllegalArgumentException also when the options contradict a sequence's plan
     */
    public static AttentionResult run(AttentionBackend backend, RaggedPlan plan, Tensor q, Tensor k, Tensor v,
                                      Options options, boolean withLse) {
        if (backend == null || plan == null || options == null) {
            throw new IllegalArgumentException("backend, plan and options: must not be null");
        }
        plan.requireConsistent(options);
        Device device = deviceOf(q, k, v, options);
        try (PreparedRaggedPlan prepared = backend.prepare(plan, device != null ? device : backend.defaultDevice())) {
            return runRagged(prepared, q, k, v, options.run(), withLse, givenAll(prepared));
        }
    }

    // ------------------------------------------------------------------ internals

    /** A plan chosen for a call, in the backend's form; {@code owned} when this call must close it. */
    private record Selected(DispatchDecision decision, PreparedPlan prepared, boolean owned) {
    }

    private static AttentionResult call(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options, boolean withLse) {
        if (pattern == null || options == null) {
            throw new IllegalArgumentException("pattern and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device device = deviceOf(q, k, v, options);
        AttentionBackend backend = Backends.preferred(device, s, q.dtype(), k.dtype(), options.geometry());
        Device target = device != null ? device : backend.defaultDevice();
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, runsIn(q, k)));
        try (EstimatedPlan estimated = estimatedOnDevice(pattern, context, q, k, backend, target, options.dispatch())) {
            if (estimated != null) {
                DispatchDecision d = new DispatchDecision(options.dispatch(), Ran.DEVICE_ESTIMATED, SparsePlan.empty(context),
                        Double.NaN, Double.NaN, Double.NaN, 0, "", String.format("the selection is estimated on %s at "
                        + "the call (it visits at most %.3g of the pairs): no host planning, nothing copied back", target,
                        estimated.visitedFractionBound()));
                Dispatcher.logOnce(d, pattern.name(), context, backend.name(), runsIn(q, k));
                return allocateAndRun(backend, q, k, v, options.run(), withLse, List.of(d),
                        (out, lse) -> estimated.forward(q, k, v, out, lse, options.run()));
            }
        }
        Selected sel = select(pattern, context, q, k, backend, target, options.dispatch());
        try {
            return run(backend, sel.prepared(), q, k, v, options.run(), withLse, List.of(sel.decision()));
        } finally {
            if (sel.owned()) {
                sel.prepared().close();
            }
        }
    }

    private static AttentionResult callRagged(Tensor q, Tensor k, Tensor v, RaggedBatch batch, Pattern pattern,
                                              Options options, boolean withLse) {
        if (pattern == null || options == null || batch == null) {
            throw new IllegalArgumentException("batch, pattern and options: must not be null");
        }
        AttentionShape whole = batch.shapeOf(q, k, v);
        AttentionBackend backend = raggedBackend(q, k, v, batch, whole, options);
        Device device = deviceOf(q, k, v, options);
        Device target = device != null ? device : backend.defaultDevice();
        TileGeometry proposed = backend.proposedGeometry(longest(batch, whole), runsIn(q, k));
        List<DispatchDecision> decisions = new ArrayList<>();
        Map<SparsePlan, PreparedPlan> prepared = new IdentityHashMap<>();
        List<PreparedPlan> owned = new ArrayList<>();
        try {
            for (int i = 0; i < batch.sequences(); i++) {
                PlanContext ctx = PlanContext.of(batch.sequenceShape(i, whole), options, proposed);
                if (!runs(batch, i)) {
                    decisions.add(new DispatchDecision(options.dispatch(), Ran.SPARSE, SparsePlan.empty(ctx), Double.NaN,
                            Double.NaN, Double.NaN, 0, "", "the sequence has no queries or no keys: no kernel runs"));
                    continue;
                }
                Selected sel = select(pattern, ctx, batch.queries(q, i), batch.keys(k, i), backend, target,
                        options.dispatch());
                decisions.add(sel.decision());
                prepared.putIfAbsent(sel.decision().plan(), sel.prepared());
                if (sel.owned()) {
                    owned.add(sel.prepared());
                }
            }
            RaggedPlan plan = RaggedPlan.of(batch, decisions.stream().map(DispatchDecision::plan).toList());
            try (PreparedRaggedPlan p = PreparedRaggedPlan.borrowing(plan, backend, target, prepared)) {
                return runRagged(p, q, k, v, options.run(), withLse, decisions);
            }
        } finally {
            owned.forEach(PreparedPlan::close);
        }
    }

    /**
     * The backend's estimate on the device of a data-dependent pattern's selection, for a call whose Q
     * and K already live on that device and whose dispatch does not ask for dense attention; under
     * {@code AUTO} only when the plan is sure to visit fewer than {@link
     * Dispatcher#SUBSTITUTE_BELOW} of the pairs ({@link EstimatedPlan#visitedFractionBound()}): a
     * selection that may be nearly dense goes the host road, whose dispatch can still choose dense
     * attention. Null when any of that fails, for e4m3 Q or K (the device estimates read f32, f16 and
     * bf16), or when the backend does not estimate this pattern there (the call then plans on the
     * host). Prepared for this call: its device memory is freed when the call ends.
     */
    private static EstimatedPlan estimatedOnDevice(Pattern pattern, PlanContext ctx, Tensor q, Tensor k,
                                                   AttentionBackend backend, Device target, Dispatch mode) {
        if (!pattern.dataDependent() || mode == Dispatch.DENSE || target.isHost() || q.isHost() || k.isHost()
                || q.dtype().isScaled() || k.dtype().isScaled()) {
            return null;
        }
        return mode == Dispatch.AUTO ? backend.prepareEstimated(pattern, ctx, target, Dispatcher.SUBSTITUTE_BELOW)
                : backend.prepareEstimated(pattern, ctx, target);
    }

    /**
     * The plan a drop-in call runs, per {@link Options#dispatch()}, in the backend's form: cached
     * for static patterns and for dense attention, prepared for this call for data-dependent plans.
     */
    private static Selected select(Pattern pattern, PlanContext ctx, Tensor q, Tensor k, AttentionBackend backend,
                                   Device target, Dispatch mode) {
        KernelCostModel model = backend.costModel();
        DType dtype = runsIn(q, k);
        Supplier<SparsePlan> dense = () -> CACHE.plan(Dense.INSTANCE, ctx);
        DispatchDecision d = Dispatcher.beforePlanning(mode, pattern, ctx, model, dtype, dense);
        Selected sel;
        if (d != null) {
            sel = new Selected(d, CACHE.prepared(Dense.INSTANCE, ctx, backend, target), false);
        } else if (!pattern.dataDependent()) {
            d = CACHE.decision(pattern, ctx, backend.name(), dtype, mode,
                    plan -> Dispatcher.afterPlanning(mode, plan, 0, model, dtype, dense));
            PreparedPlan p = switch (d.ran()) {
                case SPARSE, BLOCK_EXPANDED -> CACHE.prepared(pattern, ctx, d.plan(), backend, target);
                case DENSE -> CACHE.prepared(Dense.INSTANCE, ctx, backend, target);
                case DEVICE_ESTIMATED -> throw new IllegalStateException("a static pattern's decision: " + d);
            };
            sel = new Selected(d, p, false);
        } else {
            SparsePlan plan = planIn(ctx, pattern, q, k);
            d = Dispatcher.afterPlanning(mode, plan, Dispatcher.planningMillis(pattern, ctx), model, dtype, dense);
            sel = d.ran() == Ran.DENSE
                    ? new Selected(d, CACHE.prepared(Dense.INSTANCE, ctx, backend, target), false)
                    : new Selected(d, backend.prepare(d.plan(), target), true);
        }
        Dispatcher.logOnce(d, pattern.name(), ctx, backend.name(), dtype);
        return sel;
    }

    private static SparsePlan planIn(PlanContext context, Pattern pattern, Tensor q, Tensor k) {
        if (!pattern.dataDependent()) {
            return CACHE.plan(pattern, context);
        }
        // estimators read Q and K in Java: device inputs are copied to the host for them
        return pattern.plan(context, q.toHost(), k.toHost());
    }

    /** True when sequence {@code i} has queries and keys, so that it is planned and run. */
    private static boolean runs(RaggedBatch batch, int i) {
        return batch.queryLength(i) > 0 && batch.keyLength(i) > 0;
    }

    /** The shape of the batch's longest sequence, which picks the backend and the geometry. */
    private static AttentionShape longest(RaggedBatch batch, AttentionShape whole) {
        return new AttentionShape(1, whole.qHeads(), whole.kvHeads(), batch.maxQueryLength(), batch.maxKeyLength(),
                whole.headDim(), whole.valueDim());
    }

    /** The dtype a call runs in, which backends are chosen by ({@link ForwardArguments#inputType}). */
    private static DType runsIn(Tensor q, Tensor k) {
        return ForwardArguments.inputType(q.dtype(), k.dtype());
    }

    private static AttentionBackend raggedBackend(Tensor q, Tensor k, Tensor v, RaggedBatch batch, AttentionShape whole,
                                                  Options options) {
        return Backends.preferred(deviceOf(q, k, v, options), longest(batch, whole), q.dtype(), k.dtype(),
                options.geometry());
    }

    /** Runs a prepared plan; allocates the output (and LSE) on the inputs' device. */
    private static AttentionResult run(AttentionBackend backend, PreparedPlan plan, Tensor q, Tensor k, Tensor v,
                                       RunOptions options, boolean withLse, List<DispatchDecision> decisions) {
        return allocateAndRun(backend, q, k, v, options, withLse, decisions,
                (out, lse) -> backend.forward(plan, q, k, v, out, lse, options));
    }

    /** What runs into a call's freshly allocated output and LSE. */
    @FunctionalInterface
    private interface Kernel {
        void run(Tensor out, Tensor lse);
    }

    /** Allocates the output (and LSE) on the inputs' device and runs {@code kernel} into them. */
    private static AttentionResult allocateAndRun(AttentionBackend backend, Tensor q, Tensor k, Tensor v, RunOptions options,
                                                  boolean withLse, List<DispatchDecision> decisions, Kernel kernel) {
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device where = ForwardArguments.device(q, k, v, null, null);
        Tensor out = backend.allocateOutput(where, options.outputTypeFor(q.dtype()), Layout.BHSD, s.batch(), s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = null;
        try {
            lse = withLse ? backend.allocateOutput(where, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1) : null;
            kernel.run(out, lse);
            return new AttentionResult(out, lse, decisions);
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    /**
     * Runs a prepared ragged plan on its backend; allocates the output (in Q's token order: BSHD
     * for a packed batch) and the LSE on the inputs' device.
     */
    private static AttentionResult runRagged(PreparedRaggedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options,
                                             boolean withLse, List<DispatchDecision> decisions) {
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        AttentionShape s = plan.plan().batch().shapeOf(q, k, v);
        AttentionBackend backend = plan.backend();
        Device where = ForwardArguments.device(q, k, v, null, null);
        Layout layout = plan.plan().batch().layout() == RaggedBatch.Layout.PACKED ? Layout.BSHD : Layout.BHSD;
        // the ragged run writes every row (rows without keys and padding get 0 and -inf), so the
        // outputs may be the backend's uncleared output memory (on a GPU: reused page-locked blocks)
        Tensor out = backend.allocateOutput(where, options.outputTypeFor(q.dtype()), layout, s.batch(), s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = null;
        try {
            lse = withLse ? backend.allocateOutput(where, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1)
                    : null;
            backend.forward(plan, q, k, v, out, lse, options);
            return new AttentionResult(out, lse, decisions);
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    private static DispatchDecision given(PreparedPlan plan) {
        backendOf(plan); // refuses null
        return DispatchDecision.given(plan.plan());
    }

    private static List<DispatchDecision> givenAll(PreparedRaggedPlan plan) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        return plan.plan().plans().stream().map(DispatchDecision::given).toList();
    }

    /**
     * The device a call runs on: the inputs' when they live on an accelerator, else the options'
     * (null: the preferred backend's).
     */
    private static Device deviceOf(Tensor q, Tensor k, Tensor v, Options options) {
        if (q == null || k == null || v == null) {
            throw new IllegalArgumentException("q, k, v: must not be null (got q=" + q + ", k=" + k + ", v=" + v + ")");
        }
        Device inputs = ForwardArguments.device(q, k, v, null, null);
        if (!inputs.isHost()) {
            if (options.device() != null && !options.device().equals(inputs)) {
                throw new IllegalArgumentException("options: device " + options.device() + " but the tensors are on " + inputs);
            }
            return inputs;
        }
        return options.device();
    }

    private static AttentionBackend backendOf(PreparedPlan plan) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        return plan.backend();
    }
}
