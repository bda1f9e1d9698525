package dev.sparsa.bench;

import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.tools.StructuredProblem;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What storing attention inputs in a narrow type costs, against the same attention on the f32 inputs:
 * the fp64 oracle on both (so no kernel's rounding enters), causal, B = 1, H = 8 query / 2 KV heads,
 * D = 128, 64 sampled rows per head. Inputs: the demo's structured problem (planted needle and
 * vertical columns: a few large values that set each head's absmax scale) and i.i.d. Gaussians. Rows
 * of the table: bf16 Q, K, V; e4m3 K and V with per-head absmax scales and a bf16 Q (an FP8 KV cache);
 * e4m3 Q, K and V. One line per (problem, length, storage) on stdout:
 *
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.sparsa.bench.QuantisationError 1024 4096
 * </pre>
 */
public final class QuantisationError {
    private QuantisationError() {
    }

    /** One row: the problem, the length, the storage and the errors against f32 inputs. */
    record Row(String problem, int n, String storage, double relErr, double lseErr) {
    }

    /**
     * @param lengths sequence lengths (at least 2)
     * @return the rows of the table, in print order
     * @throws IllegalArgumentException if a length is below 2
     */
    static List<Row> measure(int... lengths) {
        List<Row> rows = new ArrayList<>();
        for (String problem : new String[] {"structured", "gaussian"}) {
            for (int n : lengths) {
                if (n < 2) {
                    throw new IllegalArgumentException("length: must be >= 2, got " + n);
                }
                AttentionShape s = new AttentionShape(1, 8, 2, n, n, 128, 128);
                Tensor[] f32 = problem.equals("structured") ? structured(s) : gaussian(s);
                int[] sample = new int[Math.min(64, n)];
                for (int i = 0; i < sample.length; i++) {
                    sample[i] = (int) ((long) i * (n - 1) / (sample.length - 1));
                }
                Options o = Options.causalMask();
                ReferenceResult ref = ReferenceAttention.dense(f32[0], f32[1], f32[2], o, null, sample);
                for (String storage : new String[] {"bf16 Q, K, V", "e4m3 K, V; bf16 Q", "e4m3 Q, K, V"}) {
                    boolean kvE4m3 = storage.startsWith("e4m3");
                    Tensor q = storage.startsWith("e4m3 Q") ? e4m3(f32[0]) : f32[0].to(DType.BF16, Layout.BHSD);
                    Tensor k = kvE4m3 ? e4m3(f32[1]) : f32[1].to(DType.BF16, Layout.BHSD);
                    Tensor v = kvE4m3 ? e4m3(f32[2]) : f32[2].to(DType.BF16, Layout.BHSD);
                    ReferenceResult r = ReferenceAttention.dense(q, k, v, o, null, sample);
                    rows.add(new Row(problem, n, storage, ReferenceResult.maxRelativeError(r, ref), maxLseError(r, ref)));
                }
            }
        }
        return rows;
    }

    private static Tensor e4m3(Tensor f32) {
        return Tensor.quantizeE4m3PerHead(f32, Layout.BHSD);
    }

    /** The largest absolute difference of the two results' LSEs over their (common) sampled rows. */
    private static double maxLseError(ReferenceResult a, ReferenceResult ref) {
        double worst = 0;
        for (int h = 0; h < ref.shape().qHeads(); h++) {
            for (int i = 0; i < ref.rows().length; i++) {
                worst = Math.max(worst, Math.abs(a.lse(0, h, i) - ref.lse(0, h, i)));
            }
        }
        return worst;
    }

    private static Tensor[] structured(AttentionShape s) {
        StructuredProblem.Generated g = StructuredProblem.generate(s, 42);
        return new Tensor[] {g.q(), g.k(), g.v()};
    }

    private static Tensor[] gaussian(AttentionShape s) {
        SplittableRandom r = new SplittableRandom(42);
        return new Tensor[] {gaussian(r, s.qHeads(), s.queryLength()), gaussian(r, s.kvHeads(), s.keyLength()),
                gaussian(r, s.kvHeads(), s.keyLength())};
    }

    private static Tensor gaussian(SplittableRandom r, int heads, int n) {
        float[] x = new float[heads * n * 128];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return Tensor.of(x, 1, heads, n, 128);
    }

    static void print(List<Row> rows, PrintStream out) {
        out.println("problem     N       storage              rel. output error   LSE error   (against f32 inputs, fp64)");
        for (Row row : rows) {
            out.printf("%-11s %-7d %-20s %-19.3e %.3e%n", row.problem(), row.n(), row.storage(), row.relErr(), row.lseErr());
        }
    }

    /**
     * Prints the table for the lengths given as arguments (default 1024 and 4096).
     *
     * @throws NumberFormatException if an argument is not an integer
     */
    public static void main(String[] args) {
        int[] lengths = args.length == 0 ? new int[] {1024, 4096} : new int[args.length];
        for (int i = 0; i < args.length; i++) {
            lengths[i] = Integer.parseInt(args[i]);
        }
        print(measure(lengths), System.out);
    }
}
