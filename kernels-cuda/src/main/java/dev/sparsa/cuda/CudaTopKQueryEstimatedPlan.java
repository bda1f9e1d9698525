package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimatedSkeleton.i32;
import static dev.sparsa.cuda.EstimatedSkeleton.i64;

import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import jcuda.Pointer;

/**
 * A {@link TopKPerQuery} plan whose selection is estimated on the device: the skeleton of its device
 * plan ({@link DevicePlan}: layout descriptions, one tile per query row, work lists, room for each
 * row's keys) is built on the host from the shape alone, and each call queues, on the call's stream
 * and before the attention kernel, the kernels of {@code sparsa_topk_estimate.cuh}: per chunk of
 * row groups, {@code sparsa_tq_scores} (per group of {@value #SCORE_ROWS} consecutive query rows of
 * one slice: their scores against each tile of {@value #SCORE_KEYS} keys loaded once into shared
 * memory, as order keys into a scratch row per query row) and {@code sparsa_tq_rank} (per query row:
 * its forced keys set aside, the top {@code k}, ties to the lower key); then {@code sparsa_tq_emit}
 * (the per-row lists' offsets) and {@code sparsa_tq_emit_rows} (their keys, a warp per row). The scratch holds one chunk's rows of {@code keys} order keys each, at most
 * {@value #SCRATCH_BYTES} bytes (at least one row group), so longer problems take more chunks
 * ({@link #chunkGroups}). Nothing is copied back and the host does not wait. The selection is bit
 * for bit the one {@link TopKPerQuery#select} makes (the canonical arithmetic of its Javadoc).
 *
 * <p><b>The device plan's form: per-row lists.</b> Query row {@code r} of every slice is tile
 * {@code r} of the slice's layout, one row whose keys (the sinks it may see, its selection and its
 * window, ascending) are all unconditional: the form of {@link #hostLayout}, which the GPU test
 * uploads as the host road. It admits exactly the pairs {@code TopKPerQuery.plan} admits (which
 * compiles the same sets through the token-set encoder into shared tiles and one-row tiles merged by
 * LSE), so attention over it equals the host-planned road within the kernel's tolerance, and equals
 * bit for bit attention over {@link #hostLayout}'s plan. The rows' tiles are one row each and each
 * query head selects its own keys, so no two heads share a layout and head packing ({@link
 * DevicePlan#packedWorkList}) does not apply: every work item runs one row.
 *
 * <p>Made by {@link CudaBackend#prepareEstimated(TopKPerQuery, PlanContext, dev.sparsa.tensor.Device)},
 * run by {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
 * dev.sparsa.spec.RunOptions)} and {@link CudaBackend#forwardAsync(CudaDeviceEstimatedPlan, Tensor,
 * Tensor, Tensor, Tensor, Tensor, dev.sparsa.spec.RunOptions, CudaStream)} on device tensors. Its
 * device memory (the plan with room for {@code min(keys, k + sinks + window)} keys per row, the
 * selections, the scores' scratch) is reused by every call, so calls with one plan must be ordered
 * on one stream (or waited for in between). Closing it frees that memory; one collected unclosed is freed by a cleaner.
 */
public final class CudaTopKQueryEstimatedPlan extends CudaDeviceEstimatedPlan {

    private final TopKPerQuery pattern;

    /** Query rows of one slice scored together against each key tile ({@code TQ_ROWS} of the kernel). */
    static final int SCORE_ROWS = 16;
    /** Keys of one tile in shared memory ({@code TQ_KEYS} of the kernel). */
    static final int SCORE_KEYS = 128;
    /** Threads of {@code sparsa_tq_scores} ({@code TQ_THREADS}): each two keys of a tile for half the rows. */
    static final int SCORE_THREADS = 128;
    /** The most bytes of the scores' scratch (one chunk of row groups), unless one row group needs more. */
    static final long SCRATCH_BYTES = 1L << 30;
    private final int cap;
    private final int selectShared;
    private final int scoreShared;
    private final RowListEstimate rows;

    /**
     * Why the device estimate does not run this pattern in this context (the host plans it then), or
     * null: at most {@value CudaTopKEstimatedPlan#MAX_KEYS} keys (a row's order keys live in shared
     * memory), 65535 (batch, head) slices, the plan's lists and selections within 2³¹ − 1 ints, and
     * neither sequence empty.
     */
    public static String refusal(TopKPerQuery pattern, PlanContext ctx) {
        if (pattern == null || ctx == null) {
            return "pattern and context: must not be null";
        }
        AttentionShape s = ctx.shape();
        if (s.queryLength() == 0 || s.keyLength() == 0) {
            return "an empty sequence: nothing to estimate";
        }
        if (s.keyLength() > CudaTopKEstimatedPlan.MAX_KEYS) {
            return s.keyLength() + " keys: the device estimate takes at most " + CudaTopKEstimatedPlan.MAX_KEYS;
        }
        long slices = (long) s.batch() * s.qHeads();
        if (slices > 65535) {
            return slices + " slices: the device estimate takes at most 65535";
        }
        long ints = headerInts((int) slices, s.queryLength()) + slices * sliceInts(s.queryLength(), rowCapacity(pattern, ctx));
        long sel = slices * s.queryLength() * Math.min(pattern.k(), (long) s.keyLength());
        if (ints > Integer.MAX_VALUE || sel > Integer.MAX_VALUE) {
            return "shape " + s + " with k " + pattern.k() + ": the per-row lists (" + ints + " ints) or the selections ("
                    + sel + ") exceed " + Integer.MAX_VALUE;
        }
        return null;
    }

    /** The most keys one row's list holds: {@code min(keys, k + sinks + window)}. */
    static int rowCapacity(TopKPerQuery pattern, PlanContext ctx) {
        ForcedKeys f = pattern.forced();
        return (int) Math.min(ctx.keyLength(), (long) pattern.k() + f.sinks() + f.window());
    }

    /** Row groups of {@value #SCORE_ROWS} query rows in one slice: {@code ceil(nq / SCORE_ROWS)}. */
    static int groups(int nq) {
        return (nq + SCORE_ROWS - 1) / SCORE_ROWS;
    }

    /**
     * Row groups scored per chunk: as many of the {@code slices · groups(nq)} as a scratch of {@link
     * #SCRATCH_BYTES} holds at {@code SCORE_ROWS · nk} four-byte order keys per group, at least one.
     */
    static long chunkGroups(int slices, int nq, int nk) {
        return chunkGroups(slices, nq, nk, SCRATCH_BYTES);
    }

    /** {@link #chunkGroups(int, int, int)} for a scratch of at most {@code budget} bytes. */
    static long chunkGroups(int slices, int nq, int nk, long budget) {
        long total = (long) slices * groups(nq);
        long perGroup = 4L * SCORE_ROWS * Math.max(1, nk);
        return Math.max(1L, Math.min(total, budget / perGroup));
    }

    /** Bytes of the scores' scratch: {@link #chunkGroups} row groups of {@code SCORE_ROWS · nk} order keys. */
    static long scratchBytes(int slices, int nq, int nk) {
        return chunkGroups(slices, nq, nk) * SCORE_ROWS * 4L * Math.max(1, nk);
    }

    /**
     * The order keys {@code sparsa_tq_rank} holds in shared memory for the chunk of row groups {@code
     * [g0, g0 + m)} (of {@code groups} per slice): the keys its last row may see (rows of one slice see
     * no fewer keys than the rows before them; a chunk spanning two slices holds a slice's last row),
     * rounded up to a multiple of 1024, at most the context's keys. Sizing the ranks' shared memory to
     * the chunk lets more of them share a multiprocessor when causal rows see few keys.
     */
    static int rankKeys(PlanContext ctx, int groups, long g0, int m) {
        int nq = ctx.queryLength();
        long g1 = g0 + m - 1;
        int last = g0 / groups != g1 / groups
                ? nq - 1
                : (int) Math.min(nq - 1L, (g1 % groups) * SCORE_ROWS + SCORE_ROWS - 1);
        long n = lastVisibleKey(ctx, last) + 1;
        return (int) Math.min(ctx.keyLength(), (n + 1023) / 1024 * 1024);
    }

    /**
     * Dynamic shared memory of {@code sparsa_tq_scores}: the group's queries ({@code dim · SCORE_ROWS}
     * floats) and a key tile ({@code SCORE_KEYS} rows of {@code dim | 1} floats).
     */
    static int scoreShared(int headDim) {
        return 4 * (headDim * SCORE_ROWS + SCORE_KEYS * (headDim | 1));
    }

    /** Ints of the pool before the first slice's lists ({@link EstimatedSkeleton#headerInts} of one tile per row). */
    static long headerInts(int slices, int nq) {
        return (long) LI_STRIDE * slices + 4L * nq + 1;
    }

    /** The ints of one slice's lists: the unconditional offsets ({@code nq + 1}), then room for {@code capRow} keys per row. */
    static long sliceInts(int nq, int capRow) {
        return nq + 1L + (long) nq * capRow;
    }

    /**
     * Builds the skeleton on {@code rt}'s device, with work lists for CTAs of each of {@code rowsPerCta}.
     * Throws {@link IllegalArgumentException} with the {@link #refusal} when there is one, or when the
     * device's shared memory per block is too small for the shape's keys.
     */
    CudaTopKQueryEstimatedPlan(TopKPerQuery pattern, PlanContext ctx, CudaRuntime rt, int... rowsPerCta) {
        this(pattern, ctx, rt, SCRATCH_BYTES, rowsPerCta);
    }

    /**
     * As {@link #CudaTopKQueryEstimatedPlan(TopKPerQuery, PlanContext, CudaRuntime, int...)}, with a
     * scores' scratch of at most {@code scratchBudget} bytes (at least one row group): a smaller budget
     * runs more chunks of row groups.
     */
    CudaTopKQueryEstimatedPlan(TopKPerQuery pattern, PlanContext ctx, CudaRuntime rt, long scratchBudget,
                               int[] rowsPerCta) {
        String why = refusal(pattern, ctx);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        super(ctx, rt);
        this.pattern = pattern;
        CudaDevice dev = rt.device();
        AttentionShape s = ctx.shape();
        int nq = s.queryLength();
        int nk = s.keyLength();
        int slices = s.batch() * s.qHeads();
        this.cap = Math.min(pattern.k(), nk);
        int capRow = rowCapacity(pattern, ctx);
        this.selectShared = CudaTopKEstimatedPlan.selectShared(s.headDim(), nk);
        int needed = selectShared + CudaTopKEstimatedPlan.SELECT_STATIC_SHARED;
        if (needed > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException(nk + " keys: the selection needs " + needed
                    + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        this.scoreShared = scoreShared(s.headDim());
        if (scoreShared > dev.maxSharedPerBlockOptin()) {
            throw new IllegalArgumentException("head dim " + s.headDim() + ": the scores need " + scoreShared
                    + " bytes of shared memory, the device has " + dev.maxSharedPerBlockOptin());
        }
        // one-row tiles: the gather kernel's 64-row CTAs put every warp on a share of the row's keys
        // (DevicePlan.fewRowsPerTile's rule, so that the host-planned road runs the same kernel)
        this.rows = new RowListEstimate(dev, ctx, slices, cap, capRow, scratchBudget, rowsPerCta,
                r -> workItems(ctx, capRow, r),
                () -> nq > DevicePlan.FEW_ROWS ? workItems(ctx, capRow, DevicePlan.PACKED_ROWS) : null);
        own(rows.memory());
    }

    /**
     * The work items for CTAs of {@code rows} query rows: one per (slice, query row), the rows that may
     * keep more keys first (each bounded by its visible keys and {@code capRow}).
     */
    static int[] workItems(PlanContext ctx, int capRow, int rows) {
        return tileWork(ctx, 1, rows, r -> {
            long lastKey = lastVisibleKey(ctx, r);
            return lastKey < 0 ? 0 : Math.min(lastKey + 1, capRow);
        });
    }

    /**
     * One slice's layout in the device plan's form, on the host: query row {@code r} is tile {@code
     * r}, one row whose keys are unconditional: {@code forced.keys} of the row and {@code selected[r]},
     * ascending (a row without keys is an empty tile). {@code selected} is {@link TopKPerQuery#select}'s
     * form (each row's selection sorted, without forced keys, within what the row may see).
     *
     * @throws IllegalArgumentException if {@code selected} does not hold one list per query row
     */
    public static HeadLayout hostLayout(PlanContext ctx, ForcedKeys forced, int[][] selected) {
        if (selected == null || selected.length != ctx.queryLength()) {
            throw new IllegalArgumentException("selected: one list per query row (" + ctx.queryLength() + "), got "
                    + (selected == null ? null : selected.length));
        }
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int[] keys = new int[ctx.keyLength()];
        for (int r = 0; r < selected.length; r++) {
            int[] n = {0};
            forced.keys(ctx, r, (key, w) -> keys[n[0]++] = key);
            System.arraycopy(selected[r], 0, keys, n[0], selected[r].length);
            int m = n[0] + selected[r].length;
            Arrays.sort(keys, 0, m);
            b.tile(r, 1).unconditionalAll(keys, 0, m).end();
        }
        return b.build();
    }

    /** The pattern estimated. */
    @Override
    public TopKPerQuery pattern() {
        return pattern;
    }

    /** The estimate's kernels, in launch order, joined by {@code +}. */
    static final String KERNELS = "sparsa_tq_scores+sparsa_tq_rank+sparsa_tq_emit+sparsa_tq_emit_rows";

    /**
     * Queues the estimate on {@code stream}: per chunk of row groups the scores, then the selection;
     * then the lists. Q and K are device tensors of the context's shape and one dtype (checked by the
     * caller).
     */
    @Override
    synchronized void queueEstimate(Tensor q, Tensor k, CudaStream stream) {
        AttentionShape s = ctx.shape();
        CudaModule mod = runtime().module();
        ForcedKeys f = pattern.forced();
        int causal = ctx.causal() ? 1 : 0;
        rows.queue(mod, stream, s.headDim(), f.sinks(), f.window(), (g0, m, groups, scratch) -> {
            if (cap > 0) {
                EstimatedSkeleton.launch(mod.function("sparsa_tq_scores", scoreShared), m, 1, 1, SCORE_THREADS,
                        scoreShared, stream, "sparsa_tq_scores",
                        Pointer.to(CudaTensors.buffer("q", q).pointer(q.byteOffset())), i64(q.stride(0)),
                        i64(q.stride(1)), i64(q.stride(2)), Pointer.to(CudaTensors.buffer("k", k).pointer(k.byteOffset())),
                        i32(outKind(k.dtype())), i64(k.stride(0)), i64(k.stride(1)), i64(k.stride(2)), i32(s.qHeads()),
                        i32(s.groupSize()), i32(s.headDim()), i32(s.queryLength()), i32(s.keyLength()), i32(causal),
                        i32(ctx.queryOffset()), i64(g0), i32(groups), Pointer.to(scratch.pointer()));
            }
        });
    }

    /**
     * The selection of {@code slice} (batch · qHeads + head) as the device last wrote it: per query
     * row, its ascending keys (the form of {@link TopKPerQuery#select}). Copies synchronously; for tests.
     */
    int[][] selection(int slice) {
        return rows.selection(slice);
    }

    /**
     * The lists of {@code slice} as the device last wrote them: {full offsets, full blocks, partial
     * offsets, partial blocks, gather offsets, gathered keys, unconditional offsets, unconditional
     * keys}, in the form of {@link HeadLayout}'s arrays (the block and gathered lists empty). Copies
     * synchronously; for tests.
     */
    int[][] lists(int slice) {
        return rows.lists(slice);
    }

    /** At most {@code k + sinks + window} keys per query row. */
    @Override
    public double visitedFractionBound() {
        return visitedFractionBound(pattern, ctx);
    }

    /** {@link #visitedFractionBound()} of the plan this pattern and context would make, known before one is made. */
    static double visitedFractionBound(TopKPerQuery pattern, PlanContext ctx) {
        ForcedKeys f = pattern.forced();
        return keptFraction(ctx, 1, (long) pattern.k() + f.sinks() + f.window());
    }

    @Override
    String kernels() {
        return KERNELS;
    }
}
