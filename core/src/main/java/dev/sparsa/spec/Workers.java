package dev.sparsa.spec;

import dev.sparsa.tensor.Tensor;
import java.util.concurrent.CancellationException;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;
import java.util.function.Supplier;

/**
 * A bound on the threads a call may use: the calling thread plus up to {@code parallelism − 1}
 * helper tasks offered to an executor. The CPU kernel and estimator planning both run their work
 * items through one of these.
 *
 * <p>Caller-runs: the calling thread always works through the items itself, helpers only take
 * items that are still left when they start, and the caller never waits for a helper that has not
 * started (it withdraws it instead). So a call cannot hang when every thread of the executor is
 * busy, including when the call comes from one of the executor's own threads, and a small call never
 * waits behind the queued helpers of large ones. A rejecting or shut-down executor only means fewer
 * helpers.
 *
 * <p>Cancellation: every worker checks, before each item, whether its thread is interrupted (a
 * caller's {@link Thread#interrupt()}, an executor's {@code shutdownNow()}); if so the call stops
 * taking items, waits only for the items already running, and throws {@link
 * CancellationException}. The interrupt status stays set. Whatever the items were writing is then
 * incomplete.
 *
 * <p>Thread-safe and immutable; any number of calls may share one instance.
 */
public final class Workers {
    private static final ScopedValue<Workers> CURRENT = ScopedValue.newInstance();
    private static final Workers CALLER_ONLY = new Workers(Runnable::run, 1, "the calling thread");
    private static final AtomicInteger POOL_IDS = new AtomicInteger();
    /** An unstarted thread: a segment confined to some thread is never accessible by it. */
    private static final Thread NO_OWNER = Thread.ofPlatform().unstarted(() -> { });

    private final Executor executor;
    private final int parallelism;
    private final String description;

    private Workers(Executor executor, int parallelism, String description) {
        this.executor = executor;
        this.parallelism = parallelism;
        this.description = description;
    }

    /** The calling thread alone. */
    public static Workers callerOnly() {
        return CALLER_ONLY;
    }

    /**
     * The calling thread plus up to {@code parallelism − 1} helper tasks on {@code executor}, which
     * this class never shuts down.
     *
     * @throws IllegalArgumentException if {@code executor} is null or {@code parallelism < 1}
     */
    public static Workers of(Executor executor, int parallelism) {
        if (executor == null) {
            throw new IllegalArgumentException("executor: must not be null");
        }
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism: must be >= 1, got " + parallelism);
        }
        return parallelism == 1 ? CALLER_ONLY : new Workers(executor, parallelism, parallelism + " workers on " + executor);
    }

    /**
     * A pool of its own: {@code threads} daemon threads named {@code name-N-i}, which end after 30
     * idle seconds; each call uses the caller and up to {@code threads − 1} of them at once.
     *
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public static Workers ownPool(int threads, String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads: must be >= 1, got " + threads);
        }
        if (threads == 1) {
            return CALLER_ONLY;
        }
        String prefix = (name == null ? "sparsa" : name) + "-" + POOL_IDS.incrementAndGet() + "-";
        AtomicInteger n = new AtomicInteger();
        ThreadPoolExecutor pool = new ThreadPoolExecutor(threads, threads, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, prefix + n.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        return new Workers(pool, threads, threads + " workers (own daemon pool " + prefix + "*)");
    }

    /** The process-wide default: {@code availableProcessors()} workers on one daemon pool. */
    public static Workers shared() {
        return Shared.INSTANCE;
    }

    private static final class Shared {
        static final Workers INSTANCE = ownPool(Runtime.getRuntime().availableProcessors(), "sparsa");
    }

    /**
     * The workers bound by {@link #call} on this thread's current scope, else {@link #shared()}.
     * Estimator planning runs on these.
     */
    public static Workers current() {
        return CURRENT.orElse(shared());
    }

    /**
     * Runs {@code task} on the calling thread with these workers as {@link #current()} inside it (for
     * example {@code cpuBackend.workers().call(() -> pattern.plan(ctx, q, k))} bounds planning to the
     * kernel's threads).
     */
    public <T> T call(Supplier<T> task) {
        if (task == null) {
            throw new IllegalArgumentException("task: must not be null");
        }
        return ScopedValue.where(CURRENT, this).call(task::get);
    }

    /** How many items run at once at most (the caller included). */
    public int parallelism() {
        return parallelism;
    }

    /**
     * These workers, or the caller alone when a host tensor among {@code tensors} lives in memory
     * confined to one thread (a confined {@link java.lang.foreign.Arena}): only its owner may read
     * it. Null entries and device tensors are ignored.
     */
    public Workers forTensors(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null && t.device().isHost() && !t.segment().isAccessibleBy(NO_OWNER)) {
                return CALLER_ONLY;
            }
        }
        return this;
    }

    /**
     * Runs {@code body.accept(i)} once for every {@code i} in {@code [0, count)}, on the calling thread
     * and up to {@code parallelism − 1} helpers; returns when every item has run. Items may run in any
     * order and concurrently; each runs entirely on one thread.
     *
     * @throws CancellationException if a worker's thread was interrupted before the items were done
     *     (the interrupt status stays set; some items did not run)
     * @throws RuntimeException or {@link Error}: the first an item threw (the other workers stop
     *     taking items)
     */
    public void forEach(int count, IntConsumer body) {
        if (body == null) {
            throw new IllegalArgumentException("body: must not be null");
        }
        if (count <= 0) {
            return;
        }
        if (Thread.currentThread().isInterrupted()) {
            throw new CancellationException("interrupted before the first of " + count + " items (on "
                    + Thread.currentThread().getName() + ")");
        }
        Call call = new Call(count, body);
        int helpers = Math.min(parallelism, count) - 1;
        Helper[] offered = new Helper[Math.max(helpers, 0)];
        int n = 0;
        try {
            for (; n < helpers; n++) {
                offered[n] = new Helper(call);
                executor.execute(offered[n]);
            }
        } catch (RejectedExecutionException e) {
            // fewer helpers: the caller does the rest
        }
        call.drain();
        int started = 0;
        for (int i = 0; i < n; i++) {
            if (offered[i].state.compareAndSet(Helper.QUEUED, Helper.WITHDRAWN)) {
                if (executor instanceof ThreadPoolExecutor pool) {
                    pool.remove(offered[i]); // keep the queue clean; harmless if already taken
                }
            } else {
                started++;
            }
        }
        call.awaitHelpers(started);
        call.rethrow();
    }

    @Override
    public String toString() {
        return "Workers[" + description + "]";
    }

    /** One forEach: the shared item counter, the first failure, and the helpers that finished. */
    private static final class Call {
        private final int count;
        private final IntConsumer body;
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();
        private int finished;

        Call(int count, IntConsumer body) {
            this.count = count;
            this.body = body;
        }

        void drain() {
            try {
                for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
                    if (Thread.currentThread().isInterrupted()) {
                        fail(new CancellationException("interrupted before item " + i + " of " + count
                                + " (on " + Thread.currentThread().getName() + "); the output is incomplete"));
                        return;
                    }
                    body.accept(i);
                }
            } catch (Throwable t) {
                fail(t);
            }
        }

        private void fail(Throwable t) {
            failure.compareAndSet(null, t);
            next.set(count);
        }

        synchronized void helperDone() {
            finished++;
            notifyAll();
        }

        /** Waits for the helpers that started (each stops after its current item once a failure is set). */
        void awaitHelpers(int started) {
            boolean interrupted = false;
            synchronized (this) {
                while (finished < started) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        interrupted = true;
                        fail(new CancellationException("interrupted while waiting for the running items; the output is"
                                + " incomplete"));
                    }
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }

        void rethrow() {
            Throwable t = failure.get();
            if (t == null) {
                return;
            }
            if (t instanceof RuntimeException re) {
                throw re;
            }
            if (t instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException("a work item failed", t);
        }
    }

    /** A helper task: runs the call's remaining items unless the caller withdrew it first. */
    private static final class Helper implements Runnable {
        static final int QUEUED = 0;
        static final int STARTED = 1;
        static final int WITHDRAWN = 2;
        final AtomicInteger state = new AtomicInteger(QUEUED);
        private final Call call;

        Helper(Call call) {
            this.call = call;
        }

        @Override
        public void run() {
            if (!state.compareAndSet(QUEUED, STARTED)) {
                return;
            }
            try {
                call.drain();
            } finally {
                call.helperDone();
            }
        }
    }
}
