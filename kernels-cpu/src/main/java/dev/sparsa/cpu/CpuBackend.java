package dev.sparsa.cpu;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The CPU backend ({@code "cpu"}, priority 0): a FlashAttention-2 style kernel over any {@link
 * SparsePlan}, in the Vector API where {@code jdk.incubator.vector} is readable and in plain Java
 * otherwise (see {@link KernelFlavour}).
 *
 * <p>Supports plan geometries whose {@code tileRows} and {@code blockCols} are multiples of 8, and
 * head and value dimensions that are multiples of 8 up to 256; f32, f16 and bf16 inputs in any
 * strides with a unit last axis (BHSD, BSHD); output in f32 or the input type; LSE in f32. Work is
 * split over (batch, query head or GQA group, query tile) items scheduled largest first on a pool of
 * daemon threads (or a caller-supplied executor); results are bitwise identical for any thread
 * count.
 *
 * <p>Tensors in a confined {@link java.lang.foreign.Arena} can only be read by their owner thread,
 * so such calls run entirely on the calling thread (same results, one core).
 *
 * <p>Thread-safe: concurrent {@code forward} calls are allowed. The no-argument constructor (used by
 * {@link java.util.ServiceLoader}) picks the best flavour and a pool of {@code
 * availableProcessors()} threads, created lazily and released when idle.
 */
public final class CpuBackend implements AttentionBackend {
    /** Largest head or value dimension the kernel runs. */
    public static final int MAX_DIM = 256;
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final TileMath math;
    private final Executor executor;
    private final int parallelism;
    private final LinearCostModel costModel;

    /** The best available flavour on a pool of {@code availableProcessors()} daemon threads. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /**
     * The best available flavour on its own pool of {@code threads} daemon threads.
     *
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public CpuBackend(int threads) {
        this(TileMathProvider.best(), threads);
    }

    /**
     * The given flavour on its own pool of {@code threads} daemon threads.
     *
     * @throws IllegalArgumentException if {@code threads < 1}, or {@code flavour} is VECTOR and the
     *     Vector API is not usable here (the message says which flag to add)
     */
    public CpuBackend(KernelFlavour flavour, int threads) {
        this(mathFor(flavour), threads);
    }

    /**
     * The given flavour on a caller-supplied executor, running at most {@code parallelism} work
     * items at a time: the calling thread works too and {@code parallelism − 1} tasks go to the
     * executor (each item runs entirely on one thread). The executor is not shut down by this
     * backend; a call still completes, on the calling thread, if the executor rejects its tasks.
     *
     * @throws IllegalArgumentException if an argument is null or {@code parallelism < 1}, or the
     *     flavour is not usable here
     */
    public CpuBackend(KernelFlavour flavour, Executor executor, int parallelism) {
        if (executor == null) {
            throw new IllegalArgumentException("executor: must not be null");
        }
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism: must be >= 1, got " + parallelism);
        }
        this.math = mathFor(flavour);
        this.executor = executor;
        this.parallelism = parallelism;
        this.costModel = CpuCostModel.of(math, parallelism);
    }

    private CpuBackend(TileMath math, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads: must be >= 1, got " + threads);
        }
        this.math = math;
        this.parallelism = threads;
        this.executor = threads == 1 ? Runnable::run : ownPool(threads);
        this.costModel = CpuCostModel.of(math, threads);
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

    private static Executor ownPool(int threads) {
        int id = POOL_IDS.incrementAndGet();
        AtomicInteger n = new AtomicInteger();
        ThreadFactory factory = r -> {
            Thread t = new Thread(r, "sparsa-cpu-" + id + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        ThreadPoolExecutor pool = new ThreadPoolExecutor(threads, threads, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), factory);
        pool.allowCoreThreadTimeOut(true);
        return pool;
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
        String line = math.description() + ", " + parallelism + " thread(s)";
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

    /** How many work items run at once. */
    public int parallelism() {
        return parallelism;
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
        boolean shareable = sharedAccess(q) && sharedAccess(k) && sharedAccess(v) && sharedAccess(out)
                && (lse == null || sharedAccess(lse));
        execute(plan.items(), runner, shareable ? parallelism : 1);
    }

    /** An unstarted thread: a confined segment is never accessible by it. */
    private static final Thread NOT_THE_OWNER = Thread.ofPlatform().unstarted(() -> { });

    private static boolean sharedAccess(Tensor t) {
        return t.segment().isAccessibleBy(NOT_THE_OWNER);
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

    /**
     * Runs the items on up to {@code maxWorkers} workers pulling from one shared counter. The calling
     * thread is one of them, so at most {@code maxWorkers} items run at once and a rejecting executor
     * only means fewer helpers.
     */
    private void execute(List<WorkItem> items, TileRunner runner, int maxWorkers) {
        int workers = Math.min(maxWorkers, items.size());
        if (workers <= 1) {
            for (WorkItem item : items) {
                runner.run(item);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        int helpers = workers - 1;
        CountDownLatch done = new CountDownLatch(helpers);
        Runnable worker = () -> {
            try {
                drain(items, runner, next, failure);
            } finally {
                done.countDown();
            }
        };
        int submitted = 0;
        try {
            for (; submitted < helpers; submitted++) {
                executor.execute(worker);
            }
        } catch (RejectedExecutionException e) {
            // fewer helpers: the calling thread does the rest
        } finally {
            for (int i = submitted; i < helpers; i++) {
                done.countDown();
            }
        }
        drain(items, runner, next, failure);
        boolean interrupted = false;
        while (true) {
            try {
                done.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
        if (t != null) {
            throw new IllegalStateException("cpu kernel failed", t);
        }
    }

    private static void drain(List<WorkItem> items, TileRunner runner, AtomicInteger next,
                              AtomicReference<Throwable> failure) {
        try {
            for (int i = next.getAndIncrement(); i < items.size(); i = next.getAndIncrement()) {
                runner.run(items.get(i));
            }
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
            next.set(items.size());
        }
    }

    @Override
    public String toString() {
        return "CpuBackend[" + math.description() + ", " + parallelism + " thread(s)]";
    }
}
