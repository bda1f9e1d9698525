package dev.sparsa.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Chunked prefill: a prompt appended to a KV cache chunk by chunk, each chunk attending to the cache
 * so far with its query offset (the tokens already cached), gives the one-shot prefill's rows, for
 * dense and every static pattern family, on a contiguous and on a paged cache (with the default
 * 64-row tiles, chunks start on tile boundaries, where tile-based families keep their tiles).
 * MoA's elastic windows are left out: their width grows with the length, and a chunk knows only the
 * length so far; fixed per-head windows stand for the family.
 */
class ChunkedPrefillTest {
    private static final int[] CHUNKS = {128, 64, 192, 67};

    static Stream<Arguments> patterns() {
        List<Arguments> list = new ArrayList<>();
        list.add(Arguments.of("dense", Dense.INSTANCE));
        for (CatalogueEntry e : PatternCatalogue.examples()) {
            if (!e.pattern().dataDependent() && !e.description().contains("elastic")) {
                list.add(Arguments.of(e.family() + ": " + e.description(), e.pattern()));
            }
        }
        list.add(Arguments.of("sliding-window: fixed windows per head", Patterns.perHeadWindows(new int[] {16, 64, 130, 300}, 4)));
        list.add(Arguments.of("vertical-slash explicit", Patterns.verticalSlash(new int[] {0, 5, 130, 300},
                new int[] {0, 1, 64, 200}, VsSemantics.EXACT)));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("patterns")
    void chunksMatchTheOneShotPrefill(String name, Pattern pattern) {
        int n = 0;
        for (int c : CHUNKS) {
            n += c;
        }
        for (DType dtype : List.of(DType.F32, DType.BF16, DType.E4M3)) {
            AttentionShape s = new AttentionShape(1, 4, 2, n, n, 32, 32);
            Problems.Qkv p = Problems.qkv(n + name.length(), s, dtype, Layout.BHSD);
            Options o = Options.causalMask().withOutputDType(DType.F32);
            SparsePlan whole = pattern.plan(PlanContext.of(s, o));
            ReferenceResult ref = ReferenceAttention.plan(whole, p.q(), p.k(), p.v(), o);
            // e4m3: caches under the scales of the generated K and V, so that they hold exactly those values
            KvCache[] caches = dtype.isScaled()
                    ? new KvCache[] {ContiguousKvCache.allocateE4m3(1, 2, n, 32, 32, p.k().scales(), p.v().scales()),
                            PagedKvCache.allocateE4m3(1, 2, 32, 32, 16, (n + 15) / 16, false, p.k().scales(), p.v().scales())}
                    : new KvCache[] {ContiguousKvCache.allocate(dtype, 1, 2, n, 32, 32),
                            PagedKvCache.allocate(dtype, 1, 2, 32, 32, 16, (n + 15) / 16, false)};
            for (KvCache cache : caches) {
                Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, n, 32);
                int at = 0;
                for (int c : CHUNKS) {
                    cache.append(0, p.k().narrowSeq(at, c), p.v().narrowSeq(at, c));
                    AttentionResult r = Attention.prefillWithLse(p.q().narrowSeq(at, c), cache, 0, pattern, o);
                    Tensor.copy(r.output(), out.narrowSeq(at, c));
                    at += c;
                }
                double err = ref.maxRelativeError(out);
                // e4m3 runs on the CPU, in f32 on the inputs' values, into f32 outputs: the f32 bound
                assertTrue(err <= Problems.tolerance(dtype.isScaled() ? DType.F32 : dtype), name + " " + dtype + " " + cache.getClass().getSimpleName()
                        + ": " + err);
            }
        }
    }
}
