package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend at the edges the numerics contract and the memory rules name: non-finite inputs
 * (NaN in, NaN out for the rows they reach, as the oracle gives; also through the merge of rows in
 * several tiles), a read-only host output (refused, never written through), and a shared arena
 * closed by another thread while the backend copies from it (the call fails, the JVM lives). Needs
 * a GPU: skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaEdgeCasesGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    private static void assertNaNRowsAsTheOracle(Tensor out, Tensor lse, ReferenceResult ref, AttentionShape s) {
        int nanRows = 0;
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    boolean refNaN = Double.isNaN(ref.lse(b, h, r));
                    assertEquals(refNaN, Float.isNaN(lse.get(b, h, r, 0)), "LSE NaN-ness of row (" + b + ", " + h + ", " + r + ")");
                    for (int d = 0; d < s.valueDim(); d++) {
                        float o = out.get(b, h, r, d);
                        assertTrue(refNaN ? Float.isNaN(o) : Math.abs(o - ref.out(b, h, r, d)) <= 2e-3,
                                "row (" + b + ", " + h + ", " + r + ") element " + d + ": " + o + " vs " + ref.out(b, h, r, d));
                    }
                    nanRows += refNaN ? 1 : 0;
                }
            }
        }
        assertTrue(nanRows > 0, "some rows are NaN");
    }

    private static Tensor poisoned(DType t, int b, int h, int n, int d) {
        Tensor x = Tensor.allocate(t, Layout.BHSD, b, h, n, d);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < h; j++) {
                for (int r = 0; r < n; r++) {
                    x.fillRow(i, j, r, 7f);
                }
            }
        }
        return x;
    }

    @Test
    void nonFiniteInputsGiveNaNRowsAsTheOracleDoes() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            AttentionShape s = new AttentionShape(1, 2, 1, 130, 130, 64, 64);
            Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
            SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
            Problems.Qkv p = Problems.qkv(3, s, dtype, Layout.BHSD);
            p.q().set(0, 1, 7, 3, Float.NaN);
            p.k().set(0, 0, 90, 5, Float.POSITIVE_INFINITY);
            Tensor out = poisoned(DType.F32, 1, 2, 130, 64);
            Tensor lse = poisoned(DType.F32, 1, 2, 130, 1);
            BACKEND.forward(plan, p.q(), p.k(), p.v(), out, lse, o.run());
            assertNaNRowsAsTheOracle(out, lse, ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o), s);
        }
    }

    @Test
    void aNaNPartialReachesRowsMergedOverSeveralTiles() {
        AttentionShape s = new AttentionShape(1, 1, 1, 64, 192, 64, 64);
        Options o = Options.defaults().withGeometry(new TileGeometry(64, 64));
        PlanContext ctx = PlanContext.of(s, o);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int[] rows = new int[32];
        for (int i = 0; i < 32; i++) {
            rows[i] = 2 * i;
        }
        b.tile(0, 64).full(0).end();
        b.listedTile(rows).full(2).end();
        SparsePlan plan = SparsePlan.uniform(ctx, b.build(), "rows in two tiles");
        Problems.Qkv p = Problems.qkv(4, s, DType.F32, Layout.BHSD);
        p.v().set(0, 0, 150, 9, Float.NaN); // only the even rows, in their second tile, weigh it
        Tensor out = poisoned(DType.F32, 1, 1, 64, 64);
        Tensor lse = poisoned(DType.F32, 1, 1, 64, 1);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), out, lse, o.run());
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        for (int r = 0; r < 64; r++) {
            assertEquals(Double.isNaN(ref.out(0, 0, r, 9)), Float.isNaN(out.get(0, 0, r, 9)), "row " + r);
        }
        assertTrue(Float.isNaN(out.get(0, 0, 2, 9)) && !Float.isNaN(out.get(0, 0, 3, 9)));
    }

    @Test
    void aReadOnlyHostOutputIsRefusedNotWrittenThrough() {
        AttentionShape s = new AttentionShape(1, 1, 1, 64, 64, 64, 64);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Problems.Qkv p = Problems.qkv(5, s, DType.F32, Layout.BHSD);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mem = arena.allocate(4L * 64 * 64, 64);
            mem.fill((byte) 0x55);
            Tensor readOnly = Tensor.wrap(mem.asReadOnly(), DType.F32, new int[] {1, 1, 64, 64}, new long[] {4096, 4096, 64, 1}, 0);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> BACKEND.forward(plan, p.q(), p.k(), p.v(), readOnly, null, o.run()));
            assertTrue(e.getMessage().startsWith("out:"), e.getMessage());
            for (long i = 0; i < mem.byteSize(); i++) {
                assertEquals((byte) 0x55, mem.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i), "byte " + i + " written");
            }
        }
    }

    @Test
    void aSharedArenaClosedDuringTheCopyFailsTheCallNotTheJvm() throws Exception {
        AttentionShape s = new AttentionShape(1, 8, 8, 8192, 8192, 128, 128);
        Options o = Options.causalMask().withGeometry(new TileGeometry(64, 64));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        for (int attempt = 0; attempt < 20; attempt++) {
            Arena arena = Arena.ofShared();
            Tensor q = Tensor.allocate(arena, DType.F32, Layout.BHSD, 1, 8, 8192, 128);
            Tensor k = Tensor.allocate(arena, DType.F32, Layout.BHSD, 1, 8, 8192, 128);
            Tensor v = Tensor.allocate(arena, DType.F32, Layout.BHSD, 1, 8, 8192, 128);
            Tensor out = Tensor.allocate(arena, DType.F32, Layout.BHSD, 1, 8, 8192, 128);
            CountDownLatch started = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread call = new Thread(() -> {
                started.countDown();
                try {
                    BACKEND.forward(plan, q, k, v, out, null, o.run());
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            call.start();
            started.await();
            Thread.sleep(attempt); // close at a different moment of the copies each time
            try {
                arena.close();
            } catch (IllegalStateException busy) {
                // the arena refused to close while a copy held it: also safe
            }
            assertTrue(call.join(java.time.Duration.ofSeconds(120)), "the call ended");
            Throwable t = failure.get();
            assertTrue(t == null || t instanceof IllegalStateException || t instanceof IllegalArgumentException,
                    "a closed arena gives an exception, got " + t);
        }
        // the device still works afterwards
        Problems.Qkv p = Problems.qkv(6, new AttentionShape(1, 1, 1, 64, 64, 64, 64), DType.F32, Layout.BHSD);
        SparsePlan small = Dense.INSTANCE.plan(PlanContext.of(p.shape(), o));
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 64, 64);
        BACKEND.forward(small, p.q(), p.k(), p.v(), out, null, o.run());
        assertTrue(ReferenceAttention.plan(small, p.q(), p.k(), p.v(), o).maxRelativeError(out) <= 1e-5);
    }
}
