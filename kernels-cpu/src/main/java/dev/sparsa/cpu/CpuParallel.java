package dev.sparsa.cpu;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * Runs {@code count} independent tasks on up to {@code workers} threads pulling from one counter: the
 * calling thread is one of them, the others are submitted to an executor (a rejecting executor only
 * means fewer helpers). The first failure is rethrown once all workers have stopped.
 */
final class CpuParallel {
    private CpuParallel() {
    }

    static void run(int count, IntConsumer task, Executor executor, int workers) {
        int n = Math.min(workers, count);
        if (n <= 1) {
            for (int i = 0; i < count; i++) {
                task.accept(i);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        int helpers = n - 1;
        CountDownLatch done = new CountDownLatch(helpers);
        Runnable worker = () -> {
            try {
                drain(count, task, next, failure);
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
        drain(count, task, next, failure);
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

    private static void drain(int count, IntConsumer task, AtomicInteger next, AtomicReference<Throwable> failure) {
        try {
            for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
                task.accept(i);
            }
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
            next.set(count);
        }
    }
}
