package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import org.junit.jupiter.api.Test;

/**
 * Decode and the CPU selection on the backend's workers: calls from the executor's own threads
 * complete with the single-thread bits, helpers that never start do not stall a call, an interrupt
 * cancels a call, and a cache in a confined arena keeps the call on the calling thread.
 */
class CpuDecodeThreadsTest {
    private static final int[] LENGTHS = {150, 300, 77};
    private static final KvProblems.Caches CACHES = KvProblems.caches(21, DType.F32, LENGTHS, 2, 32, 24, 16, 40);
    private static final Tensor Q = DecodeFixtures.query(3, CACHES.contiguous(), 4, 2);
    /** Chunks of 64 keys: 6 units become 14 work items. */
    private static final DecodeOptions OPTIONS = DecodeOptions.defaults().withSplit(SplitKv.fixed(64));
    private static final DecodePattern QUEST = DecodePattern.quest(64).withWindow(16);
    private static final Duration LIMIT = Duration.ofSeconds(60);
    private static final ThreadFactory DAEMONS = r -> {
        Thread t = new Thread(r, "test-pool");
        t.setDaemon(true);
        return t;
    };

    /** Quest's selection and the decode over it: what one call of each returns. */
    private record Step(DecodeSelection selection, float[] out, float[] lse) {
    }

    private static Step step(CpuBackend backend, KvCache cache) {
        DecodeSelection sel = backend.select(Q, cache, QUEST, OPTIONS);
        DecodeFixtures.Run r = DecodeFixtures.decode(backend, Q, cache, sel, OPTIONS, DType.F32);
        return new Step(sel, r.out().toFloatArray(), r.lse().toFloatArray());
    }

    private static void assertSameStep(Step expected, Step actual) {
        assertArrayEquals(expected.out(), actual.out());
        assertArrayEquals(expected.lse(), actual.lse());
        for (int b = 0; b < LENGTHS.length; b++) {
            for (int g = 0; g < 2; g++) {
                assertArrayEquals(expected.selection().chosenSpans(b, g), actual.selection().chosenSpans(b, g));
            }
        }
    }

    private static Step single() {
        return step(new CpuBackend(KernelFlavour.SCALAR, 1), CACHES.paged());
    }

    @Test
    void callsFromTheExecutorsOwnThreadsComplete() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(3, DAEMONS);
        try {
            CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, pool, 3);
            Step expected = single();
            List<Future<Step>> calls = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                calls.add(pool.submit(() -> step(backend, CACHES.paged())));
            }
            assertTimeoutPreemptively(LIMIT, () -> {
                for (Future<Step> f : calls) {
                    assertSameStep(expected, f.get());
                }
            });
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void helpersThatNeverStartDoNotStallTheCall() {
        List<Runnable> neverRun = new ArrayList<>();
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, neverRun::add, 4);
        Step r = assertTimeoutPreemptively(LIMIT, () -> step(backend, CACHES.paged()));
        assertSameStep(single(), r);
        assertEquals(8, neverRun.size(),
                "helpers offered: two by Quest's bounds (three pieces, one per sequence), three by the choice, three by the decode");
        neverRun.forEach(Runnable::run); // late helpers find nothing left and touch nothing
        assertSameStep(single(), r);
    }

    @Test
    void anInterruptedCallerGetsCancellationAndKeepsItsInterruptStatus() {
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, 2);
        DecodeSelection sel = backend.select(Q, CACHES.paged(), QUEST, OPTIONS);
        Thread.currentThread().interrupt();
        try {
            CancellationException decode = assertThrows(CancellationException.class,
                    () -> DecodeFixtures.decode(backend, Q, CACHES.paged(), sel, OPTIONS, DType.F32));
            assertTrue(decode.getMessage().contains("interrupted"), decode.getMessage());
            assertTrue(Thread.currentThread().isInterrupted(), "interrupt status kept");
            assertThrows(CancellationException.class, () -> backend.select(Q, CACHES.paged(), QUEST, OPTIONS));
            assertTrue(Thread.currentThread().isInterrupted(), "interrupt status kept");
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void aCacheInAConfinedArenaRunsOnTheCallingThreadAlone() {
        List<Runnable> offered = new ArrayList<>();
        CpuBackend backend = new CpuBackend(KernelFlavour.SCALAR, offered::add, 4);
        PagedKvCache shared = CACHES.paged();
        try (Arena arena = Arena.ofConfined()) {
            PagedKvCache confined = PagedKvCache.wrap(DecodeFixtures.offHeap(arena, shared.keyPages()),
                    DecodeFixtures.offHeap(arena, shared.valuePages()),
                    DecodeFixtures.offHeap(arena, shared.pageBounds()), shared.pageSize(), LENGTHS.length, null);
            for (int b = 0; b < LENGTHS.length; b++) {
                confined.setBlockTable(b, shared.blockTable(b), shared.length(b));
            }
            Step r = step(backend, confined);
            assertEquals(0, offered.size(), "no helper may read a confined segment");
            assertSameStep(single(), r);
        }
    }

}
