package dev.sparsa.bench;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.sparsa.attention.Attention;
import dev.sparsa.audit.model.OrtAttention;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.PairMask;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Sparsa against ONNX Runtime Java's attention, in the same run and on the same inputs: f32, B=1,
 * H=8, D=128, N from 1k to 8k, 2 threads each (Sparsa's CPU pool; ONNX Runtime's intra-op threads).
 * ONNX Runtime runs a one-node graph with the standard {@code Attention} operator (opset 23):
 * {@code dense} without a mask, {@code causal} with {@code is_causal}, {@code window} with a boolean
 * mask of the causal band of {@code w ≈ 0.051·N} keys (10 % of the causal pairs). Sparsa runs the
 * same masks as plans (dense, dense causal, a causal sliding window of {@code w}) prepared once, as
 * a model reuses a plan across layers. Before timing, both outputs are checked against the fp64
 * oracle on three rows of every head (relative error ≤ 1e-5), so a wrong result cannot be timed.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class OnnxRuntimeComparison {
    @Param({"1024", "2048", "4096", "8192"})
    public int n;
    @Param({"dense", "causal", "window"})
    public String mask;

    static final int HEADS = 8;
    static final int DIM = 128;
    static final int THREADS = 2;

    private Tensor q;
    private Tensor k;
    private Tensor v;
    private Options options;
    private PreparedPlan prepared;
    private OrtAttention ort;

    /** The window that keeps 10 % of the causal pairs: 2w/N − (w/N)² = 0.1. */
    static int window(int n) {
        return (int) Math.round(n * (1 - Math.sqrt(0.9)));
    }

    @Setup(Level.Trial)
    public void setup() throws OrtException {
        float[] qa = random(1);
        float[] ka = random(2);
        float[] va = random(3);
        q = Tensor.of(qa, Layout.BHSD, 1, HEADS, n, DIM);
        k = Tensor.of(ka, Layout.BHSD, 1, HEADS, n, DIM);
        v = Tensor.of(va, Layout.BHSD, 1, HEADS, n, DIM);
        int w = window(n);
        boolean[][] band = null;
        Pattern pattern = Patterns.dense();
        PairMask pairs = PairMask.ALL;
        options = Options.defaults();
        switch (mask) {
            case "dense" -> { }
            case "causal" -> options = Options.causalMask();
            case "window" -> {
                options = Options.causalMask();
                pattern = Patterns.slidingWindow(w);
                pairs = (b, h, i, j) -> i - j < w;
                band = new boolean[n][n];
                for (int i = 0; i < n; i++) {
                    for (int j = Math.max(0, i - w + 1); j <= i; j++) {
                        band[i][j] = true;
                    }
                }
            }
            default -> throw new IllegalArgumentException("mask: dense, causal or window, got " + mask);
        }
        SparsePlan plan = Attention.plan(q, k, v, pattern, options);
        prepared = Attention.prepare(plan);
        ort = new OrtAttention(1, HEADS, n, DIM, mask.equals("causal"), band, THREADS);
        ort.setInputs(OrtAttention.direct(qa), OrtAttention.direct(ka), OrtAttention.direct(va), new long[] {1, HEADS, n, DIM});

        int[] rows = {0, n / 2 + 1, n - 1};
        ReferenceResult ref = ReferenceAttention.dense(q, k, v, options, pairs, rows);
        double sparsaErr = ref.maxRelativeError(Attention.forward(prepared, q, k, v, options.run()));
        double ortErr = ref.maxRelativeError(Tensor.of(ort.runToArray(), 1, HEADS, n, DIM));
        System.out.printf("onnx runtime comparison: N %d, %s (window %d, density %.4f), %d threads; error vs fp64 "
                + "oracle on rows %s: Sparsa %.2e, ONNX Runtime %.2e%n", n, mask, w, plan.density(), THREADS,
                java.util.Arrays.toString(rows), sparsaErr, ortErr);
        if (!(sparsaErr <= 1e-5 && ortErr <= 1e-5)) {
            throw new IllegalStateException("output differs from the fp64 oracle: Sparsa " + sparsaErr + ", ONNX Runtime " + ortErr);
        }
    }

    private float[] random(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[HEADS * n * DIM];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return a;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws OrtException {
        prepared.close();
        ort.close();
    }

    @Benchmark
    public Tensor sparsa() {
        return Attention.forward(prepared, q, k, v, options.run());
    }

    @Benchmark
    public float onnxRuntime() throws OrtException {
        try (OrtSession.Result r = ort.run()) {
            return ((ai.onnxruntime.OnnxTensor) r.get(0)).getFloatBuffer().get(0);
        }
    }
}
