package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend on a caller's executor: calls from the executor's own threads complete, a call
 * never waits for helpers that have not started, and interrupts cancel a call between work items.
 */
class CpuBackendThreadsTest {
    private static final AttentionShape SHAPE = new AttentionShape(1, 4, 2, 96, 96, 16, 16);
    private static final Options OPTIONS = Options.causalMask().withGeometry(new TileGeometry(8, 8));
    private static final SparsePlan PLAN = Dense.INSTANCE.plan(PlanContext.of(SHAPE, OPTIONS));
    private static final Problems.Qkv INPUTS = Problems.qkv(31, SHAPE, DType.F32, Layout.BHSD);
    private static final Duration LIMIT = Duration.ofSeconds(60);

    private static final ThreadFactory DAEMONS = r -> {
        Thread t = new Thread(r, "test-pool");
        t.setDaemon(true);
        return t;
    };

    private static Fixtures.Run single() {
        return Fixtures.run(new CpuBackend(KernelFlavour.SCALAR, 1), PLAN, INPUTS, OPTIONS);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void callsFromTheExecutorsOwnThreadsComplete(int threads) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads, DAEMONS);
        try {
            CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, pool, threads);
            Fixtures.Run expected = single();
            List<Future<Fixtures.Run>> calls = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                calls.add(pool.submit(() -> Fixtures.run(backend, PLAN, INPUTS, OPTIONS)));
            }
            assertTimeoutPreemptively(LIMIT, () -> {
                for (Future<Fixtures.Run> f : calls) {
                    assertTrue(Fixtures.bitwiseEqual(f.get().out(), expected.out()));
                }
            });
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anExecutorThatNeverStartsItsTasksDoesNotStallTheCall() {
        List<Runnable> neverRun = new ArrayList<>();
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, neverRun::add, 4);
        Fixtures.Run r = assertTimeoutPreemptively(LIMIT, () -> Fixtures.run(backend, PLAN, INPUTS, OPTIONS));
        assertTrue(Fixtures.bitwiseEqual(r.out(), single().out()));
        assertEquals(3, neverRun.size(), "three helpers offered");
        neverRun.forEach(Runnable::run); // a late helper finds nothing to do and touches nothing
        assertTrue(Fixtures.bitwiseEqual(r.out(), single().out()));
    }

    @Test
    void aCallDoesNotWaitBehindBusyPoolThreads() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2, DAEMONS);
        CountDownLatch release = new CountDownLatch(1);
        try {
            CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, pool, 2);
            for (int i = 0; i < 2; i++) {
                pool.submit(() -> {
                    release.await(); // a long call of someone else holds the thread
                    return null;
                });
            }
            Fixtures.Run r = assertTimeoutPreemptively(LIMIT, () -> Fixtures.run(backend, PLAN, INPUTS, OPTIONS));
            assertTrue(Fixtures.bitwiseEqual(r.out(), single().out()));
        } finally {
            release.countDown();
            pool.shutdownNow();
        }
    }

    @Test
    void anInterruptedCallerGetsCancellationAndKeepsItsInterruptStatus() {
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, 2);
        Thread.currentThread().interrupt();
        try {
            CancellationException e = assertThrows(CancellationException.class,
                    () -> Fixtures.run(backend, PLAN, INPUTS, OPTIONS));
            assertTrue(e.getMessage().contains("interrupted"), e.getMessage());
            assertTrue(Thread.currentThread().isInterrupted(), "interrupt status kept");
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void shutdownNowEndsCallsRunningOnThePool() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2, DAEMONS);
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, pool, 2);
        AtomicReference<Throwable> ended = new AtomicReference<>();
        CountDownLatch running = new CountDownLatch(2);
        for (int i = 0; i < 2; i++) {
            pool.execute(() -> {
                running.countDown();
                try {
                    while (true) {
                        Fixtures.run(backend, PLAN, INPUTS, OPTIONS);
                    }
                } catch (Throwable t) {
                    ended.compareAndSet(null, t);
                }
            });
        }
        assertTrue(running.await(30, TimeUnit.SECONDS));
        pool.shutdownNow();
        assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS), "calls on the pool ended after shutdownNow()");
        assertTrue(ended.get() instanceof CancellationException, String.valueOf(ended.get()));
    }
}
