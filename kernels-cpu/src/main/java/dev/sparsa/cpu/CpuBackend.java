package dev.sparsa.cpu;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.DecodeArguments;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * The CPU backend ({@code "cpu"}, priority 0): a FlashAttention-2 style kernel over any {@link
 * SparsePlan}, in the Vector API where {@code jdk.incubator.vector} is readable and in plain Java
 * otherwise (see {@link KernelFlavour}).
 *
 * <p>Supports plan geometries whose {@code tileRows} and {@code blockCols} are multiples of 8, and
 * head and value dimensions that are multiples of 8 up to 256; f32, f16 and bf16 inputs in any
 * strides with a unit last axis (BHSD, BSHD); output in f32 or the input type; LSE in f32. Work is
 * split over (batch, query head or GQA group, run of query tiles) items scheduled largest first on
 * {@link #workers()}: the calling thread works through the items and helpers on the pool take what is left
 * when they start, so a call never waits for a queued helper (calls from the pool's own threads
 * cannot hang, and a small call does not wait behind large ones). Results are bitwise identical for
 * any thread count.
 *
 * <p>Tensors in a confined {@link java.lang.foreign.Arena} can only be read by their owner thread,
 * so such calls run entirely on the calling thread (same results, one core).
 *
 * <p>Cancellation: an interrupt of the calling thread (or of a pool thread running an item, as
 * {@code shutdownNow()} does) stops the call between tiles; {@code forward} then throws {@link
 * java.util.concurrent.CancellationException} with the interrupt status still set, and the output
 * and LSE are undefined.
 *
 * <p>Decode against a KV cache ({@link #decode}, {@link #select}; see {@link CpuDecode}) runs on the
 * same workers under the same rules: caller-runs, cancellable between work items, on the calling
 * thread alone when Q, the output, the LSE or the cache's storage is confined to it.
 *
 * <p>Thread-safe: concurrent {@code forward} and {@code decode} calls are allowed. The no-argument
 * constructor (used by {@link java.util.ServiceLoader}) picks the best flavour and the process-wide
 * {@link Workers#shared()} pool ({@code availableProcessors()} workers, daemon threads released when
 * idle), which estimator planning uses too.
 */
public final class CpuBackend implements AttentionBackend {
    /** Largest head or value dimension the kernel runs. */
    public static final int MAX_DIM = 256;

    private final TileMath math;
    private final Workers workers;
    private final LinearCostModel costModel;

    /** The best available flavour on {@link Workers#shared()}. */
    public CpuBackend() {
        this(TileMathProvider.best(), Workers.shared());
    }

    /**
     * The best available flavour on its own pool of {@code threads} daemon threads; a call runs on
     * the calling thread and up to {@code threads − 1} of them.
     *
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public CpuBackend(int threads) {
        this(TileMathProvider.best(), Workers.ownPool(threads, "sparsa-cpu"));
    }

    /**
     * The given flavour on its own pool of {@code threads} workers.
     *
     * @throws IllegalArgumentException if {@code threads < 1}, or {@code flavour} is VECTOR and the
     *     Vector API is not usable here (the message says which flag to add)
     */
    public CpuBackend(KernelFlavour flavour, int threads) {
        this(mathFor(flavour), Workers.ownPool(threads, "sparsa-cpu"));
    }

    /**
     * The given flavour on a caller-supplied executor, running at most {@code parallelism} work
     * items at a time: the calling thread works too and up to {@code parallelism − 1} helper tasks go
     * to the executor (each item runs entirely on one thread). The executor is not shut down by this
     * backend; a call completes on the calling thread if the executor rejects its tasks or never
     * starts them, also when the call comes from one of the executor's own threads.
     *
     * @throws IllegalArgumentException if an argument is null or {@code parallelism < 1}, or the
     *     flavour is not usable here
     */
    public CpuBackend(KernelFlavour flavour, Executor executor, int parallelism) {
        this(mathFor(flavour), Workers.of(executor, parallelism));
    }

    /**
     * The given flavour on the given workers.
     *
     * @throws IllegalArgumentException if an argument is null or the flavour is not usable here
     */
    public CpuBackend(KernelFlavour flavour, Workers workers) {
        this(mathFor(flavour), workers);
    }

    private CpuBackend(TileMath math, Workers workers) {
        if (workers == null) {
            throw new IllegalArgumentException("workers: must not be null");
        }
        this.math = math;
        this.workers = workers;
        this.costModel = CpuCostModel.of(math, workers.parallelism());
    }

    /** The arithmetic this backend's kernel runs. */
    TileMath math() {
        return math;
    }

    private static TileMath mathFor(KernelFlavour flavour) {
        if (flavour == null) {
            throw new IllegalArgumentException("flavour: must not be null (VECTOR or SCALAR)");
        }
        if (flavour == KernelFlavour.SCALAR) {
            return TileMathProvider.scalar();
        }
        try {
            return TileMathProvider.vector();
        } catch (UnsupportedOperationException e) {
            throw new IllegalArgumentException("flavour: VECTOR is not usable here: " + e.getMessage(), e);
        }
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability availability() {
        String line = math.description() + ", " + parallelism() + " thread(s)";
        if (math.flavour() == KernelFlavour.SCALAR && TileMathProvider.best().flavour() == KernelFlavour.SCALAR) {
            line += "; " + TileMathProvider.bestMessage();
        }
        return Availability.yes(line);
    }

    /** The kernel flavour this backend runs. */
    public KernelFlavour flavour() {
        return math.flavour();
    }

    /** One line naming the kernel and its vector width. */
    public String kernelDescription() {
        return math.description();
    }

    /** How many work items run at once at most. */
    public int parallelism() {
        return workers.parallelism();
    }

    /**
     * The threads this backend runs on; bind them around planning to keep estimators within the same
     * bound: {@code backend.workers().call(() -> pattern.plan(ctx, q, k))}.
     */
    public Workers workers() {
        return workers;
    }

    /** Rows the kernel computes together (the f32 vector lanes; 1 for the scalar flavour): a tile's rows are padded to it. */
    public int lanes() {
        return math.lanes();
    }

    /**
     * The kernel's cost model, fitted to this kernel's timings (see {@code CpuCostModel}): rows padded
     * to {@link #lanes()}, GQA groups stacked, work spread over {@link #parallelism()} workers.
     */
    @Override
    public LinearCostModel costModel() {
        return costModel;
    }

    @Override
    public boolean supports(TileGeometry geometry) {
        return geometry != null && geometry.tileRows() % 8 == 0 && geometry.blockCols() % 8 == 0;
    }

    @Override
    public String supportedGeometries() {
        return "tileRows and blockCols each a multiple of 8 (8..4096), e.g. 64x64 or 128x64";
    }

    @Override
    public String refusal(AttentionShape shape, DType dtype, TileGeometry geometry) {
        if (!supports(geometry)) {
            return "geometry: the cpu backend runs " + supportedGeometries() + ", got " + geometry;
        }
        String head = dimRefusal("headDim", shape.headDim());
        return head != null ? head : dimRefusal("valueDim", shape.valueDim());
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException also for a geometry that is not a multiple of 8, or a head or
     *     value dimension that is not a multiple of 8 in [8, 256]
     */
    @Override
    public boolean runsOn(Device device) {
        return device != null && device.isHost();
    }

    @Override
    public Device defaultDevice() {
        return Device.CPU;
    }

    /**
     * The plan's work items and row bookkeeping, computed once.
     *
     * @throws IllegalArgumentException if the device is not the host or the geometry is not a
     *     multiple of 8
     */
    @Override
    public PreparedPlan prepare(SparsePlan plan, Device device) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (!runsOn(device)) {
            throw new IllegalArgumentException("device: the cpu backend runs on the host, got " + device);
        }
        if (!supports(plan.geometry())) {
            throw new IllegalArgumentException("geometry: the cpu backend runs " + supportedGeometries() + ", got "
                    + plan.geometry());
        }
        return new CpuPreparedPlan(plan, this);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException also for tensors that are not on the host, or a head or value
     *     dimension that is not a multiple of 8 in [8, 256]
     */
    @Override
    public void forward(PreparedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                        RunOptions options) {
        Device where = ForwardArguments.device(q, k, v, out, lse);
        if (!where.isHost()) {
            throw new IllegalArgumentException("device: the cpu backend reads host tensors, these are on " + where
                    + " (copy them with Tensor.toHost(), or run on that device's backend)");
        }
        CpuPreparedPlan plan = ForwardArguments.prepared(prepared, name(), CpuPreparedPlan.class, where);
        AttentionShape shape = ForwardArguments.validate(plan.plan(), q, k, v, out, lse, options);
        requireDim("headDim", shape.headDim());
        requireDim("valueDim", shape.valueDim());
        if (shape.queryLength() == 0) {
            return;
        }
        TileRunner runner = new TileRunner(math, plan.plan(), shape, q, k, v, out, lse, options);
        runner.clearUncoveredRows(plan);
        List<WorkItem> items = plan.items();
        workers.forTensors(q, k, v, out, lse).forEach(items.size(), i -> runner.run(items.get(i)));
    }

    // ------------------------------------------------------------------ decode (CpuDecode)

    /**
     * {@inheritDoc}
     *
     * <p>Null for host caches whose head and value dims are multiples of 8 from 8 to {@value
     * #MAX_DIM} (the rule {@code forward} applies to its dims), in any dtype and for any row count;
     * else the first of these that fails.
     */
    @Override
    public String decodeRefusal(DecodeShape shape) {
        if (shape == null) {
            throw new IllegalArgumentException("shape: must not be null");
        }
        if (!shape.device().isHost()) {
            return "device: the cpu backend decodes host caches, this one is on " + shape.device();
        }
        String head = dimRefusal("headDim", shape.headDim());
        return head != null ? head : dimRefusal("valueDim", shape.valueDim());
    }

    /**
     * {@inheritDoc}
     *
     * <p>Runs {@link CpuDecode} on {@link #workers()}: each (sequence, KV head) streams its keys once
     * for the group's query heads and rows, split into chunks by the options' {@link
     * dev.sparsa.kv.SplitKv} rule evaluated with the machine's processor count. Caller-runs and
     * cancellable between chunks like {@code forward}; a cache, Q, output or LSE in a confined arena
     * runs on the calling thread alone.
     */
    @Override
    public void decode(Tensor q, KvCache cache, DecodeSelection selection, Tensor out, Tensor lse,
                       DecodeOptions options) {
        AttentionShape shape = DecodeArguments.validate(q, cache, selection, out, lse, options);
        String refusal = decodeRefusal(DecodeShape.of(cache, q));
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        CpuDecode call = new CpuDecode(DecodeMathProvider.forFlavour(math.flavour()), math, shape, q, cache, selection, out,
                lse, options);
        call.execute(workers.forTensors(q, out, lse).forTensors(CacheAccess.storage(cache)));
    }

    /**
     * Scores Quest's bounds and top-k's keys on host caches (f32 and bf16 rows in place, f16 and e4m3
     * rows widened to f32 first), (sequence, KV head) pairs on {@link #workers()}; static patterns and
     * device caches take the default selection.
     */
    @Override
    public DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        if (!pattern.dataDependent() || !CpuDecodeScorer.covers(cache) || !q.isHost()) {
            return DecodeSelector.select(q, cache, pattern);
        }
        CpuDecodeScorer scorer = new CpuDecodeScorer(DecodeMathProvider.forFlavour(math.flavour()), math, q, cache);
        return DecodeSelector.select(q, cache, pattern, scorer,
                workers.forTensors(q).forTensors(CacheAccess.storage(cache)));
    }

    private static void requireDim(String name, int value) {
        String why = dimRefusal(name, value);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
    }

    private static String dimRefusal(String name, int value) {
        return value % 8 != 0 || value < 8 || value > MAX_DIM
                ? name + ": the cpu backend runs multiples of 8 from 8 to " + MAX_DIM + ", got " + value
                : null;
    }

    @Override
    public String toString() {
        return "CpuBackend[" + math.description() + ", " + parallelism() + " thread(s)]";
    }
}
