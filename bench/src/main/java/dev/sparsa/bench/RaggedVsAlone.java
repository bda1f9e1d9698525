package dev.sparsa.bench;

import dev.sparsa.attention.Attention;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.tools.StructuredProblem;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A ragged batch against the same sequences run alone, through the drop-in call on the preferred
 * backend: per pattern, each round times one call on the packed batch (lengths {@code -Dlengths},
 * default 1,63,64,65,1000,4097) and one drop-in call per sequence on its own contiguous tensors,
 * alternating which goes first; the median over rounds of batch / sum-of-alone is the ragged
 * target's ratio (≤ 1.15). f32, H = {@code -Dh} (8), D = 128, causal, {@code -Ddispatch} (sparse),
 * every tensor in the memory order {@code -Dlayout} ({@code bshd}: packed tokens × heads × dim; or
 * {@code bhsd}: each head's tokens packed).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.sparsa.bench.RaggedVsAlone [rounds]
 * </pre>
 */
public final class RaggedVsAlone {
    private RaggedVsAlone() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int h = Integer.getInteger("h", 8);
        int[] lengths = Arrays.stream(System.getProperty("lengths", "1,63,64,65,1000,4097").split(","))
                .mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        Dispatch mode = Dispatch.parse(System.getProperty("dispatch", "sparse"));
        RaggedBatch batch = RaggedBatch.packedLengths(lengths);
        int total = batch.totalQueries();
        // each sequence its own structured problem, packed token after token
        List<StructuredProblem.Generated> alone = new ArrayList<>();
        Layout layout = Layout.valueOf(System.getProperty("layout", "bshd").toUpperCase());
        Tensor q = Tensor.allocate(DType.F32, layout, 1, h, total, 128);
        Tensor k = Tensor.allocate(DType.F32, layout, 1, h, total, 128);
        Tensor v = Tensor.allocate(DType.F32, layout, 1, h, total, 128);
        for (int i = 0; i < lengths.length; i++) {
            StructuredProblem.Generated s = StructuredProblem.generate(AttentionShape.of(1, h, lengths[i], lengths[i], 128), 40 + i);
            // alone in the same memory order as the batch
            StructuredProblem.Generated g = new StructuredProblem.Generated(s.q().to(DType.F32, layout),
                    s.k().to(DType.F32, layout), s.v().to(DType.F32, layout), s.needleKey(), s.verticalKeys());
            alone.add(g);
            Tensor.copy(g.q(), batch.queries(q, i));
            Tensor.copy(g.k(), batch.keys(k, i));
            Tensor.copy(g.v(), batch.keys(v, i));
        }
        Options o = Options.causalMask().withDispatch(mode);
        List<Pattern> patterns = List.of(Dense.INSTANCE, Patterns.aShape(512, 64), Patterns.randomBlockSparse(0.2, 42),
                Patterns.topKPerQueryBlock(256, 16, 64));
        System.out.println("# ragged batch " + batch + " vs each sequence alone: f32 " + layout + " H " + h
                + " D 128 causal, dispatch " + mode + ", " + rounds + " rounds, median");
        for (Pattern p : patterns) {
            // warm-up: plans the static patterns for every length, compiles
            Attention.forward(q, k, v, batch, p, o);
            for (StructuredProblem.Generated g : alone) {
                Attention.forward(g.q(), g.k(), g.v(), p, o);
            }
            double[] ratio = new double[rounds];
            double[] batchMs = new double[rounds];
            double[] aloneMs = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                for (int j = 0; j < 2; j++) {
                    System.gc(); // one side's garbage is not charged to the other
                    // outputs are closed as a serving loop closes them (on a GPU: pinned output blocks are reused)
                    if ((j + r) % 2 == 0) {
                        long t = System.nanoTime();
                        Attention.forward(q, k, v, batch, p, o).close();
                        batchMs[r] = (System.nanoTime() - t) / 1e6;
                    } else {
                        long t = System.nanoTime();
                        for (StructuredProblem.Generated g : alone) {
                            Attention.forward(g.q(), g.k(), g.v(), p, o).close();
                        }
                        aloneMs[r] = (System.nanoTime() - t) / 1e6;
                    }
                }
                ratio[r] = batchMs[r] / aloneMs[r];
            }
            System.out.printf("%-50s batch %9.1f ms  alone (sum) %9.1f ms  batch/alone median %.3f (rounds %s)%n", p.name(),
                    median(batchMs), median(aloneMs), median(ratio),
                    String.join(" ", Arrays.stream(ratio).mapToObj(x -> String.format("%.3f", x)).toList()));
        }
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
