package dev.sparsa.cli.fuzz;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.cli.fuzz.FuzzRunner.Outcome;
import dev.sparsa.cli.fuzz.FuzzRunner.Verdict;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * Runs one {@link RaggedFuzzCase} through the drop-in ragged call and checks what its contract says:
 * each sequence is attended as if it were alone — its rows of the batch's output and LSE are bit for
 * bit those of the same call on a copy of its own tensors (which the prefill fuzzer holds against the
 * oracle) — rows of a sequence without keys, and in the padded layout rows past a sequence's queries,
 * are 0 with LSE −∞, and padding (NaN in every padded slot of Q, K and V) never reaches an output.
 * A refusal must be an {@link IllegalArgumentException} that names its argument.
 */
public final class RaggedFuzzRunner {
    private final Device device;

    /** @param device where the calls run (null: the preferred backend's default) */
    public RaggedFuzzRunner(Device device) {
        this.device = device;
    }

    public Outcome run(RaggedFuzzCase c) {
        try {
            return check(c);
        } catch (Throwable t) {
            return Outcome.threw(t);
        }
    }

    private Outcome check(RaggedFuzzCase c) {
        SplittableRandom params = new SplittableRandom(c.paramSeed());
        int n = c.sequences();
        int[] ql = new int[n];
        int[] kl = new int[n];
        for (int i = 0; i < n; i++) {
            ql[i] = length(params, c.tileRows(), c.maxLength());
            kl[i] = c.sameLengths() ? ql[i] : length(params, c.blockCols(), c.maxLength());
        }
        if (sum(ql) == 0 || sum(kl) == 0) {
            ql[0] = Math.max(1, ql[0]);
            kl[0] = Math.max(1, kl[0]);
        }
        Pattern pattern = pattern(c.pattern(), params);
        Options o = device == null ? c.options() : c.options().withDevice(device);
        int qHeads = c.kvHeads() * c.group();
        SplittableRandom data = new SplittableRandom(c.dataSeed());
        RaggedBatch batch;
        Tensor q;
        Tensor k;
        Tensor v;
        if (c.packed()) {
            int[] cuQ = offsets(ql);
            int[] cuK = offsets(kl);
            batch = RaggedBatch.packed(cuQ, cuK);
            q = FuzzTensors.random(data, c.dtype(), Layout.BSHD, 1, qHeads, cuQ[n], c.headDim(), 2);
            k = FuzzTensors.random(data, c.dtype(), Layout.BSHD, 1, c.kvHeads(), cuK[n], c.headDim(), 2);
            v = FuzzTensors.random(data, c.dtype(), Layout.BSHD, 1, c.kvHeads(), cuK[n], c.headDim(), 1);
        } else {
            batch = RaggedBatch.padded(ql, kl);
            q = padded(data, c.dtype(), qHeads, ql, c.headDim(), 2);
            k = padded(data, c.dtype(), c.kvHeads(), kl, c.headDim(), 2);
            v = padded(data, c.dtype(), c.kvHeads(), kl, c.headDim(), 1);
        }
        AttentionResult r;
        try {
            r = Attention.forwardWithLse(q, k, v, batch, pattern, o);
        } catch (IllegalArgumentException refused) {
            return Outcome.refused(refused);
        }
        Tensor out = r.output().toHost();
        Tensor lse = r.lse().toHost();
        for (int i = 0; i < n; i++) {
            Tensor oi = batch.queries(out, i);
            Tensor li = batch.queries(lse, i);
            if (ql[i] == 0) {
                continue;
            }
            if (kl[i] == 0) {
                String empty = empty(oi, li, 0, ql[i]);
                if (empty != null) {
                    return new Outcome(Verdict.FAILED, "sequence " + i + " has no keys but " + empty);
                }
                continue;
            }
            AttentionResult alone;
            try {
                alone = Attention.forwardWithLse(copy(batch.queries(q, i)), copy(batch.keys(k, i)), copy(batch.keys(v, i)),
                        pattern, o);
            } catch (IllegalArgumentException refused) {
                return new Outcome(Verdict.FAILED, "sequence " + i + " alone is refused (" + refused.getMessage()
                        + ") but runs in the batch");
            }
            if (!FuzzChecks.sameBits(oi, alone.output().toHost()) || !FuzzChecks.sameBits(li, alone.lse().toHost())) {
                return new Outcome(Verdict.FAILED, "sequence " + i + " (" + ql[i] + " queries, " + kl[i]
                        + " keys): its rows differ from the same call on its own tensors");
            }
        }
        if (!c.packed()) {
            for (int i = 0; i < n; i++) {
                int rows = out.seqLen();
                String pad = empty(out.narrowBatch(i, 1), lse.narrowBatch(i, 1), ql[i], rows);
                if (pad != null) {
                    return new Outcome(Verdict.FAILED, "sequence " + i + ": a padded row " + pad);
                }
            }
        }
        return Outcome.passed();
    }

    /** Null when rows {@code [from, to)} of a batch-1 output are 0 with LSE −∞, else what is not. */
    private static String empty(Tensor out, Tensor lse, int from, int to) {
        for (int h = 0; h < out.heads(); h++) {
            for (int r = from; r < to; r++) {
                for (int d = 0; d < out.dim(); d++) {
                    if (out.get(0, h, r, d) != 0f) {
                        return "row (" + h + ", " + r + ") element " + d + " is " + out.get(0, h, r, d);
                    }
                }
                if (lse.get(0, h, r, 0) != Float.NEGATIVE_INFINITY) {
                    return "row (" + h + ", " + r + ") has LSE " + lse.get(0, h, r, 0);
                }
            }
        }
        return null;
    }

    private static Pattern pattern(int kind, SplittableRandom r) {
        return switch (RaggedFuzzCase.PATTERNS.get(kind)) {
            case "sliding-window" -> Patterns.slidingWindow(1 + r.nextInt(40));
            case "a-shape" -> Patterns.aShape(1 + r.nextInt(40), r.nextInt(5));
            case "symmetric-window" -> Patterns.symmetricWindow(1 + r.nextInt(20));
            case "strided" -> Patterns.sparseTransformerStrided(1 + r.nextInt(16));
            case "dilated-window" -> Patterns.dilatedWindow(1 + r.nextInt(20), 1 + r.nextInt(4));
            case "random-blocks" -> Patterns.randomBlockSparse(0.1 + 0.8 * r.nextDouble(), r.nextLong());
            case "mean-pool-top-k" -> Patterns.meanPoolBlockTopK(1 + r.nextInt(4), 8 * (1 + r.nextInt(4)), r.nextBoolean());
            case "top-k" -> Patterns.topK(1 + r.nextInt(30), r.nextInt(3), r.nextInt(10));
            case "moba" -> Patterns.moba(8 * (1 + r.nextInt(4)), 1 + r.nextInt(4));
            default -> Patterns.dense();
        };
    }

    /** A length with the edges drawn often: 0, 1, one tile less, one tile, one tile more, or any up to {@code max}. */
    private static int length(SplittableRandom r, int unit, int max) {
        int x = switch (r.nextInt(8)) {
            case 0 -> r.nextInt(2);
            case 1 -> unit + r.nextInt(-1, 2);
            case 2 -> 2 * unit + r.nextInt(-1, 2);
            default -> 1 + r.nextInt(Math.max(1, max));
        };
        return Math.max(0, x);
    }

    private static int sum(int[] a) {
        int s = 0;
        for (int x : a) {
            s += x;
        }
        return s;
    }

    private static int[] offsets(int[] lengths) {
        int[] cu = new int[lengths.length + 1];
        for (int i = 0; i < lengths.length; i++) {
            cu[i + 1] = cu[i] + lengths[i];
        }
        return cu;
    }

    /** A contiguous BHSD copy of a view (an e4m3 one keeps its scales). */
    private static Tensor copy(Tensor view) {
        return view.to(view.dtype(), Layout.BHSD);
    }

    /** A padded BHSD tensor: sequence b's first {@code lengths[b]} rows random, every padded row NaN. */
    private static Tensor padded(SplittableRandom r, DType dtype, int heads, int[] lengths, int d, double amplitude) {
        int max = 1;
        for (int x : lengths) {
            max = Math.max(max, x);
        }
        Tensor t = FuzzTensors.random(r, dtype, Layout.BHSD, lengths.length, heads, max, d, amplitude);
        for (int b = 0; b < lengths.length; b++) {
            for (int h = 0; h < heads; h++) {
                for (int s = lengths[b]; s < max; s++) {
                    t.fillRow(b, h, s, Float.NaN);
                }
            }
        }
        return t;
    }

}
