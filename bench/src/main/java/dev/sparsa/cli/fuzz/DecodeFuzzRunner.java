package dev.sparsa.cli.fuzz;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.bench.PlacedCaches;
import dev.sparsa.cli.fuzz.FuzzRunner.Outcome;
import dev.sparsa.cli.fuzz.FuzzRunner.Verdict;
import dev.sparsa.cuda.CudaBackend;
import dev.sparsa.cuda.CudaDecodeStep;
import dev.sparsa.cuda.CudaStream;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PageAllocator;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntFunction;

/**
 * Runs one {@link DecodeFuzzCase} and checks everything that must hold:
 * <ul>
 *   <li>a selection either succeeds or is refused with an {@link IllegalArgumentException} that says
 *       why (nothing else may escape);
 *   <li>decode over the backend's selection against the fp64 decode oracle over the same selection:
 *       the tolerance of the input type, the LSE, rows that admit nothing exactly 0 and −∞; with a
 *       planted NaN or infinity, the rows the oracle makes NaN are NaN and the others close to it.
 *       Every unused slot and page of the caches holds NaN, so a read past a length shows;
 *   <li>{@code selectAndDecode} gives what {@code select} then {@code decode} give (bit for bit on
 *       backends that take a thread count, within the tolerance elsewhere), and the drop-in {@code
 *       Attention.decodeWithLse} over the same selection gives the backend's bits;
 *   <li>on backends that take a thread count: the paged cache gives the contiguous one's bits, and
 *       one worker gives the bits of several;
 *   <li>on the CUDA backend, for dense decode, Quest without sinks or window and top-k with one row
 *       or no window: a prepared step ({@code CudaBackend.prepareDecodeStep}, run once at the cache's
 *       lengths) against the same oracle and within the tolerance of {@code selectAndDecode};
 *   <li>chunked prefill against each cache (the facade's {@code prefillWithLse}, a chunk of a
 *       sequence's last rows under a static pattern) equals the same call on copies of that
 *       sequence's keys and values (bit for bit where the bitwise checks apply).
 * </ul>
 */
public final class DecodeFuzzRunner {
    private final IntFunction<AttentionBackend> backendWithThreads;
    private final boolean threadsMatter;

    /**
     * @param backendWithThreads the backend under test with the given number of workers
     * @param threadsMatter      whether the backend takes a thread count (and so the bitwise checks apply)
     */
    public DecodeFuzzRunner(IntFunction<AttentionBackend> backendWithThreads, boolean threadsMatter) {
        this.backendWithThreads = backendWithThreads;
        this.threadsMatter = threadsMatter;
    }

    public Outcome run(DecodeFuzzCase c) {
        try {
            return check(c);
        } catch (Throwable t) {
            return Outcome.threw(t);
        }
    }

    /** The problem of a case on the host: both caches (same sequences, NaN past every length), Q, the pattern. */
    private record Problem(ContiguousKvCache flat, PagedKvCache paged, Tensor q, DecodePattern pattern,
                           DecodeSelection explicit) {
    }

    private Outcome check(DecodeFuzzCase c) {
        Problem p = problem(c);
        AttentionBackend backend = backendWithThreads.apply(c.threads());
        Device device = backend.runsOn(Device.CPU) ? Device.CPU : backend.defaultDevice();
        String why = backend.decodeRefusal(DecodeShape.of(p.flat(), c.rows()).on(device));
        if (why != null) {
            return new Outcome(Verdict.SKIPPED, why);
        }
        DecodeOptions o = c.options();
        boolean questOnly = p.pattern() instanceof DecodePattern.Quest;
        Tensor[] flatRun = null;
        try (PlacedCaches placed = PlacedCaches.on(backend, device, p.flat(), p.paged(), p.q())) {
            for (boolean isPaged : questOnly ? new boolean[] {true} : new boolean[] {false, true}) {
                KvCache host = isPaged ? p.paged() : p.flat();
                KvCache cache = placed.cache(isPaged);
                DecodeSelection selection;
                try {
                    selection = p.explicit() != null ? p.explicit()
                            : p.pattern() instanceof DecodePattern.Dense ? null : backend.select(placed.q(), cache,
                                    p.pattern(), o);
                } catch (IllegalArgumentException refused) {
                    return Outcome.refused(refused);
                }
                String layout = isPaged ? "paged" : "contiguous";
                Tensor[] run = decode(backend, device, placed.q(), cache, selection, null, c, o);
                ReferenceResult ref = ReferenceDecode.decode(p.q(), host, selection, o.run());
                String numbers = c.nonFinite() == 0 ? FuzzChecks.numbers(run[0], run[1], ref, c.dtype())
                        : FuzzChecks.nonFinite(run[0], ref, c.dtype(), c.nonFinite() == 4);
                if (numbers == null && c.nonFinite() == 0) {
                    numbers = FuzzChecks.emptyRows(run[0], run[1], ref);
                }
                if (numbers != null) {
                    return new Outcome(Verdict.FAILED, layout + ": " + numbers);
                }
                if (c.nonFinite() == 0) {
                    // the drop-in call over the same selection: the backend it picks for this cache, the same bits
                    AttentionResult facade = Attention.decodeWithLse(placed.q(), cache, selection, o);
                    boolean same = FuzzChecks.sameBits(facade.output().toHost(), run[0])
                            && (run[1] == null || FuzzChecks.sameBits(facade.lse().toHost(), run[1]));
                    facade.output().close();
                    facade.lse().close();
                    if (!same) {
                        return new Outcome(Verdict.FAILED, layout + ": Attention.decodeWithLse's bits differ from the"
                                + " backend's decode");
                    }
                }
                if (p.explicit() == null && !(p.pattern() instanceof DecodePattern.Dense)) {
                    Tensor[] fused = decode(backend, device, placed.q(), cache, null, p.pattern(), c, o);
                    String same = threadsMatter ? (FuzzChecks.sameBits(fused[0], run[0]) ? null
                            : "selectAndDecode's bits differ from select then decode")
                            : c.nonFinite() == 0 ? FuzzChecks.numbers(fused[0], fused[1], ref, c.dtype()) : null;
                    if (same != null) {
                        return new Outcome(Verdict.FAILED, layout + ": " + same);
                    }
                }
                if (backend instanceof CudaBackend cuda && c.nonFinite() == 0 && p.explicit() == null
                        && cuda.decodeStepRefusal(p.pattern(), cache, c.kvHeads() * c.group(), c.rows()) == null) {
                    Tensor[] stepped = stepDecode(cuda, placed.q(), cache, p.pattern(), c, o);
                    String stepNumbers = FuzzChecks.numbers(stepped[0], stepped[1], ref, c.dtype());
                    if (stepNumbers == null) {
                        stepNumbers = FuzzChecks.emptyRows(stepped[0], stepped[1], ref);
                    }
                    if (stepNumbers != null) {
                        return new Outcome(Verdict.FAILED, layout + ": the prepared step: " + stepNumbers);
                    }
                }
                if (threadsMatter && c.nonFinite() == 0) {
                    if (c.threads() > 1) {
                        Tensor[] one = decode(backendWithThreads.apply(1), device, placed.q(), cache, selection, null, c,
                                o);
                        if (!FuzzChecks.sameBits(one[0], run[0]) || (run[1] != null && !FuzzChecks.sameBits(one[1], run[1]))) {
                            return new Outcome(Verdict.FAILED, layout + ": one worker and " + c.threads()
                                    + " give different bits");
                        }
                    }
                    if (isPaged && flatRun != null && !FuzzChecks.sameBits(flatRun[0], run[0])) {
                        return new Outcome(Verdict.FAILED, "the paged cache's bits differ from the contiguous cache's");
                    }
                    flatRun = run;
                }
            }
            if (c.nonFinite() == 0) {
                String chunked = chunkedPrefill(c, p, placed, backend, device);
                if (chunked != null) {
                    return new Outcome(Verdict.FAILED, chunked);
                }
            }
        }
        return Outcome.passed();
    }

    /**
     * Chunked prefill against each cache ({@code Attention.prefillWithLse}: a chunk of a sequence's
     * last rows, bottom-right aligned) against the same call on copies of the sequence's keys and
     * values ({@code Attention.forwardWithLse}): bit for bit on backends that take a thread count,
     * else within the tolerance of the input type; null when both hold.
     */
    private String chunkedPrefill(DecodeFuzzCase c, Problem p, PlacedCaches placed, AttentionBackend backend,
                                  Device device) {
        SplittableRandom r = new SplittableRandom(c.paramSeed() ^ 0x5DEECE66DL);
        int b = r.nextInt(c.batch());
        int length = p.flat().length(b);
        if (length == 0) {
            return null;
        }
        int chunk = 1 + r.nextInt(Math.min(length, 80));
        Pattern pattern = switch (r.nextInt(5)) {
            case 0 -> Patterns.slidingWindow(1 + r.nextInt(40));
            case 1 -> Patterns.aShape(1 + r.nextInt(40), r.nextInt(5));
            case 2 -> Patterns.sparseTransformerStrided(1 + r.nextInt(16));
            case 3 -> Patterns.randomBlockSparse(0.2 + 0.7 * r.nextDouble(), r.nextLong());
            default -> Patterns.dense();
        };
        Options o = Options.causalMask().withDevice(device).withDispatch(Dispatch.SPARSE)
                .withOutputDType(c.outF32() ? DType.F32 : c.dtype().defaultOutput());
        Tensor qHost = FuzzTensors.random(r, c.dtype(), Layout.BHSD, 1, c.kvHeads() * c.group(), chunk, c.headDim(), 2);
        for (boolean isPaged : new boolean[] {false, true}) {
            KvCache host = isPaged ? p.paged() : p.flat();
            List<Tensor> owned = new ArrayList<>();
            try {
                Tensor q = device.isHost() ? qHost : PlacedCaches.copy(backend, device, qHost, owned);
                AttentionResult got = Attention.prefillWithLse(q, placed.cache(isPaged), b, pattern, o);
                AttentionResult want = Attention.forwardWithLse(qHost, contiguous(host.keys(b)), contiguous(host.values(b)),
                        pattern, o);
                Tensor go = got.output().toHost();
                Tensor wo = want.output().toHost();
                String what = "chunked prefill of " + chunk + " rows of sequence " + b + " (" + length + " keys) on the "
                        + (isPaged ? "paged" : "contiguous") + " cache, " + pattern;
                if (threadsMatter) {
                    if (!FuzzChecks.sameBits(go, wo) || !FuzzChecks.sameBits(got.lse().toHost(), want.lse().toHost())) {
                        return what + ": differs from the same call on copies of its keys and values";
                    }
                } else {
                    float[] x = go.toFloatArray();
                    float[] y = wo.toFloatArray();
                    double tol = 1e-4 + 10 * Tolerance.output(c.dtype());
                    for (int i = 0; i < x.length; i++) {
                        if (!(Math.abs(x[i] - y[i]) <= tol)) {
                            return what + ": element " + i + " off by " + Math.abs(x[i] - y[i]);
                        }
                    }
                }
            } catch (IllegalArgumentException refused) {
                return "chunked prefill refused: " + refused.getMessage();
            } catch (dev.sparsa.backend.BackendUnavailableException none) {
                // no backend prefills these inputs where the cache lives (the GPU's e4m3 prefill kernel runs head
                // dim 128 on 128×128 tiles; a device cache has no CPU fallback): the facade's documented refusal
                return null;
            } finally {
                owned.forEach(Tensor::close);
            }
        }
        return null;
    }

    /** A contiguous BHSD host copy of a host or device tensor (an e4m3 one keeps its scales). */
    private static Tensor contiguous(Tensor t) {
        Tensor h = t.toHost();
        return h.to(h.dtype(), Layout.BHSD);
    }

    /**
     * Decodes into NaN-poisoned outputs (so an unwritten row cannot pass): over {@code selection}, or
     * with {@code pattern} through {@code selectAndDecode}; returns host copies of the output and LSE.
     */
    private static Tensor[] decode(AttentionBackend backend, Device device, Tensor q, KvCache cache,
                                   DecodeSelection selection, DecodePattern pattern, DecodeFuzzCase c, DecodeOptions o) {
        int heads = c.kvHeads() * c.group();
        DType outType = c.outF32() ? DType.F32 : c.dtype().defaultOutput();
        Tensor out = FuzzTensors.nan(Tensor.allocate(outType, Layout.BHSD, c.batch(), heads, c.rows(), c.headDim()));
        Tensor lse = c.withLse()
                ? FuzzTensors.nan(Tensor.allocate(DType.F32, Layout.BHSD, c.batch(), heads, c.rows(), 1)) : null;
        if (device.isHost()) {
            run(backend, q, cache, selection, pattern, out, lse, o);
            return new Tensor[] {out, lse};
        }
        List<Tensor> owned = new ArrayList<>();
        try {
            Tensor dOut = PlacedCaches.copy(backend, device, out, owned);
            Tensor dLse = lse == null ? null : PlacedCaches.copy(backend, device, lse, owned);
            run(backend, q, cache, selection, pattern, dOut, dLse, o);
            return new Tensor[] {dOut.toHost(), dLse == null ? null : dLse.toHost()};
        } finally {
            owned.forEach(Tensor::close);
        }
    }

    /**
     * Decodes through a prepared step of {@code pattern} at the cache's lengths, on a stream of its own,
     * into NaN-poisoned outputs; returns host copies of the output and LSE.
     */
    private static Tensor[] stepDecode(CudaBackend cuda, Tensor q, KvCache cache, DecodePattern pattern,
                                       DecodeFuzzCase c, DecodeOptions o) {
        int heads = c.kvHeads() * c.group();
        DType outType = c.outF32() ? DType.F32 : c.dtype().defaultOutput();
        Tensor out = FuzzTensors.nan(Tensor.allocate(outType, Layout.BHSD, c.batch(), heads, c.rows(), c.headDim()));
        Tensor lse = FuzzTensors.nan(Tensor.allocate(DType.F32, Layout.BHSD, c.batch(), heads, c.rows(), 1));
        List<Tensor> owned = new ArrayList<>();
        try (CudaStream stream = new CudaStream(cuda.device());
             CudaDecodeStep step = cuda.prepareDecodeStep(cache, pattern, heads, c.rows(), Math.max(1, cache.maxLength()),
                     o, stream)) {
            Tensor dOut = PlacedCaches.copy(cuda, cache.device(), out, owned);
            Tensor dLse = PlacedCaches.copy(cuda, cache.device(), lse, owned);
            step.run(q, dOut, dLse);
            stream.synchronize();
            return new Tensor[] {dOut.toHost(), dLse.toHost()};
        } finally {
            owned.forEach(Tensor::close);
        }
    }

    private static void run(AttentionBackend backend, Tensor q, KvCache cache, DecodeSelection selection,
                            DecodePattern pattern, Tensor out, Tensor lse, DecodeOptions o) {
        if (pattern != null) {
            backend.selectAndDecode(q, cache, pattern, out, lse, o);
        } else {
            backend.decode(q, cache, selection, out, lse, o);
        }
    }

    /** Lengths, caches, Q and the pattern of a case, every draw from its seeds. */
    private static Problem problem(DecodeFuzzCase c) {
        SplittableRandom params = new SplittableRandom(c.paramSeed());
        int cap = c.maxLength();
        int[] lengths = new int[c.batch()];
        for (int b = 0; b < lengths.length; b++) {
            lengths[b] = switch (params.nextInt(6)) {
                case 0 -> params.nextInt(Math.min(cap, 2) + 1);
                case 1 -> cap;
                case 2 -> Math.max(0, Math.min(cap, c.pageSize() * (1 + params.nextInt(3)) + params.nextInt(-1, 2)));
                default -> params.nextInt(cap + 1);
            };
        }
        SplittableRandom data = new SplittableRandom(c.dataSeed());
        int d = c.headDim();
        int kvh = c.kvHeads();
        // e4m3 caches: a random scale per KV head (keys up to 2, values up to 1 stay in range)
        float[] kScales = FuzzTensors.scales(data, c.dtype(), kvh, 2);
        float[] vScales = FuzzTensors.scales(data, c.dtype(), kvh, 1);
        ContiguousKvCache flat = c.dtype().isScaled() ? ContiguousKvCache.allocateE4m3(c.batch(), kvh, cap, d, d, kScales,
                vScales) : ContiguousKvCache.allocate(c.dtype(), c.batch(), kvh, cap, d, d);
        FuzzTensors.nan(flat.keyStorage());
        FuzzTensors.nan(flat.valueStorage());
        int pagesPerSequence = (cap + c.pageSize() - 1) / c.pageSize();
        int pool = c.batch() * pagesPerSequence + 2;
        Layout order = c.tokenMajor() ? Layout.BSHD : Layout.BHSD;
        PagedKvCache paged = c.dtype().isScaled()
                ? PagedKvCache.allocateE4m3(order, c.batch(), kvh, d, d, c.pageSize(), pool, true, kScales, vScales)
                : PagedKvCache.allocate(c.dtype(), order, c.batch(), kvh, d, d, c.pageSize(), pool, true);
        FuzzTensors.nan(paged.keyPages());
        FuzzTensors.nan(paged.valuePages());
        Tensor[] k = new Tensor[c.batch()];
        Tensor[] v = new Tensor[c.batch()];
        for (int b = 0; b < c.batch(); b++) {
            k[b] = FuzzTensors.random(data, c.dtype(), Layout.BHSD, 1, kvh, lengths[b], d, 2);
            v[b] = FuzzTensors.random(data, c.dtype(), Layout.BHSD, 1, kvh, lengths[b], d, 1);
        }
        Tensor q = FuzzTensors.random(data, c.dtype(), Layout.BHSD, c.batch(), kvh * c.group(), c.rows(), d, 2);
        plant(c, data, q, k, v, lengths);
        // appends in rounds of random sizes, so that the sequences' pages interleave in the pool
        int[] done = new int[c.batch()];
        boolean more = true;
        while (more) {
            more = false;
            for (int b = 0; b < c.batch(); b++) {
                int n = Math.min(1 + data.nextInt(3 * c.pageSize()), lengths[b] - done[b]);
                if (n > 0) {
                    flat.append(b, k[b].narrowSeq(done[b], n), v[b].narrowSeq(done[b], n));
                    paged.append(b, k[b].narrowSeq(done[b], n), v[b].narrowSeq(done[b], n));
                    done[b] += n;
                    more = true;
                }
            }
        }
        DecodePattern pattern = pattern(c.pattern(), kvh, cap, params);
        DecodeSelection explicit = c.pattern() == DecodeFuzzCase.PATTERNS.indexOf("explicit-selection")
                ? selection(params, c.batch(), kvh, lengths) : null;
        return new Problem(flat, paged, q, pattern, explicit);
    }

    private static DecodePattern pattern(int kind, int kvHeads, int cap, SplittableRandom r) {
        return switch (DecodeFuzzCase.PATTERNS.get(kind)) {
            case "sink-window" -> DecodePattern.sinkWindow(r.nextInt(7), 1 + r.nextInt(40));
            case "top-k" -> DecodePattern.topK(1 + r.nextInt(2 * cap)).withSinks(r.nextInt(4)).withWindow(r.nextInt(21));
            case "quest" -> DecodePattern.quest(1 + r.nextInt(2 * cap)).withSinks(r.nextInt(2) * r.nextInt(4))
                    .withWindow(r.nextInt(2) * r.nextInt(21));
            case "per-kv-head" -> {
                List<DecodePattern> heads = new ArrayList<>();
                for (int g = 0; g < kvHeads; g++) {
                    heads.add(switch (r.nextInt(3)) {
                        case 0 -> DecodePattern.dense();
                        case 1 -> DecodePattern.sinkWindow(r.nextInt(4), 1 + r.nextInt(30));
                        default -> DecodePattern.topK(1 + r.nextInt(cap + 1));
                    });
                }
                yield DecodePattern.perKvHead(heads);
            }
            default -> DecodePattern.dense(); // dense, and the explicit selection's stand-in
        };
    }

    /** Per (sequence, head): dense, or sinks and a window with ascending random spans (some heads none). */
    private static DecodeSelection selection(SplittableRandom r, int batch, int kvHeads, int[] lengths) {
        DecodeSelection.Builder s = DecodeSelection.builder(batch, kvHeads, lengths).describe("explicit");
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < kvHeads; g++) {
                int kind = r.nextInt(4);
                if (kind == 0) {
                    s.dense(b, g);
                    continue;
                }
                s.forced(b, g, r.nextInt(4), r.nextInt(30));
                int at = 0;
                while (kind > 1 && at < lengths[b]) {
                    at += r.nextInt(1 + lengths[b] / 4);
                    int end = Math.min(lengths[b], at + 1 + r.nextInt(20));
                    if (at < end) {
                        s.span(b, g, at, end);
                    }
                    at = end + 1 + r.nextInt(10);
                }
            }
        }
        return s.build();
    }

    /** Plants the case's non-finite value in Q, or in a token of K or V that a sequence holds. */
    private static void plant(DecodeFuzzCase c, SplittableRandom r, Tensor q, Tensor[] k, Tensor[] v, int[] lengths) {
        if (c.nonFinite() == 0) {
            return;
        }
        float value = switch (c.nonFinite()) {
            case 2 -> Float.POSITIVE_INFINITY;
            case 3 -> Float.NEGATIVE_INFINITY;
            default -> Float.NaN;
        };
        if (c.nonFinite() == 1) {
            q.set(r.nextInt(q.batch()), r.nextInt(q.heads()), r.nextInt(q.seqLen()), r.nextInt(q.dim()), value);
            return;
        }
        int b = r.nextInt(lengths.length);
        if (lengths[b] == 0) {
            return;
        }
        Tensor t = c.nonFinite() == 4 ? v[b] : k[b];
        t.set(0, r.nextInt(t.heads()), r.nextInt(lengths[b]), r.nextInt(t.dim()), value);
    }

}
