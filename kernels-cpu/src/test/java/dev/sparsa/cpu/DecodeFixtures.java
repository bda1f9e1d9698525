package dev.sparsa.cpu;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;

/** Decode calls on the CPU with NaN-filled outputs, and their oracle. */
final class DecodeFixtures {
    private DecodeFixtures() {
    }

    record Run(Tensor out, Tensor lse) {
    }

    /** Random Q for a cache: {@code [batch, qHeads, rows, headDim]} of the cache's dtype. */
    static Tensor query(long seed, KvCache cache, int qHeads, int rows) {
        return Problems.random(new SplittableRandom(seed), cache.dtype(), Layout.BHSD, cache.batch(), qHeads, rows,
                cache.headDim(), 2.0);
    }

    /** A copy of {@code t} in native memory of {@code arena} (with its scales for e4m3). */
    static Tensor offHeap(java.lang.foreign.Arena arena, Tensor t) {
        Tensor n = Tensor.allocate(arena, t.dtype(), Layout.BHSD, t.batch(), t.heads(), t.seqLen(), t.dim());
        n = t.dtype().isScaled() ? n.withScales(t.scales()) : n;
        Tensor.copy(t, n);
        return n;
    }

    /** Runs decode with outputs that start as NaN, so a row the kernel forgets cannot pass. */
    static Run decode(CpuBackend backend, Tensor q, KvCache cache, DecodeSelection sel, DecodeOptions options,
                      DType outType) {
        Tensor out = Tensor.allocate(outType, Layout.BHSD, q.batch(), q.heads(), q.seqLen(), cache.valueDim());
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, q.batch(), q.heads(), q.seqLen(), 1);
        for (int b = 0; b < q.batch(); b++) {
            for (int h = 0; h < q.heads(); h++) {
                for (int r = 0; r < q.seqLen(); r++) {
                    out.fillRow(b, h, r, Float.NaN);
                    lse.set(b, h, r, 0, Float.NaN);
                }
            }
        }
        backend.decode(q, cache, sel, out, lse, options);
        return new Run(out, lse);
    }

    static ReferenceResult oracle(Tensor q, KvCache cache, DecodeSelection sel, DecodeOptions options) {
        return ReferenceDecode.decode(q, cache, sel, options.run());
    }

    static double tolerance(DType dtype) {
        return Problems.tolerance(dtype);
    }

    static double lseTolerance(DType dtype) {
        return dtype == DType.F32 ? 1e-4 : 1e-2;
    }
}
