package dev.sparsa.patterns.dsa;

import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.EstimatorCost;
import dev.sparsa.patterns.selection.TokenListLayout;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.KeyPanels;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * DeepSeek Sparse Attention's lightning indexer (DeepSeek-AI, "DeepSeek-V3.2-Exp: Boosting
 * Long-Context Efficiency with DeepSeek Sparse Attention"; reference: {@code Indexer.forward} in
 * github.com/deepseek-ai/DeepSeek-V3.2-Exp, {@code inference/model.py}, whose score is {@code
 * fp8_index} in {@code inference/kernel.py}). Per batch entry, with the indexer's own queries {@code
 * q_{t,j}} (heads {@code j}), keys {@code k_s} and weights {@code w_{t,j}} ({@link IndexerInputs}):
 * <pre>
 *   I(t, s) = Σ_j w_{t,j} · ReLU(q_{t,j} · k_s)
 * </pre>
 * each dot product one f32 fused multiply-add chain over the channels in order ({@link
 * Vectors#dot}), the sum one f32 fused multiply-add chain over the heads in order. Each query row
 * keeps the {@code topK} keys with the largest index score among those it may see (all of them
 * when fewer; ties to the lower key, NaN never), and <em>every</em> attention head of the batch
 * entry attends exactly those keys, so the kernels stack all heads of a KV group over one gathered
 * list (FlashMLA's sparse prefill packing). FP8 quantisation, the rotations and the normalisation
 * are the model's business: the inputs arrive as the vectors to score. The selection differs from
 * the reference only at ties, which {@code torch.topk} resolves in no documented order.
 *
 * <p>Cost: {@code Nq · Nk · indexerHeads · indexerDim} multiply-adds per batch entry (half when
 * causal) plus a top-k over each row's scores; memory O(Nq · topK).
 *
 * <p>The CUDA backend runs this selection on the device when the inputs live in its memory ({@code
 * CudaLightningIndexerEstimatedPlan} in {@code sparsa-kernels-cuda}): the same f32 operations in the
 * same order, so the same keys bit for bit, written straight into the device plan.
 *
 * <p>{@link #projected} stands in for a trained indexer where none is at hand (demos, tests): the
 * indexer's inputs are a seeded random projection of the attention's Q and K.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code topK < 1}, or (at plan time) the indexer's inputs do
 *     not fit the call's batch and lengths
 */
public final class LightningIndexer extends DataDependentPattern implements EstimatorCost {
    private static final int ROWS_PER_PASS = 64;
    /**
     * Keys scored per range, a multiple of every panel width: a range's dot products and scores of a
     * pass (64 rows × 1024 keys, 256 KB each) and its key panels stay in the L2 while every indexer
     * head adds to the scores, which go to memory once per range instead of once per head.
     */
    private static final int KEYS_PER_RANGE = 1024;

    private final int topK;
    private final IndexerInputs inputs;
    private final int projectedHeads;
    private final int projectedDim;
    private final long seed;

    private LightningIndexer(int topK, IndexerInputs inputs, int projectedHeads, int projectedDim, long seed) {
        this.topK = Checks.atLeast("topK", topK, 1);
        this.inputs = inputs;
        this.projectedHeads = projectedHeads;
        this.projectedDim = projectedDim;
        this.seed = seed;
    }

    /** The indexer over inputs the caller's model computed. */
    public static LightningIndexer of(int topK, IndexerInputs inputs) {
        return new LightningIndexer(topK, Checks.notNull("inputs", inputs), 0, 0, 0);
    }

    /**
     * A stand-in indexer: {@code heads} indexer heads of {@code dim} channels whose queries are
     * query heads {@code j·qHeads/heads} of Q and whose key is the mean of K over the KV heads, each
     * projected by one seeded Gaussian matrix scaled by {@code 1/sqrt(dim)}; weights {@code 1/heads}.
     *
     * @throws IllegalArgumentException if {@code heads} or {@code dim} is &lt; 1
     */
    public static LightningIndexer projected(int topK, int heads, int dim, long seed) {
        return new LightningIndexer(topK, null, Checks.atLeast("heads", heads, 1), Checks.atLeast("dim", dim, 1), seed);
    }

    public int topK() {
        return topK;
    }

    /**
     * The inputs of {@link #of}, or null for the stand-in of {@link #projected} (whose inputs are
     * computed from each call's Q and K).
     */
    public IndexerInputs inputs() {
        return inputs;
    }

    @Override
    public String name() {
        return "lightningIndexer(top " + topK + (inputs == null ? ", projected " + projectedHeads + "x" + projectedDim : "")
                + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        IndexerInputs in = inputs != null ? inputs : project(q, k);
        AttentionShape s = ctx.shape();
        if (in.queries().batch() != s.batch() || in.queries().seqLen() != ctx.queryLength()
                || in.keys().seqLen() != ctx.keyLength()) {
            throw new IllegalArgumentException("inputs: indexer queries " + java.util.Arrays.toString(in.queries().shape())
                    + " and keys " + java.util.Arrays.toString(in.keys().shape()) + " do not fit the call's batch "
                    + s.batch() + ", " + ctx.queryLength() + " queries and " + ctx.keyLength() + " keys");
        }
        SparsePlan.Builder plan = SparsePlan.builder(ctx).describe(name());
        for (int b = 0; b < s.batch(); b++) {
            int[][] keys = select(ctx, in, b);
            long total = 0;
            for (int[] row : keys) {
                total += row.length;
            }
            HeadLayout layout = TokenListLayout.compile(ctx, r -> keys[r], total);
            for (int h = 0; h < s.qHeads(); h++) {
                plan.slice(b, h, layout);
            }
        }
        return plan.build();
    }

    /** The selection of batch entry {@code b}: per query row, its kept keys, ascending. Also the oracle of the rule. */
    public int[][] select(PlanContext ctx, IndexerInputs in, int b) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int heads = in.heads();
        int d = in.dim();
        int[][] out = new int[nq][];
        if (nk == 0) {
            java.util.Arrays.fill(out, new int[0]);
            return out;
        }
        KeyPanels panels = KeyPanels.of(in.keys(), b, 0);
        float[][] qs = new float[heads][];
        for (int j = 0; j < heads; j++) {
            qs[j] = Vectors.rows(in.queries(), b, j);
        }
        float[] w = Vectors.rows(in.weights(), b, 0); // [Nq · heads]
        int passes = (nq + ROWS_PER_PASS - 1) / ROWS_PER_PASS;
        int stride = KeyPanels.paddedLength(nk);
        // passes dealt round-robin to a few items, each with its own score buffers, on the planning workers
        Workers pool = Workers.current().forTensors(in.queries(), in.keys(), in.weights());
        int workers = Math.min(passes, 4 * pool.parallelism());
        pool.forEach(workers, worker -> {
            float[] dots = new float[ROWS_PER_PASS * KEYS_PER_RANGE];
            float[] score = new float[ROWS_PER_PASS * stride];
            int[] counts = new int[ROWS_PER_PASS];
            for (int pass = worker; pass < passes; pass += workers) {
                scorePass(ctx, panels, qs, w, pass * ROWS_PER_PASS, Math.min(ROWS_PER_PASS, nq - pass * ROWS_PER_PASS),
                        stride, counts, dots, score, out);
            }
        });
        return out;
    }

    /**
     * Scores rows {@code [r0, r0 + rows)} against their visible keys, a range of keys at a time and
     * every head within the range (each score still adds the heads in order), and keeps each row's
     * best.
     */
    private void scorePass(PlanContext ctx, KeyPanels panels, float[][] qs, float[] w, int r0, int rows, int stride,
                           int[] counts, float[] dots, float[] score, int[][] out) {
        int heads = qs.length;
        int most = 0;
        for (int i = 0; i < rows; i++) {
            counts[i] = (int) Math.max(0, Plans.lastVisibleKey(ctx, r0 + i) + 1);
            most = Math.max(most, counts[i]);
            java.util.Arrays.fill(score, i * stride, i * stride + counts[i], 0f);
        }
        for (int k0 = 0; k0 < most; k0 += KEYS_PER_RANGE) {
            int n = Math.min(KEYS_PER_RANGE, most - k0);
            for (int j = 0; j < heads; j++) {
                // every row's dots over the whole range; a row adds those below its count
                panels.dotsFrom(qs[j], r0, rows, k0, n, dots, KEYS_PER_RANGE);
                for (int i = 0; i < rows; i++) {
                    int seen = Math.min(counts[i], k0 + n) - k0;
                    if (seen > 0) {
                        Vectors.addWeightedRelu(w[(r0 + i) * heads + j], dots, i * KEYS_PER_RANGE, score,
                                i * stride + k0, seen);
                    }
                }
            }
        }
        for (int i = 0; i < rows; i++) {
            out[r0 + i] = TopSelect.top(score, i * stride, counts[i], topK, null);
        }
    }

    /** The stand-in inputs of {@link #projected}. */
    IndexerInputs project(Tensor q, Tensor k) {
        int d = q.dim();
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
        // the projection transposed, [projectedDim · d], so that each output channel is one dot product
        float[] projT = new float[projectedDim * d];
        double norm = 1.0 / Math.sqrt(projectedDim);
        for (int y = 0; y < d; y++) {
            for (int c = 0; c < projectedDim; c++) {
                projT[c * d + y] = (float) (gaussian(rnd) * norm);
            }
        }
        KeyPanels panels = KeyPanels.of(projT, projectedDim, d);
        int batch = q.batch();
        Tensor qi = Tensor.allocate(DType.F32, Layout.BHSD, batch, projectedHeads, q.seqLen(), projectedDim);
        Tensor ki = Tensor.allocate(DType.F32, Layout.BHSD, batch, 1, k.seqLen(), projectedDim);
        float[] weights = new float[batch * q.seqLen() * projectedHeads];
        java.util.Arrays.fill(weights, 1f / projectedHeads);
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < projectedHeads; j++) {
                int h = (int) ((long) j * q.heads() / projectedHeads);
                projectRows(panels, Vectors.rows(q, b, h), q.seqLen(), qi, b, j);
            }
            float[] mean = new float[k.seqLen() * d];
            for (int h = 0; h < k.heads(); h++) {
                float[] rows = Vectors.rows(k, b, h);
                for (int i = 0; i < mean.length; i++) {
                    mean[i] += rows[i] / k.heads();
                }
            }
            projectRows(panels, mean, k.seqLen(), ki, b, 0);
        }
        return new IndexerInputs(qi, ki, Tensor.of(weights, batch, 1, q.seqLen(), projectedHeads));
    }

    /** Writes {@code rows} ({@code [n · d]}) projected by the panels into head {@code head} of {@code out}. */
    private void projectRows(KeyPanels panels, float[] rows, int n, Tensor out, int b, int head) {
        int stride = KeyPanels.paddedLength(projectedDim);
        float[] buf = new float[ROWS_PER_PASS * stride];
        for (int r0 = 0; r0 < n; r0 += ROWS_PER_PASS) {
            int m = Math.min(ROWS_PER_PASS, n - r0);
            panels.dots(rows, r0, m, projectedDim, buf, stride);
            for (int i = 0; i < m; i++) {
                out.writeRow(b, head, r0 + i, buf, i * stride);
            }
        }
    }

    private static double gaussian(java.util.SplittableRandom rnd) {
        // Box-Muller: the seeded generator's stream, reproducible on every JVM
        double u = 1.0 - rnd.nextDouble();
        double v = rnd.nextDouble();
        return StrictMath.sqrt(-2.0 * StrictMath.log(u)) * StrictMath.cos(2 * Math.PI * v);
    }

    /** Index scores: {@code Nq · Nk · heads · dim} per batch entry (half when causal); the stand-in's projection aside. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        int heads = inputs != null ? inputs.heads() : projectedHeads;
        int dim = inputs != null ? inputs.dim() : projectedDim;
        return (double) ctx.shape().batch() * ctx.queryLength() * ctx.keyLength() * heads * dim * (ctx.causal() ? 0.5 : 1);
    }

    /**
     * The indexer's low-dimensional scores (vectorized) and the per-query top-k: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch"): fitted 0.0694 at N 4096 on 2026-12-03, commit 17d89b4, where 0.085 had measured 0.82 of the estimate
     * (docs/perf-data/2026-12-03-17d89b4-epyc2vcpu-planning-cost-calibration.txt).
     */
    @Override
    public double costPerMac() {
        return 0.07;
    }
}
