package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimatedSkeleton.i32;
import static dev.sparsa.cuda.EstimatedSkeleton.i64;

import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;

/**
 * A {@link LightningIndexer} plan (DeepSeek Sparse Attention) whose selection is estimated on the
 * device: the skeleton of its device plan ({@link DevicePlan}: one layout per batch entry, one tile per
 * query row, work lists, room for each row's keys) is built on the host from the shape alone, and each
 * call queues, on the call's stream and before the attention kernel, per chunk of row groups {@code
 * sparsa_li_scores} ({@code sparsa_indexer_estimate.cuh}: per group of {@value
 * CudaTopKQueryEstimatedPlan#SCORE_ROWS} consecutive query rows of one batch entry, the index scores
 * {@code I(t, s) = Σ_j w[t, j] · ReLU(q[t, j] · k[s])} of the keys each row may see, as order keys into
 * a scratch row per query row) and {@code sparsa_tq_rank} (per query row: the top {@code topK}, ties
 * to the lower key, NaN never), then {@code sparsa_tq_emit} and {@code sparsa_tq_emit_rows} (the
 * per-row lists' offsets, then their keys; a slice being a batch entry). The scratch holds one chunk's rows of {@code keys} order keys each, at most {@value
 * CudaTopKQueryEstimatedPlan#SCRATCH_BYTES} bytes (at least one row group). Nothing is copied back and
 * the host does not wait.
 *
 * <p><b>Exact arithmetic.</b> The selection is bit for bit the one {@link LightningIndexer#select}
 * makes: each dot product one chain of f32 fused multiply-adds over the channels in ascending order
 * from 0 (the inputs read as f32, exactly for f16 and bf16), the score 0, then per indexer head in
 * ascending order {@code fma(w[t, j], max(0, dot_j), score)} with Java's {@code Math.max}.
 *
 * <p><b>The indexer's inputs.</b> They belong to the pattern ({@link LightningIndexer#of}): queries
 * {@code [B, Hi, Nq, Di]}, keys {@code [B, 1, Nk, Di]}, weights {@code [B, 1, Nq, Hi]}, CUDA tensors of
 * this backend on the plan's device (f32, f16 or bf16; queries and keys of one dtype with contiguous
 * channels, weights of any of the three with any element strides), so a model's own indexer outputs
 * feed the estimate where they are. Each call reads them as they are at that call. {@link
 * LightningIndexer#projected} (inputs computed from Q and K on the host) and host tensors are refused
 * ({@link #refusal}).
 *
 * <p><b>The device plan's form.</b> Query row {@code r} of batch entry {@code b} is tile {@code r} of
 * layout {@code b}, one row whose selected keys, ascending, are unconditional ({@link #hostLayout}, the
 * form the GPU test uploads as the host road); every query head of the batch entry maps to that
 * layout. It admits exactly the pairs {@code LightningIndexer.plan} admits, so attention over it equals
 * the host-planned road within the kernel's tolerance, and bit for bit attention over {@link
 * #hostLayout}'s plan. Its gather list is head-packed as {@link DevicePlan#workItems} packs heads: each
 * 64-row CTA runs one query row for a stack of up to 64 heads of one GQA group (the whole group of an
 * MQA call of up to 64 heads), on the gather kernel {@code sparsa_tcg_*} (bf16/f16); without GQA
 * sharing (one query head per KV head) it is the plain list of one row per CTA, for more than {@value
 * DevicePlan#FEW_ROWS} query rows.
 *
 * <p>Made by {@link CudaBackend#prepareEstimated(LightningIndexer, PlanContext, dev.sparsa.tensor.Device)},
 * run by {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
 * dev.sparsa.spec.RunOptions)} and {@link CudaBackend#forwardAsync(CudaDeviceEstimatedPlan, Tensor, Tensor,
 * Tensor, Tensor, Tensor, dev.sparsa.spec.RunOptions, CudaStream)} on device tensors. Its device memory
 * is reused by every call, so calls with one plan must be ordered on one stream (or waited for in
 * between). Closing it frees that memory; one collected unclosed is freed by a cleaner.
 */
public final class CudaLightningIndexerEstimatedPlan extends CudaDeviceEstimatedPlan {
    private final LightningIndexer pattern;
    private final IndexerInputs inputs;
    private static final int ROWS = CudaTopKQueryEstimatedPlan.SCORE_ROWS;
    /** Shared memory the scores keep all indexer heads' queries within, when they fit (else fewer at a time). */
    static final int SCORE_SHARED_TARGET = 96 * 1024;

    private final int headsCached;
    private final int scoreShared;
    private final RowListEstimate rows;

    /**
     * Why the device estimate does not run this pattern in this context (the host plans it then), or
     * null: the pattern has inputs of its own ({@link LightningIndexer#of}, not the projected stand-in)
     * that are CUDA tensors of this backend fitting the context (batch, query and key lengths), queries
     * and keys of one dtype with contiguous channels; at most {@value CudaTopKEstimatedPlan#MAX_KEYS}
     * keys, 65535 batch entries, the lists and selections within 2³¹ − 1 ints, and neither sequence
     * empty.
     */
    public static String refusal(LightningIndexer pattern, PlanContext ctx) {
        if (pattern == null || ctx == null) {
            return "pattern and context: must not be null";
        }
        IndexerInputs in = pattern.inputs();
        if (in == null) {
            return "the projected stand-in computes its inputs from Q and K on the host";
        }
        Tensor[] ts = {in.queries(), in.keys(), in.weights()};
        String[] names = {"queries", "keys", "weights"};
        for (int i = 0; i < ts.length; i++) {
            if (ts[i].isHost() || !(ts[i].deviceMemory() instanceof DeviceBuffer)) {
                return "indexer " + names[i] + ": not in CUDA memory (the device estimate reads the indexer's inputs there)";
            }
        }
        return shapeRefusal(pattern, in, ctx);
    }

    /**
     * {@link #refusal}'s checks past the inputs' memory: their dtypes, channel strides and shapes
     * against the context, and the context's limits; null when none refuses.
     */
    static String shapeRefusal(LightningIndexer pattern, IndexerInputs in, PlanContext ctx) {
        if (in.queries().dtype() != in.keys().dtype()) {
            return "indexer queries " + in.queries().dtype() + " and keys " + in.keys().dtype() + ": must be of one dtype";
        }
        if (in.queries().stride(3) != 1 || in.keys().stride(3) != 1) {
            return "indexer queries and keys: channels must be contiguous";
        }
        AttentionShape s = ctx.shape();
        if (in.queries().batch() != s.batch() || in.queries().seqLen() != s.queryLength()
                || in.keys().seqLen() != s.keyLength()) {
            return "indexer queries " + Arrays.toString(in.queries().shape()) + " and keys "
                    + Arrays.toString(in.keys().shape()) + ": do not fit batch " + s.batch() + ", " + s.queryLength()
                    + " queries and " + s.keyLength() + " keys";
        }
        if (s.queryLength() == 0 || s.keyLength() == 0) {
            return "an empty sequence: nothing to estimate";
        }
        if (s.keyLength() > CudaTopKEstimatedPlan.MAX_KEYS) {
            return s.keyLength() + " keys: the device estimate takes at most " + CudaTopKEstimatedPlan.MAX_KEYS;
        }
        if (s.batch() > 65535) {
            return s.batch() + " batch entries: the device estimate takes at most 65535";
        }
        int cap = rowCapacity(pattern, ctx);
        long ints = CudaTopKQueryEstimatedPlan.headerInts(s.batch(), s.queryLength())
                + (long) s.batch() * CudaTopKQueryEstimatedPlan.sliceInts(s.queryLength(), cap);
        long sel = (long) s.batch() * s.queryLength() * cap;
        long items = (long) s.batch() * s.qHeads() * s.queryLength() * W_STRIDE;
        if (ints > Integer.MAX_VALUE || sel > Integer.MAX_VALUE || items > Integer.MAX_VALUE) {
            return "shape " + s + " with top " + pattern.topK() + ": the per-row lists (" + ints + " ints), the selections ("
                    + sel + ") or the work items (" + items + " ints) exceed " + Integer.MAX_VALUE;
        }
        return null;
    }

    /** The most keys one row's list holds: {@code min(keys, topK)}. */
    static int rowCapacity(LightningIndexer pattern, PlanContext ctx) {
        return Math.min(ctx.keyLength(), pattern.topK());
    }

    /**
     * Indexer heads whose queries {@code sparsa_li_scores} holds in shared memory at once: all of them
     * when the weights, their queries and a key tile fit in {@value #SCORE_SHARED_TARGET} bytes, else as
     * many as fit there, at least one.
     */
    static int headsCached(int heads, int dim) {
        long fixed = 4L * (heads * (long) ROWS + (long) CudaTopKQueryEstimatedPlan.SCORE_KEYS * (dim | 1));
        long perHead = 4L * dim * ROWS;
        long fit = (SCORE_SHARED_TARGET - fixed) / perHead;
        return (int) Math.max(1, Math.min(heads, fit));
    }

    /**
     * Dynamic shared memory of {@code sparsa_li_scores}: the group's weights ({@code heads · SCORE_ROWS}
     * floats), the queries of {@code cached} heads ({@code cached · dim · SCORE_ROWS}) and a key tile
     * ({@code SCORE_KEYS} rows of {@code dim | 1} floats).
     */
    static int scoreShared(int heads, int cached, int dim) {
        return 4 * (heads * ROWS + cached * dim * ROWS + CudaTopKQueryEstimatedPlan.SCORE_KEYS * (dim | 1));
    }

    /**
     * Builds the skeleton on {@code rt}'s device, with work lists for CTAs of each of {@code rowsPerCta}.
     * Throws {@link IllegalArgumentException} with the {@link #refusal} when there is one, for inputs on
     * another device, or when the device's shared memory per block is too small for the shape.
     */
    CudaLightningIndexerEstimatedPlan(LightningIndexer pattern, PlanContext ctx, CudaRuntime rt, int... rowsPerCta) {
        this(pattern, ctx, rt, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES, rowsPerCta);
    }

    /**
     * As {@link #CudaLightningIndexerEstimatedPlan(LightningIndexer, PlanContext, CudaRuntime, int...)},
     * with a scores' scratch of at most {@code scratchBudget} bytes (at least one row group).
     */
    CudaLightningIndexerEstimatedPlan(LightningIndexer pattern, PlanContext ctx, CudaRuntime rt, long scratchBudget,
                                      int[] rowsPerCta) {
        String why = refusal(pattern, ctx);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        super(ctx, rt);
        this.pattern = pattern;
        this.inputs = pattern.inputs();
        CudaDevice dev = rt.device();
        Device where = Device.cuda(dev.ordinal());
        for (Tensor t : new Tensor[] {inputs.queries(), inputs.keys(), inputs.weights()}) {
            if (!t.device().equals(where)) {
                throw new IllegalArgumentException("indexer inputs: on " + t.device() + " but the plan is on "
                        + where);
            }
        }
        AttentionShape s = ctx.shape();
        int nk = s.keyLength();
        int batch = s.batch();
        int cap = rowCapacity(pattern, ctx);
        int dim = inputs.dim();
        int needed = CudaTopKEstimatedPlan.selectShared(dim, nk) + CudaTopKEstimatedPlan.SELECT_STATIC_SHARED;
        if (needed > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException(nk + " keys: the selection needs " + needed
                    + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        this.headsCached = headsCached(inputs.heads(), dim);
        this.scoreShared = scoreShared(inputs.heads(), headsCached, dim);
        if (scoreShared > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException("indexer " + inputs.heads() + " x " + dim + ": the scores need "
                    + scoreShared + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        this.rows = new RowListEstimate(dev, ctx, batch, cap, cap, scratchBudget, rowsPerCta,
                r -> workItems(ctx, cap, r, false), () -> gatherItems(ctx, cap));
        own(rows.memory());
    }

    /**
     * The gather kernel's list ({@value DevicePlan#PACKED_ROWS} rows per CTA), as {@link DevicePlan}
     * builds it for {@link #hostLayout}'s plan: head-packed where a GQA group holds two heads or more;
     * else the plain list of one row per CTA for more than {@value DevicePlan#FEW_ROWS} query rows, and
     * none for fewer (the geometry's kernel runs them).
     */
    static int[] gatherItems(PlanContext ctx, int cap) {
        if (ctx.shape().groupSize() > 1) {
            return workItems(ctx, cap, DevicePlan.PACKED_ROWS, true);
        }
        return ctx.queryLength() > DevicePlan.FEW_ROWS ? workItems(ctx, cap, DevicePlan.PACKED_ROWS, false) : null;
    }

    /**
     * The work items for CTAs of {@code rows} query rows in the device format, the rows that may keep
     * more keys first (each bounded by its visible keys and {@code cap}); slice {@code b · qHeads + h}
     * reads layout {@code b}. Without {@code packHeads}: one item per (slice, query row). With it, as
     * {@link DevicePlan#workItems} stacks heads of one-row tiles: per (batch entry, GQA group, query row),
     * items of up to {@code rows} consecutive heads of the group.
     */
    static int[] workItems(PlanContext ctx, int cap, int rows, boolean packHeads) {
        AttentionShape s = ctx.shape();
        int nq = ctx.queryLength();
        int qh = s.qHeads();
        int group = s.groupSize();
        long[] costs = new long[nq];
        for (int r = 0; r < nq; r++) {
            long last = lastVisibleKey(ctx, r);
            costs[r] = last < 0 ? 0 : (Math.min(last + 1, cap) + 63) / 64;
        }
        List<long[]> items = new ArrayList<>();
        for (int b = 0; b < s.batch(); b++) {
            if (packHeads) {
                for (int g0 = 0; g0 < qh; g0 += group) {
                    for (int r = 0; r < nq; r++) {
                        for (int j = 0; j < group; j += rows) {
                            int n = Math.min(rows, group - j);
                            items.add(new long[] {costs[r], (long) b * qh + g0 + j, b, r, 0, -1, n, 1, 0});
                        }
                    }
                }
            } else {
                for (int h = 0; h < qh; h++) {
                    for (int r = 0; r < nq; r++) {
                        items.add(new long[] {costs[r], (long) b * qh + h, b, r, 0, -1});
                    }
                }
            }
        }
        return DevicePlan.packWork(items);
    }

    /**
     * One batch entry's layout in the device plan's form, on the host: query row {@code r} is tile
     * {@code r}, one row whose keys {@code selected[r]} (ascending, {@link LightningIndexer#select}'s
     * form) are unconditional; every query head of the entry maps to it.
     *
     * @throws IllegalArgumentException if {@code selected} does not hold one list per query row
     */
    public static HeadLayout hostLayout(PlanContext ctx, int[][] selected) {
        return CudaTopKQueryEstimatedPlan.hostLayout(ctx, ForcedKeys.NONE, selected);
    }

    /**
     * The pattern over host copies of its inputs (copied synchronously now): what the host path of
     * {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
     * dev.sparsa.spec.RunOptions)} plans for host tensors.
     */
    LightningIndexer onHost() {
        return LightningIndexer.of(pattern.topK(), new IndexerInputs(inputs.queries().toHost(), inputs.keys().toHost(),
                inputs.weights().toHost()));
    }

    /** The pattern estimated. */
    @Override
    public LightningIndexer pattern() {
        return pattern;
    }

    /** The estimate's kernels, in launch order, joined by {@code +}. */
    static final String KERNELS = "sparsa_li_scores+sparsa_tq_rank+sparsa_tq_emit+sparsa_tq_emit_rows";

    /**
     * Queues the estimate on {@code stream}: per chunk of row groups the index scores from the
     * pattern's inputs, then the selection; then the lists. The attention's Q and K are not read.
     */
    @Override
    synchronized void queueEstimate(Tensor q, Tensor k, CudaStream stream) {
        AttentionShape s = ctx.shape();
        CudaModule mod = runtime().module();
        Tensor iq = inputs.queries();
        Tensor ik = inputs.keys();
        Tensor iw = inputs.weights();
        int causal = ctx.causal() ? 1 : 0;
        int dim = inputs.dim();
        rows.queue(mod, stream, dim, 0, 0, (g0, m, groups, scratch) ->
            EstimatedSkeleton.launch(mod.function("sparsa_li_scores", scoreShared), m, 1, 1,
                    CudaTopKQueryEstimatedPlan.SCORE_THREADS, scoreShared, stream, "sparsa_li_scores",
                    Pointer.to(CudaTensors.buffer("indexer queries", iq).pointer(iq.byteOffset())), i64(iq.stride(0)),
                    i64(iq.stride(1)), i64(iq.stride(2)),
                    Pointer.to(CudaTensors.buffer("indexer keys", ik).pointer(ik.byteOffset())), i32(outKind(ik.dtype())),
                    i64(ik.stride(0)), i64(ik.stride(2)),
                    Pointer.to(CudaTensors.buffer("indexer weights", iw).pointer(iw.byteOffset())),
                    i32(outKind(iw.dtype())), i64(iw.stride(0)), i64(iw.stride(2)), i64(iw.stride(3)),
                    i32(inputs.heads()), i32(headsCached), i32(dim), i32(s.queryLength()), i32(s.keyLength()),
                    i32(causal), i32(ctx.queryOffset()), i64(g0), i32(groups), Pointer.to(scratch.pointer())));
    }

    /**
     * The selection of batch entry {@code b} as the device last wrote it: per query row, its ascending
     * keys (the form of {@link LightningIndexer#select}). Copies synchronously; for tests.
     */
    int[][] selection(int b) {
        return rows.selection(b);
    }

    /**
     * The lists of batch entry {@code b} as the device last wrote them, in the form of {@link
     * HeadLayout}'s arrays ({@code CudaTopKQueryEstimatedPlan.lists}' order). Copies synchronously; for tests.
     */
    int[][] lists(int b) {
        return rows.lists(b);
    }

    /** At most {@code topK} keys per query row. */
    @Override
    public double visitedFractionBound() {
        return visitedFractionBound(pattern, ctx);
    }

    /** {@link #visitedFractionBound()} of the plan this pattern and context would make, known before one is made. */
    static double visitedFractionBound(LightningIndexer pattern, PlanContext ctx) {
        return keptFraction(ctx, 1, pattern.topK());
    }

    @Override
    String kernels() {
        return KERNELS;
    }
}
