package dev.sparsa.examples;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The README's quick start as a program: dense and sliding-window attention through the drop-in
 * call, the LSE variant, and plan-once-run-many. Run it with
 * {@code java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.sparsa.examples.QuickStart}.
 */
public final class QuickStart {
    private QuickStart() {
    }

    /** What the example computed, for the test that keeps it honest. */
    public record Outcome(Tensor q, Tensor k, Tensor v, Tensor windowed, AttentionResult withLse, Tensor replayed,
                          SparsePlan plan) {
    }

    public static Outcome run(int batch, int heads, int n, int dim) {
        SplittableRandom rnd = new SplittableRandom(1);
        float[] qData = new float[batch * heads * n * dim];
        float[] kData = new float[qData.length];
        float[] vData = new float[qData.length];
        for (int i = 0; i < qData.length; i++) {
            qData[i] = (float) rnd.nextGaussian();
            kData[i] = (float) rnd.nextGaussian();
            vData[i] = (float) rnd.nextGaussian();
        }
        // f32 views over Java arrays, no copy; BSHD would be Layout.BSHD over the same kind of array
        Tensor q = Tensor.of(qData, Layout.BHSD, batch, heads, n, dim);
        Tensor k = Tensor.of(kData, Layout.BHSD, batch, heads, n, dim);
        Tensor v = Tensor.of(vData, Layout.BHSD, batch, heads, n, dim).to(DType.F32, Layout.BSHD);

        // drop-in: the same call as dense attention, plus a pattern
        Pattern pattern = Patterns.slidingWindow(256).withSinks(16);
        Tensor windowed = Attention.forward(q, k, v, pattern, Options.causalMask());

        // with the log-sum-exp, and what ran: the window's plan, or dense attention or the plan's
        // block-expanded form where the backend's cost model says they are faster (Options.withDispatch
        // chooses: AUTO by default, SPARSE for the plan always)
        AttentionResult withLse = Attention.forwardWithLse(q, k, v, pattern, Options.causalMask());

        // plan and prepare once, run every layer (the drop-in call above caches static plans too)
        SparsePlan plan = Attention.plan(q, k, v, pattern, Options.causalMask());
        Tensor replayed;
        try (PreparedPlan prepared = Attention.prepare(plan)) {
            replayed = Attention.forward(prepared, q, k, v, RunOptions.defaults());
        }
        return new Outcome(q, k, v, windowed, withLse, replayed, plan);
    }

    public static void main(String[] args) {
        Outcome o = run(1, 4, 1024, 64);
        System.out.println("plan: " + o.plan());
        System.out.println("the drop-in call ran: " + o.withLse().decision());
        System.out.printf("out[0,0,1023,0..3] = %.5f %.5f %.5f %.5f, lse[0,0,1023] = %.5f%n",
                o.windowed().get(0, 0, 1023, 0), o.windowed().get(0, 0, 1023, 1), o.windowed().get(0, 0, 1023, 2),
                o.windowed().get(0, 0, 1023, 3), o.withLse().lse().get(0, 0, 1023, 0));
    }
}
