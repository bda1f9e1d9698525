package dev.sparsa.bench;

import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.cpu.KernelFlavour;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One decode step through the CPU backend on its own pool of {@code threads} threads: 32 query / 8
 * KV heads, head dim 128, one query row, a {@code kvLength}-token cache ({@link DecodeProblem}), on
 * a contiguous or paged (16-token pages) cache. A step of a sparse pattern includes its selection
 * (Quest's page bounds, top-k's key scores). Primary result: steps per second; {@code gbytes}: GB/s
 * of what the step reads (K and V rows visited, the selection's reads). Compare with {@link
 * CopyBandwidth} from the same run.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class DecodeAttention {
    /** Cache dtype: f32, f16, bf16, or e4m3 (scales as {@code ./sparsa decode} uses). */
    @Param({"f32", "bf16"})
    public String dtype;
    /** pattern/layout: dense on both layouts; Quest, top-k and sinks + window (at {@code budget}) on the paged one. */
    @Param({"dense/contiguous", "dense/paged", "quest/paged", "topk/paged", "sinkwindow/paged"})
    public String kind;
    @Param({"32768"})
    public int kvLength;
    @Param({"0.125"})
    public double budget;
    @Param({"2"})
    public int threads;
    @Param({"16"})
    public int pageSize;
    /**
     * Where a contiguous cache lives: {@code heap} (Java arrays, as {@code ContiguousKvCache.allocate}
     * makes it) or {@code native} (off-heap tensors from an arena, through {@code ContiguousKvCache.wrap}).
     */
    @Param({"heap"})
    public String memory;

    /**
     * The order of a paged pool: {@code hnd} (each KV head's rows of a page together) or {@code nhd} (a
     * token's rows of every KV head side by side, vLLM's order).
     */
    @Param({"hnd"})
    public String pageLayout;

    private java.lang.foreign.Arena arena;

    private CpuBackend backend;
    private KvCache cache;
    private Tensor q;
    private Tensor out;
    private Tensor lse;
    private DecodePattern decodePattern;
    private DecodeOptions options;
    private double gbPerStep;

    @Setup
    public void setup() {
        DType type = DType.parse(dtype);
        String pattern = kind.substring(0, kind.indexOf('/'));
        String layout = kind.substring(kind.indexOf('/') + 1);
        int heads = 32;
        int kvHeads = 8;
        int dim = 128;
        DecodeProblem problem = new DecodeProblem(1, heads, kvHeads, kvLength, dim, 1, 42);
        boolean paged = layout.equals("paged");
        if (memory.equals("native") && !paged) {
            arena = java.lang.foreign.Arena.ofShared();
            Tensor k = Tensor.allocate(arena, type, Layout.BHSD, 1, kvHeads, kvLength, dim);
            Tensor v = Tensor.allocate(arena, type, Layout.BHSD, 1, kvHeads, kvLength, dim);
            cache = type.isScaled() ? ContiguousKvCache.wrap(k.withScales(DecodeProblem.E4M3_KEY_SCALE),
                    v.withScales(DecodeProblem.E4M3_VALUE_SCALE), new int[1]) : ContiguousKvCache.wrap(k, v, new int[1]);
        } else if (memory.equals("heap")) {
            float[] ks = {DecodeProblem.E4M3_KEY_SCALE};
            float[] vs = {DecodeProblem.E4M3_VALUE_SCALE};
            int pages = (kvLength + pageSize - 1) / pageSize;
            Layout order = switch (pageLayout) {
                case "hnd" -> Layout.BHSD;
                case "nhd" -> Layout.BSHD;
                default -> throw new IllegalArgumentException("pageLayout: hnd or nhd, got " + pageLayout);
            };
            if (type.isScaled()) {
                cache = paged ? PagedKvCache.allocateE4m3(order, 1, kvHeads, dim, dim, pageSize, pages, true, ks, vs)
                        : ContiguousKvCache.allocateE4m3(1, kvHeads, kvLength, dim, dim, ks, vs);
            } else {
                cache = paged ? PagedKvCache.allocate(type, order, 1, kvHeads, dim, dim, pageSize, pages, true)
                        : ContiguousKvCache.allocate(type, 1, kvHeads, kvLength, dim, dim);
            }
        } else {
            throw new IllegalArgumentException("memory: heap, or native for a contiguous cache, got " + memory);
        }
        problem.fill(cache);
        q = problem.query(type);
        out = Tensor.allocate(DType.F32, Layout.BHSD, 1, heads, 1, dim);
        lse = Tensor.allocate(DType.F32, Layout.BHSD, 1, heads, 1, 1);
        backend = new CpuBackend(threads);
        options = DecodeOptions.defaults().withOutputDType(DType.F32);
        int tokens = (int) Math.max(1, Math.round(budget * kvLength));
        decodePattern = switch (pattern) {
            case "dense" -> DecodePattern.dense();
            case "quest" -> DecodePattern.quest(tokens);
            case "topk" -> DecodePattern.topK(tokens);
            case "sinkwindow" -> DecodePattern.sinkWindow(64, tokens - 64);
            default -> throw new IllegalArgumentException("pattern: dense, quest, topk or sinkwindow, got " + pattern);
        };
        if (!paged && !pattern.equals("dense")) {
            throw new IllegalArgumentException("kind: sparse patterns run on the paged layout (quest needs its pages)");
        }
        long e = type.byteSize();
        long kv = (long) kvHeads * kvLength * 2 * dim * e;
        long visited = decodePattern instanceof DecodePattern.Dense ? kv : (long) kvHeads * tokens * 2 * dim * e;
        long selection = switch (pattern) {
            case "quest" -> (long) kvHeads * (kvLength / pageSize) * 2 * dim * e;
            case "topk" -> (long) kvHeads * kvLength * dim * e;
            default -> 0;
        };
        gbPerStep = (visited + selection) * 1e-9;
        System.out.println("decode bench: " + backend.kernelDescription() + ", " + backend.parallelism() + " thread(s), "
                + dtype + " " + layout + " " + decodePattern.name() + String.format(", %.3f GB per step", gbPerStep));
        if (backend.flavour() != KernelFlavour.VECTOR) {
            System.out.println("decode bench: WARNING the scalar kernel runs; add --add-modules jdk.incubator.vector");
        }
    }

    @org.openjdk.jmh.annotations.TearDown
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }

    @Benchmark
    public void step(GigaBytes counter) {
        DecodeSelection sel = decodePattern instanceof DecodePattern.Dense ? null
                : backend.select(q, cache, decodePattern, options);
        backend.decode(q, cache, sel, out, lse, options);
        counter.gbytes += gbPerStep;
    }
}
