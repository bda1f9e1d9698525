package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;

import dev.sparsa.backend.DecodeArguments;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SpanTable;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;

/**
 * Decode on the GPU ({@code sparsa_decode_*} in sparsa_decode.cuh): builds one call's metadata —
 * lengths, block tables, the selection's spans or Quest's page lists, the work items and the merge
 * tiles — in the layout the kernels read, and queues the kernels on a {@link DecodeLane}'s stream.
 *
 * <p>Work: per (sequence, KV head), the group's query heads × the step's rows are the "pairs" that
 * share each read of a key (head packing), at most {@value #PAIRS} per work item. The keys a pair
 * set visits (positions for dense decode, the selection's keys in order for sparse decode) are cut
 * into chunks of {@link SplitKv#chunkKeys} keys — the options' split-KV rule ({@link SplitKv#onGpu}: the
 * default rule with the GPU's parameters) with the device's multiprocessors as workers — and each chunk is a work item; pairs with more than one chunk are
 * merged through their LSEs in a fixed order (deterministic for a fixed rule and device).
 *
 * <p>Quest runs wholly on the device ({@link #quest}): page bounds, the choice of pages and the
 * decode over them, with no copy back to the host in between.
 */
final class CudaDecode {
    /** (query head, row) pairs per work item. */
    static final int PAIRS = 16;
    /**
     * Warps and pipeline stages of the tensor-core decode kernel (DecMma in sparsa_decode.cuh): 12 and 2 in
     * the committed images. {@code -Dsparsa.cuda.decodeWarps} and {@code -Dsparsa.cuda.decodeStages} are for
     * development images built with other values (kernels-cuda/bench/dev-fatbin.sh); the launch refuses an
     * image whose thread count differs from the warps given.
     */
    static final int MMA_WARPS = Integer.getInteger("sparsa.cuda.decodeWarps", 12);
    static final int MMA_STAGES = Integer.getInteger("sparsa.cuda.decodeStages", 2);
    static final int MMA_TILE_KEYS = 16;

    /**
     * Most CTAs per (sequence, KV head) of Quest's bounds kernel; not final so that the tests make its lane groups
     * take many turns on small caches.
     */
    static int questBoundsMaxCtas = Integer.MAX_VALUE;
    /** Head dims the decode kernels are built for (valueDim == headDim). */
    static final List<Integer> DIMS = List.of(64, 128, 256);

    static final int MODE_DENSE = 0;
    private static final int MODE_SPANS = 1;
    static final int MODE_PAGES = 2;
    /** Token lists (top-k chosen on the device): visit index v is the list's v-th key. */
    static final int MODE_TOKENS = 3;

    private CudaDecode() {
    }

    /** Most KV heads of an e4m3 cache on the GPU: the kernels take its scales by value (DecScales). */
    static final int MAX_E4M3_KV_HEADS = 128;
    /** Head dims of the e4m3 decode kernels (tensor cores only). */
    static final List<Integer> E4M3_DIMS = List.of(64, 128);

    /**
     * Why the CUDA decode kernels do not run this shape, or null: the one rule behind {@link
     * CudaBackend#decodeRefusal(DecodeShape)} and every refusal of a decode call. Pure host code on the
     * shape (no device is touched): null for caches in CUDA memory whose head dim is one of {@link
     * #DIMS} (e4m3: {@link #E4M3_DIMS}) with valueDim == headDim, in f32, f16, bf16 or e4m3, and for
     * any row count. e4m3 caches unless the system property {@code sparsa.cuda.e4m3} is {@code false}
     * (the switch of the GPU's e4m3 kernels, {@link KernelChoice#E4M3_PROPERTY}), read by an f16, bf16 or
     * e4m3 query ({@link DecodeShape#queryDType()}); an e4m3 cache is further refused at the call for more
     * than {@value #MAX_E4M3_KV_HEADS} KV heads or an e4m3 query of more heads ({@link #queryRefusal}).
     */
    static String refusal(DecodeShape shape) {
        if (shape == null) {
            return "shape: must not be null";
        }
        String why = refusal(shape.device(), shape.dtype(), shape.headDim(), shape.valueDim());
        return why != null ? why : queryTypeRefusal(shape.dtype(), shape.queryDType());
    }

    /** Why a query of {@code t} cannot read a cache of {@code cache} on the GPU (its dtype alone), or null. */
    private static String queryTypeRefusal(DType cache, DType t) {
        if (cache == DType.E4M3 && t != DType.F16 && t != DType.BF16 && t != DType.E4M3) {
            return "cuda decodes e4m3 caches with an f16, bf16 or e4m3 query, got " + t
                    + " (the cpu backend takes any query dtype)";
        }
        return null;
    }

    /** {@link #refusal(DecodeShape)} of a cache's shape (the rule does not depend on the row count), with its heads. */
    static String refusal(KvCache cache) {
        if (cache == null) {
            return "cache: must not be null";
        }
        String why = refusal(cache.device(), cache.dtype(), cache.headDim(), cache.valueDim());
        if (why == null && cache.dtype() == DType.E4M3 && cache.kvHeads() > MAX_E4M3_KV_HEADS) {
            return "cuda decodes e4m3 caches of at most " + MAX_E4M3_KV_HEADS + " KV heads, got " + cache.kvHeads();
        }
        return why;
    }

    private static String refusal(Device device, DType dtype, int headDim, int valueDim) {
        if (!device.kind().equals("cuda")) {
            return "cuda decodes caches in CUDA memory; this one is on " + device;
        }
        if (dtype == DType.E4M3 && !KernelChoice.e4m3Enabled()) {
            return "cuda decode of e4m3 caches is switched off (-D" + KernelChoice.E4M3_PROPERTY
                    + "=false); the cpu backend decodes e4m3 caches in host memory";
        }
        List<Integer> dims = dtype == DType.E4M3 ? E4M3_DIMS : DIMS;
        if (headDim != valueDim || !dims.contains(headDim)) {
            return "cuda decode runs " + (dtype == DType.E4M3 ? "e4m3 caches at " : "") + "head dims " + dims
                    + " with valueDim == headDim, got (" + headDim + ", " + valueDim + ")";
        }
        return null;
    }

    /**
     * Why a query {@code q} cannot read a cache of {@code cache} on the GPU, or null: an e4m3 cache is
     * read on the tensor cores of an f16 or bf16 query (its codes widened to the query's type), or of an
     * e4m3 query of at most {@value #MAX_E4M3_KV_HEADS} heads (its codes × its head's scale rounded to
     * bf16 once); other caches take a query of their own dtype ({@code DecodeArguments} checks that).
     */
    static String queryRefusal(DType cache, Tensor q) {
        if (cache != DType.E4M3) {
            return null;
        }
        DType t = q.dtype();
        String why = queryTypeRefusal(cache, t);
        if (why != null) {
            return why;
        }
        if (t == DType.E4M3 && q.heads() > MAX_E4M3_KV_HEADS) {
            return "cuda decodes e4m3 caches with an e4m3 query of at most " + MAX_E4M3_KV_HEADS + " heads, got "
                    + q.heads();
        }
        return null;
    }

    /**
     * Whether the decode kernels read {@code q} against {@code cache} as it is: a cache they take
     * ({@link #refusal(KvCache)}), Q on its device with its batch, head dim and a multiple of its KV
     * heads, 1 to {@value DecodeArguments#MAX_QUERY_ROWS} rows, of the cache's dtype (an e4m3 cache: a
     * query {@link #queryRefusal} accepts). Where the device selections check a call before choosing;
     * a call that fails it takes the default path, whose checks name what does not fit.
     */
    static boolean readsQuery(Tensor q, KvCache cache) {
        return q != null && refusal(cache) == null && q.device().equals(cache.device()) && q.batch() == cache.batch()
                && q.dim() == cache.headDim() && q.heads() % cache.kvHeads() == 0 && q.seqLen() >= 1
                && q.seqLen() <= DecodeArguments.MAX_QUERY_ROWS
                && (cache.dtype() == DType.E4M3 ? queryRefusal(cache.dtype(), q) == null : q.dtype() == cache.dtype());
    }

    /** Kernel name part of a dtype. */
    static String typeName(DType t) {
        return switch (t) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
            case E4M3 -> "e4m3";
        };
    }

    /**
     * Whether a cache of this dtype and head dim decodes on a tensor-core kernel ({@code
     * sparsa_decode_<t>_d<D>_mma}: f16 and bf16 at head dims 64 and 128; every e4m3 cache) rather than
     * the f32 CUDA-core one.
     */
    static boolean usesMma(DType t, int d) {
        return t != DType.F32 && d <= 128;
    }

    /** The decode kernel's name for a cache of this dtype (not e4m3) and head dim. */
    static String kernelName(DType t, int d) {
        return "sparsa_decode_" + typeName(t) + "_d" + d + (usesMma(t, d) ? "_mma" : "");
    }

    /**
     * The decode kernel's name for a cache of {@code cache} read by a query of {@code q}: {@code
     * sparsa_decode_e4m3_<q>_d<D>_mma} for e4m3 caches, else {@link #kernelName(DType, int)}.
     */
    static String kernelName(DType cache, DType q, int d) {
        return cache == DType.E4M3 ? "sparsa_decode_e4m3_" + typeName(q) + "_d" + d + "_mma" : kernelName(cache, d);
    }

    /**
     * Whether the tensor-core kernel of a cache of {@code t} at head dim {@code d} runs on a device offering
     * {@code maxShared} bytes of shared memory per block: its 12 warps' rings need up to 223 KiB, more than
     * compute capability 8.x offers (163 KiB on sm_80, 99 KiB on sm_86/89), where f16 and bf16 caches at head
     * dim 128 run the CUDA-core kernel instead.
     */
    static boolean mmaFits(DType t, int d, int maxShared) {
        return usesMma(t, d) && kernelSharedBytes(t, d) <= maxShared;
    }

    /**
     * The decode kernel that runs a cache of {@code cache} read by a query of {@code q} at head dim {@code
     * d} on a device offering {@code maxShared} bytes of shared memory per block: the tensor-core kernel
     * where it fits ({@link #mmaFits}), else the CUDA-core {@code sparsa_decode_<t>_d<D>} (e4m3 has none:
     * {@link #deviceRefusal} refuses those calls first).
     */
    static String kernelFor(DType cache, DType q, int d, int maxShared) {
        return mmaFits(cache, d, maxShared) ? kernelName(cache, q, d) : "sparsa_decode_" + typeName(cache) + "_d" + d;
    }

    /**
     * Why a device offering {@code maxShared} bytes of shared memory per block cannot decode a cache of
     * {@code t} at head dim {@code d}, or null: e4m3 caches run only on the tensor-core kernel.
     */
    static String deviceRefusal(DType t, int d, int maxShared) {
        if (t == DType.E4M3 && !mmaFits(t, d, maxShared)) {
            return "cuda decodes e4m3 caches at head dim " + d + " with " + kernelSharedBytes(t, d) + " bytes of shared "
                    + "memory per block; this device offers " + maxShared + " (the cpu backend decodes e4m3 caches in "
                    + "host memory)";
        }
        return null;
    }

    /**
     * The e4m3 kernels' scales argument (DecScales): {@value #MAX_E4M3_KV_HEADS} floats of an e4m3 query's
     * scale per head (else 1), then as many of K's scale per KV head and of V's (a per-tensor scale repeated,
     * 1 for a tensor without scales; unused heads 0).
     */
    static float[] e4m3Scales(Tensor q, Tensor k, Tensor v) {
        int n = MAX_E4M3_KV_HEADS;
        float[] a = new float[3 * n];
        float[] qs = q.dtype() == DType.E4M3 ? q.scales() : new float[0];
        float[] ks = k.scales();
        float[] vs = v.scales();
        for (int h = 0; h < Math.min(q.heads(), n); h++) {
            a[h] = scaleOf(qs, h);
        }
        for (int g = 0; g < Math.min(k.heads(), n); g++) {
            a[n + g] = scaleOf(ks, g);
            a[2 * n + g] = scaleOf(vs, g);
        }
        return a;
    }

    /** Head {@code h}'s scale of a tensor's scales: none (1), one per tensor, or one per head. */
    private static float scaleOf(float[] scales, int h) {
        return scales.length == 0 ? 1f : scales[scales.length == 1 ? 0 : h];
    }

    /** Dynamic shared memory of the decode kernel for this dtype and head dim (DecMma::SMEM or DecTile::SMEM). */
    static int kernelSharedBytes(DType t, int d) {
        if (!usesMma(t, d)) {
            return sharedBytes(t, d);
        }
        // DecMma: Q tile (16 rows), then per warp STAGES tiles of MMA_TILE_KEYS keys (K and V rows as stored with a
        // 16-byte pad, two row offsets, position and band per key) and, for e4m3, one tile of K and V widened to 16
        // bits; or the warps' merge area where that is larger
        int str = d + 8;
        int e = t.byteSize();
        int rawStride = d + 16 / e;
        int stage = 2 * e * MMA_TILE_KEYS * rawStride + MMA_TILE_KEYS * (8 + 8 + 4 + 4);
        int wide = t == DType.E4M3 ? 2 * 2 * MMA_TILE_KEYS * str : 0;
        int ring = MMA_WARPS * (MMA_STAGES * stage + wide);
        int merge = 4 * MMA_WARPS * 16 * (d + 2);
        return 2 * 16 * str + Math.max(ring, merge);
    }

    /** Dynamic shared memory of {@code sparsa_decode_<t>_d<D>} (DecTile::SMEM). */
    static int sharedBytes(DType t, int d) {
        int e = t.byteSize();
        int kt = e * d >= 256 ? 32 : 64;
        int parts = 128 / kt;
        int vec = 16 / e;
        int str = d + vec;
        int ps = kt + 4;
        return e * (2 * 2 * kt * str) + 4 * (PAIRS * (d + 4)) + 4 * (parts * PAIRS * kt) + 4 * (PAIRS * ps) + 4 * PAIRS
                + 4 * (2 * 2 * kt);
    }

    /** The storage the kernels read: K, V (and Quest's bounds) with their strides. */
    record Storage(Tensor k, Tensor v, Tensor bounds, boolean paged, int pageShift, int width) {
        static Storage of(KvCache cache) {
            return switch (cache) {
                case ContiguousKvCache c -> new Storage(c.keyStorage(), c.valueStorage(), null, false, 0, 0);
                case PagedKvCache p -> new Storage(p.keyPages(), p.valuePages(), p.pageBounds(), true,
                        Integer.numberOfTrailingZeros(p.pageSize()), Math.max(1, p.maxPageCount()));
            };
        }
    }

    /**
     * The launch of one decode call: metadata ints and offsets, items and merges.
     */
    static final class Plan {
        /** The metadata the host writes: everything before the lists ({@link #oLists} ints). */
        int[] meta;
        /** Ints of the device's metadata: {@link #meta}, then the lists the choice kernels write. */
        long metaInts;
        long[] scalars;
        int items;
        int merges;
        long scratchEntries;
        int mode;
        /** Scores per (sequence, KV head): Quest's candidate pages, or top-k's ranked candidates at most. */
        int questWidth;
        /** Quest's page budget, or top-k's tokens. */
        int questBudget;
        int listWidth;
        /** Quest's candidate pages per sequence, or top-k's per (sequence, KV head): first, ranked, end, count. */
        long oCounts;
        long oLists;

        /** Bytes of the choice's scores over {@code units} (sequence, KV head)s: {@link #questWidth} floats each. */
        long scoreBytes(int units) {
            return 4L * units * Math.max(1, questWidth);
        }
    }

    /**
     * Checks the storage layout the kernels need (16-byte rows) and returns it.
     *
     * @throws IllegalArgumentException naming the tensor
     */
    static Storage storage(KvCache cache) {
        Storage st = Storage.of(cache);
        int vec = 16 / cache.dtype().byteSize();
        Tensor[] ts = {st.k(), st.v(), st.bounds()};
        String[] names = {"cache keys", "cache values", "cache page bounds"};
        for (int i = 0; i < 3; i++) {
            if (ts[i] == null) {
                continue;
            }
            CudaTensors.buffer(names[i], ts[i]);
            for (int a = 0; a < 3; a++) {
                if (ts[i].stride(a) % vec != 0) {
                    throw new IllegalArgumentException(names[i] + ": the CUDA decode kernels load 16-byte rows; strides "
                            + "must be multiples of " + vec + " elements, got " + Arrays.toString(ts[i].strides()));
                }
            }
            if (ts[i].byteOffset() % 16 != 0) {
                throw new IllegalArgumentException(names[i] + ": must start at a 16-byte boundary, got byte offset "
                        + ts[i].byteOffset());
            }
        }
        return st;
    }

    /**
     * Builds the metadata of a call (host code only; {@code sms} is the device's multiprocessor count,
     * the split rule's workers). {@code selection} null and {@code chosen} null: dense; a selection:
     * its spans at the cache's lengths; {@code chosen} Quest: its page lists, chosen on the device;
     * {@code chosen} top-k (one row, or no window): its key lists (sinks, chosen keys, window), chosen on
     * the device ({@link CudaDecodeTopK}).
     */
    static Plan plan(int sms, Tensor q, KvCache cache, Storage st, DecodeSelection selection,
                     DecodePattern chosen, Tensor out, Tensor lse, DecodeOptions options, boolean items) {
        DecodePattern.Quest quest = chosen instanceof DecodePattern.Quest x ? x : null;
        DecodePattern.TopK top = chosen instanceof DecodePattern.TopK x ? x : null;
        int batch = cache.batch();
        int kvHeads = cache.kvHeads();
        int group = q.heads() / kvHeads;
        int rows = q.seqLen();
        int[] lengths = cache.lengths();
        Plan p = new Plan();
        p.mode = quest != null ? MODE_PAGES : top != null ? MODE_TOKENS : selection != null ? MODE_SPANS : MODE_DENSE;
        int width = st.paged() ? st.width() : 0;
        SpanTable spans = p.mode == MODE_SPANS ? selection.spanTable(lengths, rows) : null;
        int pageSize = 1 << st.pageShift();
        long[] visit = new long[batch * kvHeads];
        int[] candidates = new int[batch];
        int listWidth = 0;
        int maxCand = 0;
        if (p.mode == MODE_PAGES) {
            p.questBudget = quest.pageBudget(pageSize);
        }
        int[] units = p.mode == MODE_TOKENS ? new int[4 * batch * kvHeads] : null;
        for (int b = 0; b < batch; b++) {
            int len = lengths[b];
            for (int g = 0; g < kvHeads; g++) {
                int e = b * kvHeads + g;
                visit[e] = switch (p.mode) {
                    case MODE_DENSE -> len;
                    case MODE_SPANS -> spans.keyCount(b, g);
                    case MODE_TOKENS -> {
                        // the sinks, the candidates top-k keeps (all, or its tokens best), the window
                        int count = CudaDecodeTopK.writeUnit(len, rows, top, units, 4 * e);
                        maxCand = Math.max(maxCand, units[4 * e + 1]);
                        listWidth = Math.max(listWidth, count);
                        yield count;
                    }
                    default -> DecodeStepLayout.visits(quest, pageSize, rows, len);
                };
            }
            if (p.mode == MODE_PAGES) {
                int n = (len + pageSize - 1) / pageSize;
                candidates[b] = Math.max(0, n - 1);
                maxCand = Math.max(maxCand, candidates[b]);
                listWidth = Math.max(listWidth, Math.min(n, p.questBudget));
            }
        }
        p.listWidth = Math.max(1, listWidth);
        p.questWidth = Math.max(1, maxCand);
        long maxVisit = 0;
        for (long x : visit) {
            maxVisit = Math.max(maxVisit, x);
        }
        int chunk = options.split().onGpu().chunkKeys(batch, kvHeads, (int) Math.min(Integer.MAX_VALUE, maxVisit),
                sms);
        int pairs = group * rows;
        // first the counts, so that the items and merge tiles go straight into the metadata array
        long scratch = 0;
        long itemCount = 0;
        long mergeCount = 0;
        if (items) {
            for (long v : visit) {
                int chunks = SplitKv.chunks(v, chunk);
                for (int p0 = 0; p0 < pairs; p0 += PAIRS) {
                    itemCount += chunks;
                    if (chunks > 1) {
                        mergeCount++;
                        scratch += (long) chunks * Math.min(PAIRS, pairs - p0);
                    }
                }
            }
        }
        if (scratch > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("split: " + scratch + " partial rows exceed the decode kernel's index range");
        }
        int s = spans == null ? 0 : spans.spanCount();
        long oTables = batch;
        long oSpanOffsets = oTables + (long) batch * width;
        long oSpanStarts = oSpanOffsets + (spans == null ? 0 : batch * kvHeads + 1);
        long oSpanEnds = oSpanStarts + s;
        long oSpanDelta = oSpanEnds + s;
        long oItems = oSpanDelta + s;
        long oMerges = oItems + DI_STRIDE * itemCount;
        long oCounts = oMerges + DM_STRIDE * mergeCount;
        // the host writes everything before the lists; the choice kernels write the lists on the device, so they
        // are neither allocated nor copied here (at batch 16 x 128k keys, top-k's lists are 4 MiB per call)
        long oLists = oCounts + (p.mode == MODE_PAGES ? batch : p.mode == MODE_TOKENS ? units.length : 0);
        boolean lists = p.mode == MODE_PAGES || p.mode == MODE_TOKENS;
        long total = oLists + (lists ? (long) batch * kvHeads * p.listWidth : 0);
        if (total > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("cache: the decode metadata (" + total + " ints) does not fit one array");
        }
        int[] meta = new int[(int) oLists];
        System.arraycopy(lengths, 0, meta, 0, batch);
        if (st.paged()) {
            ((PagedKvCache) cache).blockTables(width, meta, (int) oTables);
        }
        if (spans != null) {
            System.arraycopy(spans.offsets(), 0, meta, (int) oSpanOffsets, spans.offsets().length);
            System.arraycopy(spans.starts(), 0, meta, (int) oSpanStarts, s);
            System.arraycopy(spans.ends(), 0, meta, (int) oSpanEnds, s);
            System.arraycopy(spans.maxDelta(), 0, meta, (int) oSpanDelta, s);
        }
        if (items) {
            int it = (int) oItems;
            int mt = (int) oMerges;
            int merge = 0;
            long base0 = 0;
            for (int b = 0; b < batch; b++) {
                for (int g = 0; g < kvHeads; g++) {
                    int e = b * kvHeads + g;
                    int chunks = SplitKv.chunks(visit[e], chunk);
                    for (int p0 = 0; p0 < pairs; p0 += PAIRS) {
                        int m = Math.min(PAIRS, pairs - p0);
                        long base = chunks > 1 ? base0 : -1;
                        if (chunks > 1) {
                            meta[mt + DM_B] = b;
                            meta[mt + DM_G] = g;
                            meta[mt + DM_PAIR0] = p0;
                            meta[mt + DM_PAIRS] = m;
                            meta[mt + DM_CHUNKS] = chunks;
                            meta[mt + DM_SCRATCH] = (int) base;
                            mt += DM_STRIDE;
                            merge++;
                            base0 += (long) chunks * m;
                        }
                        int span = spans == null ? 0 : spans.offsets()[e];
                        int spanOff = 0;
                        for (int c = 0; c < chunks; c++) {
                            long v0 = (long) c * chunk;
                            long v1 = Math.min(visit[e], v0 + chunk);
                            meta[it + DI_B] = b;
                            meta[it + DI_G] = g;
                            meta[it + DI_PAIR0] = p0;
                            meta[it + DI_PAIRS] = m;
                            meta[it + DI_V0] = (int) v0;
                            meta[it + DI_V1] = (int) v1;
                            meta[it + DI_SPAN] = span;
                            meta[it + DI_SPAN_OFF] = spanOff;
                            meta[it + DI_SCRATCH] = (int) (base < 0 ? -1 : base + (long) c * m);
                            meta[it + DI_MERGE] = base < 0 ? -1 : merge - 1;
                            it += DI_STRIDE;
                            if (spans != null) {
                                // advance the cursor past this chunk's keys
                                long left = v1 - v0;
                                while (left > 0) {
                                    long room = spans.ends()[span] - spans.starts()[span] - spanOff;
                                    if (left < room) {
                                        spanOff += (int) left;
                                        left = 0;
                                    } else {
                                        left -= room;
                                        span++;
                                        spanOff = 0;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.items = (int) itemCount;
        p.merges = (int) mergeCount;
        p.scratchEntries = scratch;
        if (p.mode == MODE_PAGES) {
            System.arraycopy(candidates, 0, meta, (int) oCounts, batch);
        }
        if (p.mode == MODE_TOKENS) {
            System.arraycopy(units, 0, meta, (int) oCounts, units.length);
            p.questBudget = top.tokens();
        }
        p.meta = meta;
        p.metaInts = total;
        p.oCounts = oCounts;
        p.oLists = oLists;
        p.scalars = scalars(q, st.k(), st.v(), out, lse, group, rows, st.paged(), st.pageShift(), width, p.mode, kvHeads,
                batch, new long[] {oTables, oSpanOffsets, oSpanStarts, oSpanEnds, oSpanDelta, oItems, oMerges, oLists},
                p.listWidth, options.run().scaleFor(cache.headDim()), options.run().softCap());
        return p;
    }

    /**
     * The scalars of one call in {@link DecodeFormat#SCALARS} order ({@code out} and {@code lse} may
     * be null: Quest's choice alone); {@code offsets} are the metadata sections' from {@code oTables}
     * to {@code oLists}.
     */
    static long[] scalars(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, int group, int rows, boolean paged,
                          int pageShift, int tableWidth, int mode, int kvHeads, int batch, long[] offsets, int listWidth,
                          double scale, double softCap) {
        long[] a = new long[SCALARS.size()];
        Tensor[] strided = {q, k, v, out, lse};
        String[] names = {"q", "k", "v", "o", "l"};
        String[] axes = {"sb", "sh", "ss"}; // batch, head, sequence (the dim stride is 1)
        for (int t = 0; t < strided.length; t++) {
            for (int axis = 0; axis < 3; axis++) {
                a[scalar(names[t] + axes[axis])] = strided[t] == null ? 0 : strided[t].stride(axis);
            }
        }
        a[scalar("group")] = group;
        a[scalar("rows")] = rows;
        a[scalar("outKind")] = out == null ? DevicePlanFormat.OUT_F32 : DevicePlanFormat.outKind(out.dtype());
        a[scalar("paged")] = paged ? 1 : 0;
        a[scalar("pageShift")] = pageShift;
        a[scalar("tableWidth")] = tableWidth;
        a[scalar("sparse")] = mode;
        a[scalar("kvHeads")] = kvHeads;
        a[scalar("batch")] = batch;
        String[] sections = {"oTables", "oSpanOffsets", "oSpanStarts", "oSpanEnds", "oSpanDelta", "oItems", "oMerges",
            "oLists"};
        for (int i = 0; i < sections.length; i++) {
            a[scalar(sections[i])] = offsets[i];
        }
        a[scalar("listWidth")] = listWidth;
        a[scalar("scale")] = Double.doubleToRawLongBits(scale);
        a[scalar("softCap")] = Double.doubleToRawLongBits(softCap);
        return a;
    }

    static CUdeviceptr ptr(String name, Tensor t) {
        return CudaTensors.buffer(name, t).pointer(t.byteOffset());
    }

    /**
     * Queues a decode call on the lane's stream: dense ({@code selection} and {@code chosen} null),
     * over a selection, or Quest or top-k ({@code chosen}) chosen on the device.
     */
    static String run(CudaRuntime rt, Tensor q, KvCache cache, DecodeSelection selection, DecodePattern chosen,
                      Tensor out, Tensor lse, DecodeOptions options, DecodeLane lane) {
        CudaDevice dev = rt.device();
        Storage st = storage(cache);
        Plan p = plan(dev.multiprocessors(), q, cache, st, selection, chosen, out, lse, options, true);
        dev.makeCurrent();
        DeviceBuffer meta = lane.upload(p.meta, p.metaInts);
        int d = cache.headDim();
        String launched = "";
        if (p.mode == MODE_PAGES) {
            launched = queueQuest(rt, q, st, p, meta, lane.scores(p.scoreBytes(cache.batch() * cache.kvHeads())),
                    lane.stream) + "+";
        } else if (p.mode == MODE_TOKENS) {
            launched = CudaDecodeTopK.queue(rt, q, cache, st, p, meta,
                    lane.scores(p.scoreBytes(cache.batch() * cache.kvHeads())), lane.stream) + "+";
        }
        DeviceBuffer so = p.scratchEntries > 0 ? lane.scratchO(p.scratchEntries * d * 4L) : null;
        DeviceBuffer sl = p.scratchEntries > 0 ? lane.scratchLse(p.scratchEntries * 4L) : null;
        DeviceBuffer counts = p.merges > 0 && mergeInDecode ? lane.mergeCounts(p.merges) : null;
        launched += launch(rt, cache.dtype(), d, p.items, p.merges, q, st, out, lse, so, sl, counts, meta, p.scalars,
                lane.stream);
        return launched;
    }

    /**
     * Whether split-KV decode merges its chunks inside the decode kernel (the last work item of each
     * merge tile to finish merges it, counting on a per-tile counter), so that a step is one launch,
     * instead of in the merge kernel {@code sparsa_decode_merge} (the default; same arithmetic, the
     * same bits). Off unless the system property {@code sparsa.cuda.decodeMergeInKernel=true} is set:
     * measured on the H200 it is not yet faster than the merge kernel (docs/PERFORMANCE.md, "The
     * split's merge inside the decode kernel"). Tests and the benchmark switch it directly.
     */
    static volatile boolean mergeInDecode = Boolean.getBoolean("sparsa.cuda.decodeMergeInKernel");

    /**
     * Queues the decode kernel of a {@code dtype} cache read by {@code q} over {@code items} work items and, when {@code merges > 0}, the merge
     * of their partials ({@code so}, {@code sl}: the scratch rows and LSEs, null without merges) on
     * {@code stream}: inside the decode kernel when {@code counts} (one int per merge tile, zero
     * before the call and left zero after it) is given, else as the kernel {@code sparsa_decode_merge};
     * returns the kernels' names joined by {@code +} ({@code +merge-in-decode} for the folded merge).
     */
    static String launch(CudaRuntime rt, DType dtype, int d, int items, int merges, Tensor q, Storage st, Tensor out,
                         Tensor lse, DeviceBuffer so, DeviceBuffer sl, DeviceBuffer counts, DeviceBuffer meta,
                         long[] scalars, CudaStream stream) {
        CUdeviceptr none = new CUdeviceptr();
        int maxShared = rt.device().maxSharedPerBlockOptin();
        String refusal = deviceRefusal(dtype, d, maxShared);
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        boolean mma = mmaFits(dtype, d, maxShared);
        String name = kernelFor(dtype, q.dtype(), d, maxShared);
        int smem = mma ? kernelSharedBytes(dtype, d) : sharedBytes(dtype, d);
        CUfunction f = rt.module().function(name, smem, mma);
        int threads = mma ? 32 * MMA_WARPS : 128;
        if (mma && (MMA_WARPS != 12 || MMA_STAGES != 2)) {
            int built = rt.module().maxThreads(f, name);
            if (built != threads) {
                throw new IllegalStateException(name + ": the image runs " + built / 32 + " warps, -Dsparsa.cuda.decodeWarps"
                        + " says " + MMA_WARPS);
            }
        }
        CUdeviceptr lsePtr = lse == null ? none : ptr("lse", lse);
        List<Pointer> args = new ArrayList<>(List.of(Pointer.to(ptr("q", q)), Pointer.to(ptr("cache keys", st.k())),
                Pointer.to(ptr("cache values", st.v())), Pointer.to(ptr("out", out)), Pointer.to(lsePtr),
                Pointer.to(so == null ? none : so.pointer()), Pointer.to(sl == null ? none : sl.pointer()),
                Pointer.to(counts == null ? none : counts.pointer()), Pointer.to(meta.pointer()), Pointer.to(scalars)));
        if (dtype == DType.E4M3) {
            args.add(Pointer.to(e4m3Scales(q, st.k(), st.v())));
        }
        Pointer params = Pointer.to(args.toArray(new Pointer[0]));
        Cuda.check(cuLaunchKernel(f, items, 1, 1, threads, 1, 1, smem, stream.handle(), params, null),
                "cuLaunchKernel", name);
        if (merges == 0) {
            return name;
        }
        if (counts != null) {
            return name + "+merge-in-decode";
        }
        CUfunction m = rt.module().function("sparsa_decode_merge", 0);
        Pointer mp = Pointer.to(Pointer.to(so.pointer()), Pointer.to(sl.pointer()), Pointer.to(ptr("out", out)),
                Pointer.to(lsePtr), Pointer.to(meta.pointer()), Pointer.to(scalars), Pointer.to(new int[] {d}),
                Pointer.to(new int[] {merges}));
        Cuda.check(cuLaunchKernel(m, merges, PAIRS, 1, 128, 1, 1, 0, stream.handle(), mp, null), "cuLaunchKernel",
                "sparsa_decode_merge");
        return name + "+sparsa_decode_merge";
    }

    /**
     * CTAs per (sequence, KV head) of the bounds kernel: enough for its candidate pages (QuestCfg: 8 warps of 32 / LPP
     * lane groups, PAGES_PER_GROUP pages each per turn), at most about two per SM over the whole grid, whose lane
     * groups then take several turns.
     */
    static int questBoundsCtas(DType t, int d, int candidates, int slices, int sms) {
        int vec = 16 / t.byteSize();
        int lanesPerPage = Math.min(32, d / vec);
        int words = d / lanesPerPage / vec;
        int pagesPerCta = 8 * (32 / lanesPerPage) * (words > 1 ? 2 : 4);
        int needed = Math.max(1, (candidates + pagesPerCta - 1) / pagesPerCta);
        return Math.min(Math.min(needed, questBoundsMaxCtas), Math.max(1, (2 * sms + slices - 1) / slices));
    }

    /**
     * The page bounds kernel of Quest on a cache of {@code cache} read by a query of {@code q} at head dim
     * {@code d}: {@code sparsa_quest_bounds_<t>_d<D>} (the query of the cache's type), or {@code
     * sparsa_quest_bounds_e4m3_<q>_d<D>} for e4m3 caches (f16, bf16 or e4m3 queries).
     */
    static String questBoundsName(DType cache, DType q, int d) {
        return "sparsa_quest_bounds_" + (cache == DType.E4M3 ? "e4m3_" : "") + typeName(q) + "_d" + d;
    }

    /**
     * Queues Quest's page bounds and choice on {@code stream}, which write the page lists into {@code
     * meta}; {@code scores} holds {@link Plan#scoreBytes} bytes.
     */
    static String queueQuest(CudaRuntime rt, Tensor q, Storage st, Plan p, DeviceBuffer meta, DeviceBuffer scores,
                             CudaStream stream) {
        int batch = q.batch();
        int kvHeads = st.k().heads();
        int d = q.dim();
        Tensor bounds = st.bounds();
        String bname = questBoundsName(bounds.dtype(), q.dtype(), d);
        CUfunction fb = rt.module().function(bname, 0);
        List<Pointer> args = new ArrayList<>(List.of(Pointer.to(ptr("q", q)), Pointer.to(ptr("page bounds", bounds)),
                Pointer.to(scores.pointer()), Pointer.to(meta.pointer()), Pointer.to(meta.pointer(4L * p.oCounts)),
                Pointer.to(p.scalars), Pointer.to(new long[] {bounds.stride(0)}), Pointer.to(new long[] {bounds.stride(1)}),
                Pointer.to(new long[] {bounds.stride(2)}), Pointer.to(new int[] {p.questWidth})));
        if (bounds.dtype() == DType.E4M3) {
            // the bounds carry K's scales (PagedKvCache.wrap checks it): the decode kernels' scales argument
            args.add(Pointer.to(e4m3Scales(q, bounds, st.v())));
        }
        Pointer bp = Pointer.to(args.toArray(new Pointer[0]));
        Cuda.check(cuLaunchKernel(fb, questBoundsCtas(bounds.dtype(), d, p.questWidth, batch * kvHeads,
                rt.device().multiprocessors()), batch * kvHeads, 1, 256, 1, 1, 0, stream.handle(), bp, null),
                "cuLaunchKernel", bname);
        String choose = CudaChoice.launch(rt, "sparsa_quest_topk", batch * kvHeads, p.questWidth,
                smemKeys -> Pointer.to(Pointer.to(scores.pointer()), Pointer.to(new int[] {p.questWidth}),
                        Pointer.to(meta.pointer()), Pointer.to(p.scalars), Pointer.to(new int[] {p.questBudget}),
                        Pointer.to(new int[] {smemKeys})), stream.handle());
        return bname + "+" + choose;
    }

    /**
     * Quest's selection made on the device and copied back (for callers that keep or reuse it):
     * the same pages {@code DecodeSelector} chooses, with the pattern's sinks and window. Waits for
     * the lane's stream; {@code launched} receives the kernels' names.
     */
    static DecodeSelection questSelection(CudaRuntime rt, Tensor q, PagedKvCache cache, DecodePattern.Quest quest,
                                          DecodeOptions options, DecodeLane lane, Consumer<String> launched) {
        Storage st = storage(cache);
        Plan p = plan(rt.device().multiprocessors(), q, cache, st, null, quest, null, null, options, false);
        rt.device().makeCurrent();
        DeviceBuffer meta = lane.upload(p.meta, p.metaInts);
        launched.accept(queueQuest(rt, q, st, p, meta, lane.scores(p.scoreBytes(cache.batch() * cache.kvHeads())),
                lane.stream));
        int[] lists = new int[cache.batch() * cache.kvHeads() * p.listWidth];
        lane.stream.synchronize("Quest's page choice");
        Cuda.check(cuMemcpyDtoH(Pointer.to(lists), meta.pointer(4L * p.oLists), 4L * lists.length), "cuMemcpyDtoH");
        int[] lengths = cache.lengths();
        int pageSize = cache.pageSize();
        DecodeSelection.Builder sel = DecodeSelection.builder(cache.batch(), cache.kvHeads(), lengths)
                .describe(quest.name());
        for (int b = 0; b < cache.batch(); b++) {
            int len = lengths[b];
            int n = (len + pageSize - 1) / pageSize;
            for (int g = 0; g < cache.kvHeads(); g++) {
                sel.forced(b, g, quest.sinks(), quest.window());
                if (len == 0) {
                    continue;
                }
                if (n <= p.questBudget) {
                    sel.span(b, g, 0, len);
                    continue;
                }
                int at = (b * cache.kvHeads() + g) * p.listWidth;
                for (int i = 0; i < p.questBudget - 1; i++) {
                    int pg = lists[at + i];
                    sel.span(b, g, pg * pageSize, (pg + 1) * pageSize);
                }
                sel.span(b, g, (n - 1) * pageSize, len);
            }
        }
        return sel.build();
    }
}
