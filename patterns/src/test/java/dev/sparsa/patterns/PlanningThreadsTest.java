package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;

/**
 * Estimator planning stays within the caller's bound: it runs on {@link Workers#current()} (never
 * the common fork-join pool), reads tensors in the caller's confined arena, completes when called
 * from the pool's own threads, and an interrupt cancels it.
 */
class PlanningThreadsTest {
    private static final PlanContext CTX = Definitions.ctx(1, 4, 2, 256, 256, 16, true, 64, 64);

    private static List<Pattern> estimators() {
        return List.of(Patterns.sortLsh(3, 32, 8, 5), Patterns.reformerLsh(2, 3, 32, 5), Patterns.minferenceBlockSparse(2),
                Patterns.meanPoolBlockTopK(2, 32, false), Patterns.verticalSlashEstimate(8, 8, VsSemantics.EXACT),
                Patterns.topKPerQueryBlock(16, 4, 16), Patterns.moba(32, 3), Patterns.nsaSelection(16, 4),
                Patterns.lightningIndexerProjected(32, 2, 8, 5), Patterns.xAttention(32, 8, 0.9), Patterns.routing(4, 64, 2, 5),
                Patterns.meanPoolBlockTopP(0.9, 32), Patterns.verticalSlashEstimateTopP(0.9, 4, 64, VsSemantics.EXACT),
                Patterns.topK(20, 2, 8), Patterns.quest(16, 64, 1, 4), Patterns.doubleSparsity(new int[] {1, 5, 9}, 12, 1, 4),
                Patterns.union(Patterns.routing(4, 64, 2, 5), Patterns.slidingWindow(16)));
    }

    private static Tensor confined(Arena arena, Tensor heap) {
        Tensor t = Tensor.allocate(arena, heap.dtype(), Layout.BHSD, heap.batch(), heap.heads(), heap.seqLen(), heap.dim());
        Tensor.copy(heap, t);
        return t;
    }

    @Test
    void estimatorsPlanTensorsInTheCallersConfinedArena() {
        Problems.Qkv p = Problems.qkv(3, CTX.shape(), DType.F32, Layout.BHSD);
        for (Pattern pattern : estimators()) {
            SparsePlan onHeap = pattern.plan(CTX, p.q(), p.k());
            try (Arena arena = Arena.ofConfined()) {
                SparsePlan confined = pattern.plan(CTX, confined(arena, p.q()), confined(arena, p.k()));
                assertEquals(onHeap.pairsAdmitted(), confined.pairsAdmitted(), pattern.name());
                for (int h = 0; h < CTX.shape().qHeads(); h++) {
                    assertTrue(java.util.Arrays.deepEquals(TokenSets.keys(onHeap, 0, h), TokenSets.keys(confined, 0, h)),
                            pattern.name() + " head " + h);
                }
            }
        }
    }

    @Test
    void slicesArePlannedOnTheBoundWorkersOnly() {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Set<String> threads = ConcurrentHashMap.newKeySet();
            Tensor q = Problems.random(new SplittableRandom(1), DType.F32, Layout.BHSD, 1, 4, 256, 16, 1);
            Workers.of(pool, 3).call(() -> Plans.perSliceParallel(CTX, (b, h) -> {
                threads.add(Thread.currentThread().getName());
                return HeadLayout.builder(CTX, CTX.basePredicate()).build();
            }, "record", q));
            String caller = Thread.currentThread().getName();
            for (String t : threads) {
                assertTrue(t.equals(caller) || t.startsWith("pool-"), "slice planned on " + t + ", outside the bound");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void planningFromThePoolsOwnThreadsCompletes() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Workers workers = Workers.of(pool, 2);
            Problems.Qkv p = Problems.qkv(4, CTX.shape(), DType.F32, Layout.BHSD);
            Pattern pattern = Patterns.minferenceBlockSparse(2);
            var a = pool.submit(() -> workers.call(() -> pattern.plan(CTX, p.q(), p.k())));
            var b = pool.submit(() -> workers.call(() -> pattern.plan(CTX, p.q(), p.k())));
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                assertEquals(a.get().pairsAdmitted(), b.get().pairsAdmitted());
            });
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anInterruptedPlannerGetsCancellation() {
        Problems.Qkv p = Problems.qkv(5, CTX.shape(), DType.F32, Layout.BHSD);
        Thread.currentThread().interrupt();
        try {
            assertThrows(CancellationException.class, () -> Patterns.sortLsh(3, 32, 0, 1).plan(CTX, p.q(), p.k()));
            assertTrue(Thread.currentThread().isInterrupted());
        } finally {
            Thread.interrupted();
        }
    }
}
