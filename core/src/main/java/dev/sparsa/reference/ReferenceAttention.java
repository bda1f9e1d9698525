package dev.sparsa.reference;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.RowTiles;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The fp64 reference oracle. It sees exactly the values the kernels see (inputs as stored, in their
 * dtype) and computes in double precision with a plain two-pass softmax, row by row, so it shares
 * no code and no tiling with any kernel.
 *
 * <ul>
 *   <li>{@link #plan}: the token-level semantics of a {@link SparsePlan} (every key {@link
 *       HeadLayout#forEachAdmittedKey} admits for each tile holding the row, with its log-weight);
 *   <li>{@link #dense}: dense masked attention that knows nothing of plans (causality from the
 *       options, plus an optional {@link PairMask}).
 * </ul>
 *
 * Score order: {@code s = scale·q·k}, soft-cap {@code cap·tanh(s/cap)}, {@code + logWeight}, then
 * the mask. Rows with no admitted key give output 0 and LSE −∞. Non-finite values (docs/numerics.md):
 * a score beyond the f32 range counts as ±∞, as the kernels' f32 scores do; a row with a NaN or +∞
 * score gets NaN (as IEEE arithmetic gives); −∞ scores weigh 0, and a row whose every admitted
 * score is −∞ is empty (0 and −∞).
 */
public final class ReferenceAttention {
    private ReferenceAttention() {
    }

    /** The plan's semantics on every query row. */
    public static ReferenceResult plan(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        return plan(plan, q, k, v, options, IntStream.range(0, q.seqLen()).toArray());
    }

    /**
     * The plan's semantics on the given query rows (the same rows in every slice).
     *
     * @throws IllegalArgumentException if the plan does not fit the tensors or a row is out of range
     */
    public static ReferenceResult plan(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options, int[] rows) {
        AttentionShape s = AttentionShape.of(q, k, v);
        if (!s.equals(plan.shape())) {
            throw new IllegalArgumentException("plan: built for " + plan.shape() + " but the tensors have " + s);
        }
        checkRows(rows, s.queryLength());
        double scale = options.scaleFor(s.headDim());
        double[] out = new double[s.slices() * rows.length * s.valueDim()];
        double[] lse = new double[s.slices() * rows.length];
        double[] magnitude = new double[lse.length];
        KeyList keys = new KeyList();
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                int li = plan.layoutIndex(b, h);
                HeadLayout layout = plan.layouts().get(li);
                int slice = b * s.qHeads() + h;
                for (int i = 0; i < rows.length; i++) {
                    keys.clear();
                    RowTiles tiles = layout.rowTiles();
                    for (int j = tiles.start(rows[i]); j < tiles.end(rows[i]); j++) {
                        layout.forEachAdmittedKey(tiles.tile(j), rows[i], keys::add);
                    }
                    attendRow(q, k, v, b, h, s.kvHeadOf(h), rows[i], keys, scale, options.softCap(), out,
                            (slice * rows.length + i) * s.valueDim(), lse, magnitude, slice * rows.length + i);
                }
            }
        }
        return new ReferenceResult(s, rows.clone(), out, lse, magnitude);
    }

    /** Dense masked attention on every row. */
    public static ReferenceResult dense(Tensor q, Tensor k, Tensor v, Options options, PairMask mask) {
        return dense(q, k, v, options, mask, IntStream.range(0, q.seqLen()).toArray());
    }

    /** Dense masked attention on the given rows: causality (bottom-right by default) and {@code mask}. */
    public static ReferenceResult dense(Tensor q, Tensor k, Tensor v, Options options, PairMask mask, int[] rows) {
        AttentionShape s = AttentionShape.of(q, k, v);
        checkRows(rows, s.queryLength());
        PairMask m = mask == null ? PairMask.ALL : mask;
        double scale = options.scaleFor(s.headDim());
        int offset = options.queryOffsetFor(s.queryLength(), s.keyLength());
        double[] out = new double[s.slices() * rows.length * s.valueDim()];
        double[] lse = new double[s.slices() * rows.length];
        double[] magnitude = new double[lse.length];
        KeyList keys = new KeyList();
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                int slice = b * s.qHeads() + h;
                for (int i = 0; i < rows.length; i++) {
                    keys.clear();
                    long qPos = (long) rows[i] + offset;
                    for (int key = 0; key < s.keyLength(); key++) {
                        if ((!options.causal() || qPos >= key) && m.admits(b, h, rows[i], key)) {
                            keys.add(key, 0f);
                        }
                    }
                    attendRow(q, k, v, b, h, s.kvHeadOf(h), rows[i], keys, scale, options.softCap(), out,
                            (slice * rows.length + i) * s.valueDim(), lse, magnitude, slice * rows.length + i);
                }
            }
        }
        return new ReferenceResult(s, rows.clone(), out, lse, magnitude);
    }

    private static void attendRow(Tensor q, Tensor k, Tensor v, int b, int h, int kvh, int row, KeyList keys,
                                  double scale, float softCap, double[] out, int outAt, double[] lse,
                                  double[] magnitude, int lseAt) {
        int n = keys.size;
        if (n == 0) {
            lse[lseAt] = Double.NEGATIVE_INFINITY;
            return;
        }
        int dim = q.dim();
        double[] qv = new double[dim];
        for (int d = 0; d < dim; d++) {
            qv[d] = q.get(b, h, row, d);
        }
        double[] scores = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        double mag = 0;
        for (int j = 0; j < n; j++) {
            int key = keys.keys[j];
            double dot = 0;
            double abs = 0;
            for (int d = 0; d < dim; d++) {
                double p = qv[d] * k.get(b, kvh, key, d);
                dot += p;
                abs += Math.abs(p);
            }
            mag = Math.max(mag, Math.abs(scale) * abs);
            double sc = scale * dot;
            if (softCap > 0) {
                sc = softCap * Math.tanh(sc / softCap);
            }
            sc += keys.weights[j];
            if (Math.abs(sc) > Float.MAX_VALUE) {
                sc = Math.copySign(Double.POSITIVE_INFINITY, sc); // the kernels' scores are f32
            }
            scores[j] = sc;
            max = Math.max(max, sc);
        }
        magnitude[lseAt] = mag;
        if (max == Double.NEGATIVE_INFINITY) {
            lse[lseAt] = Double.NEGATIVE_INFINITY; // every admitted score is -inf: nothing weighs
            return;
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
        }
        int dv = v.dim();
        for (int j = 0; j < n; j++) {
            double p = scores[j] / sum;
            int key = keys.keys[j];
            for (int d = 0; d < dv; d++) {
                out[outAt + d] += p * v.get(b, kvh, key, d);
            }
        }
        lse[lseAt] = max + Math.log(sum);
    }

    private static void checkRows(int[] rows, int queryLength) {
        if (rows == null) {
            throw new IllegalArgumentException("rows: must not be null");
        }
        for (int r : rows) {
            if (r < 0 || r >= queryLength) {
                throw new IllegalArgumentException("rows: row " + r + " outside [0, " + queryLength + ")");
            }
        }
    }

    /** A reusable (key, weight) list. */
    private static final class KeyList {
        int[] keys = new int[64];
        float[] weights = new float[64];
        int size;

        void clear() {
            size = 0;
        }

        void add(int key, float w) {
            if (size == keys.length) {
                keys = java.util.Arrays.copyOf(keys, size * 2);
                weights = java.util.Arrays.copyOf(weights, size * 2);
            }
            keys[size] = key;
            weights[size++] = w;
        }
    }
}
