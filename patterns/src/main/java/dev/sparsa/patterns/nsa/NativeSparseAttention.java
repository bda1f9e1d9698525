package dev.sparsa.patterns.nsa;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * Native Sparse Attention (Yuan et al., DeepSeek; reference: {@code naive_nsa_with_compression} in
 * github.com/fla-org/native-sparse-attention, {@code native_sparse_attention/ops/naive.py}): three
 * attention branches over the same queries, each its own softmax, mixed per query and head by gates
 * the caller's model computes:
 * <pre>
 *   o = g_cmp · o_cmp + g_slc · o_slc + g_swa · o_swa
 * </pre>
 * <ul>
 *   <li>compressed: attention over the block means of K and V ({@link NsaCompression}), each query
 *       seeing the blocks it has seen whole ({@link NsaCompressedBranch});
 *   <li>selected: attention over the {@code blockCount} blocks chosen from the compressed scores,
 *       shared by a GQA group ({@link NsaSelection});
 *   <li>sliding window: the last {@code window} keys up to the query ({@code window} 0: no branch).
 * </ul>
 * Each branch runs as an ordinary sparse attention call (its output and LSE come back; a row a
 * branch admits nothing to contributes 0 there); the mix is computed on the host in f32.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code blockSize} or {@code blockCount} is &lt; 1 or {@code
 *     window} is negative
 */
public final class NativeSparseAttention {
    private final int blockSize;
    private final int blockCount;
    private final int window;

    public NativeSparseAttention(int blockSize, int blockCount, int window) {
        this.blockSize = Checks.atLeast("blockSize", blockSize, 1);
        this.blockCount = Checks.atLeast("blockCount", blockCount, 1);
        this.window = Checks.atLeast("window", window, 0);
    }

    /** The selected branch's pattern. */
    public NsaSelection selection(double scale) {
        return new NsaSelection(blockSize, blockCount, scale);
    }

    /** The sliding-window branch's pattern, or null when {@code window} is 0. */
    public Pattern slidingWindow() {
        return window == 0 ? null : SlidingWindow.of(window);
    }

    /**
     * The three branches and their mix.
     *
     * @param output   {@code [batch, qHeads, queryLength, valueDim]} f32 on the host: the gated mix
     * @param compressed the compressed branch (output and LSE)
     * @param selected   the selected branch
     * @param window     the sliding-window branch, or null without one
     */
    public record Result(Tensor output, AttentionResult compressed, AttentionResult selected, AttentionResult window) {
    }

    /**
     * NSA on the preferred backend (the facade's choice).
     *
     * @param gates {@code [batch, qHeads, queryLength, 3]}: per query and head the gates of the
     *              compressed, selected and window branches, in that order
     * @throws IllegalArgumentException if the gates' shape does not fit, or as the attention calls do
     */
    public Result forward(Tensor q, Tensor k, Tensor v, Tensor gates, Options options) {
        return forward(null, q, k, v, gates, options);
    }

    /** {@link #forward(Tensor, Tensor, Tensor, Tensor, Options)} on a given backend (null: the preferred one). */
    public Result forward(AttentionBackend backend, Tensor q, Tensor k, Tensor v, Tensor gates, Options options) {
        if (q == null || k == null || v == null || gates == null || options == null) {
            throw new IllegalArgumentException("q, k, v, gates, options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        if (gates.batch() != s.batch() || gates.heads() != s.qHeads() || gates.seqLen() != s.queryLength()
                || gates.dim() != 3) {
            throw new IllegalArgumentException("gates: shape " + java.util.Arrays.toString(gates.shape()) + " must be ["
                    + s.batch() + ", " + s.qHeads() + ", " + s.queryLength() + ", 3] (compressed, selected, window)");
        }
        Options f32 = options.withOutputDType(DType.F32);
        AttentionResult selected = run(backend, q, k, v, selection(options.scale()), f32);
        AttentionResult windowed = window == 0 ? null : run(backend, q, k, v, slidingWindow(), f32);
        Tensor kc = NsaCompression.meanPool(k.toHost(), blockSize);
        Tensor vc = NsaCompression.meanPool(v.toHost(), blockSize);
        if (!q.isHost()) {
            q = q.toHost(); // the compressed tensors are host tensors; the branch runs where they are
        }
        int offset = options.queryOffsetFor(s.queryLength(), s.keyLength());
        AttentionResult compressed = run(backend, q, kc.to(q.dtype(), Layout.BHSD), vc.to(q.dtype(), Layout.BHSD),
                new NsaCompressedBranch(blockSize, offset, options.causal()),
                f32.withCausal(false).withQueryOffset(null));
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
        Tensor oc = compressed.output().toHost();
        Tensor os = selected.output().toHost();
        Tensor ow = windowed == null ? null : windowed.output().toHost();
        Tensor g = gates.toHost();
        float[] mix = new float[s.valueDim()];
        float[] row = new float[s.valueDim()];
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int r = 0; r < s.queryLength(); r++) {
                    java.util.Arrays.fill(mix, 0f);
                    addScaled(mix, oc, b, h, r, g.get(b, h, r, 0), row);
                    addScaled(mix, os, b, h, r, g.get(b, h, r, 1), row);
                    if (ow != null) {
                        addScaled(mix, ow, b, h, r, g.get(b, h, r, 2), row);
                    }
                    out.writeRow(b, h, r, mix, 0);
                }
            }
        }
        return new Result(out, compressed, selected, windowed);
    }

    private static void addScaled(float[] acc, Tensor o, int b, int h, int r, float gate, float[] row) {
        o.readRow(b, h, r, row, 0);
        for (int c = 0; c < acc.length; c++) {
            acc[c] += gate * row[c];
        }
    }

    private static AttentionResult run(AttentionBackend backend, Tensor q, Tensor k, Tensor v, Pattern p, Options o) {
        if (backend == null) {
            return Attention.forwardWithLse(q, k, v, p, o.withDispatch(Dispatch.SPARSE)); // each branch exactly as defined
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        SparsePlan plan = p.plan(PlanContext.of(s, o, backend.proposedGeometry(s, q.dtype())), q, k);
        return Attention.run(backend, plan, q, k, v, o, true);
    }

    @Override
    public String toString() {
        return "NativeSparseAttention(" + blockCount + " blocks of " + blockSize + ", window " + window + ")";
    }
}
