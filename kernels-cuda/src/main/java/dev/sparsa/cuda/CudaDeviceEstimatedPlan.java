package dev.sparsa.cuda;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.Tensor;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntToLongFunction;

/**
 * A data-dependent plan whose selection the CUDA backend estimates on the device at each call: the
 * skeleton of its device plan is built on the host from the shape alone, and each {@link
 * CudaBackend#forward(CudaDeviceEstimatedPlan, dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor,
 * dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor,
 * dev.sparsa.spec.RunOptions)} queues, before the attention kernel, the kernels that fill it from
 * that call's Q and K, with nothing copied back. One kind per pattern: {@link CudaEstimatedPlan}
 * ({@code MeanPoolBlockTopK}), {@link CudaVsEstimatedPlan} ({@code VerticalSlashEstimator}), {@link
 * CudaTopKEstimatedPlan} (pooled {@code TopKPerQueryBlock}), {@link CudaTopKQueryEstimatedPlan}
 * ({@code TopKPerQuery}), {@link CudaLightningIndexerEstimatedPlan} ({@code LightningIndexer}, from
 * the indexer's own inputs rather than Q and K); each selects bit for bit what its CPU
 * twin selects.
 *
 * <p>Its device memory is reused by every call, so calls with one plan must be ordered on one
 * stream (or waited for in between). Closing it frees that memory (a plan collected unclosed is
 * freed by a cleaner); running a closed plan throws {@link IllegalStateException}.
 */
public abstract sealed class CudaDeviceEstimatedPlan implements AutoCloseable
        permits CudaEstimatedPlan, CudaVsEstimatedPlan, CudaTopKEstimatedPlan, CudaTopKQueryEstimatedPlan,
        CudaLightningIndexerEstimatedPlan {
    private volatile boolean closed;
    /** The context (shape, geometry, causality, query offset) the plan is built for. */
    final PlanContext ctx;
    private final CudaRuntime runtime;
    /** Set once by {@link #own}, at the end of each kind's constructor. */
    private EstimateMemory memory;
    private Cleaner.Cleanable cleanable;

    CudaDeviceEstimatedPlan(PlanContext ctx, CudaRuntime runtime) {
        this.ctx = ctx;
        this.runtime = runtime;
    }

    /** The pattern whose selection each call estimates. */
    public abstract Pattern pattern();

    /** The context the plan was built for. */
    public final PlanContext context() {
        return ctx;
    }

    /** Device memory the plan holds, in bytes: its device plan and its estimate's buffers. */
    public final long deviceBytes() {
        return memory().bytes();
    }

    /**
     * An upper bound of the fraction of the context's pairs (all of them, or the causal ones) that
     * any call's plan visits, from the pattern's budgets and the plan's capacities: see {@link
     * #keptFraction}.
     */
    public abstract double visitedFractionBound();

    /** The last key query row {@code row} may see: every key, or those up to its position under causality. */
    static long lastVisibleKey(PlanContext ctx, long row) {
        long last = ctx.keyLength() - 1L;
        return ctx.causal() ? Math.min(last, row + ctx.queryOffset()) : last;
    }

    /**
     * The work list ({@link DevicePlan#packWork}) for CTAs of {@code rows} query rows over every tile
     * of every slice, each tile's items weighted by {@code cost(tile)} (an upper bound of its work, since
     * the lists' sizes are known only on the device); layout {@code l} is slice {@code l}, rows written
     * directly.
     */
    static int[] tileWork(PlanContext ctx, int rows, IntToLongFunction cost) {
        return tileWork(ctx, ctx.geometry().tileRows(), rows, cost);
    }

    /**
     * {@link #tileWork(PlanContext, int, IntToLongFunction)} over tiles of {@code tileRows}
     * consecutive query rows (1 for per-row lists) instead of the geometry's.
     */
    static int[] tileWork(PlanContext ctx, int tileRows, int rows, IntToLongFunction cost) {
        int slices = ctx.shape().batch() * ctx.shape().qHeads();
        int nq = ctx.queryLength();
        int tiles = (nq + tileRows - 1) / tileRows;
        long[] costs = new long[tiles];
        for (int t = 0; t < tiles; t++) {
            costs[t] = cost.applyAsLong(t);
        }
        List<long[]> items = new ArrayList<>();
        for (int sl = 0; sl < slices; sl++) {
            for (int t = 0; t < tiles; t++) {
                int count = Math.min(tileRows, nq - t * tileRows);
                for (int r = 0; r < count; r += rows) {
                    items.add(new long[] {costs[t], sl, sl, t, r, -1});
                }
            }
        }
        return DevicePlan.packWork(items);
    }

    /**
     * The bound for selections that keep at most {@code keep} keys for each group of {@code
     * groupRows} consecutive query rows: {@code Σ min(visible, keep) / Σ visible} over the groups,
     * {@code visible} the keys the group's last row may see (every key without causality); 1 for an
     * empty context.
     */
    static double keptFraction(PlanContext ctx, int groupRows, long keep) {
        long nq = ctx.queryLength();
        long nk = ctx.keyLength();
        double kept = 0;
        double all = 0;
        for (long r0 = 0; r0 < nq; r0 += groupRows) {
            long rows = Math.min(groupRows, nq - r0);
            long visible = Math.max(0, lastVisibleKey(ctx, r0 + rows - 1) + 1);
            kept += (double) rows * Math.min(visible, Math.max(0, keep));
            all += (double) rows * visible;
        }
        return all == 0 ? 1.0 : Math.min(1.0, kept / all);
    }

    /** The runtime (device, module) the plan lives on. */
    final CudaRuntime runtime() {
        return runtime;
    }

    /**
     * Takes {@code memory} as the plan's device memory, freed by {@link #close()} or, for a plan
     * collected unclosed, by the shared cleaner.
     */
    final void own(EstimateMemory memory) {
        this.memory = memory;
        this.cleanable = EstimateMemory.CLEANER.register(this, memory);
    }

    /** The device memory: the device plan and the estimate's scratch buffers. */
    final EstimateMemory memory() {
        return memory;
    }

    /** The device plan the estimate fills and the attention kernel reads. */
    final DevicePlan devicePlan() {
        return memory().plan();
    }

    /** Queues the estimate's kernels on {@code stream}: they fill {@link #devicePlan()} from Q and K. */
    abstract void queueEstimate(Tensor q, Tensor k, CudaStream stream);

    /** The estimate's kernel names joined by {@code +}, for {@code CudaBackend.lastKernel()}. */
    abstract String kernels();


    /**
     * Throws unless open.
     *
     * @throws IllegalStateException once closed
     */
    final void requireOpen() {
        if (closed) {
            throw new IllegalStateException("estimated plan: " + this + " is closed");
        }
    }

    /** Frees the device memory (idempotent). */
    @Override
    public final void close() {
        if (!closed) {
            closed = true;
            cleanable.clean();
        }
    }
}
