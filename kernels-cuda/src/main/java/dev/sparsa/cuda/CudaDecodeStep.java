package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.CU_MEMHOSTALLOC_PORTABLE;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamIsCapturing;

import dev.sparsa.backend.DecodeArguments;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.Tensor;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstreamCaptureStatus;

/**
 * A decode step prepared once for a KV cache in CUDA memory, a pattern and a longest length, whose
 * kernels can be captured in one CUDA graph and replayed at every later step while the cache grows
 * (FlashInfer's plan / run split): the work items and merge tiles keep their number and place for
 * every length up to {@link #maxLength()}, and only their key ranges, the lengths and the block
 * tables change, in device memory the step owns.
 *
 * <p>The pattern is dense decode, Quest without sinks or window on a paged cache with page bounds,
 * or top-k (one query row, or no window). For Quest and top-k every {@link #run} queues the choice
 * first: Quest's page bounds and choice of pages, or top-k's key scores and choice of keys, the
 * kernels of {@link CudaBackend#selectAndDecode}, which write the step's page or key lists in its
 * device metadata; the decode kernels then visit those lists. A graph captured once therefore
 * chooses again at every replay, from that step's query and keys: the same selection as {@code
 * DecodeSelector}'s on host copies, as a direct call makes.
 *
 * <p>The loop of a serving engine:
 * <pre>{@code
 * try (CudaDecodeStep step = backend.prepareDecodeStep(cache, qHeads, 1, maxLength, options, stream);
 *      CudaGraph graph = CudaGraph.capture(stream, () -> step.run(q, out, lse))) {
 *     for (...) {
 *         cache.appendStep(k, v);   // the new token's K and V
 *         step.refresh();           // the new lengths and tables: one asynchronous copy on stream
 *         Tensor.copy(qNew, q);     // this step's Q into the captured tensor
 *         graph.launch();           // or step.run(q, out, lse) without a graph
 *     }
 * }
 * }</pre>
 *
 * <p>Semantics are those of {@link CudaBackend#decode} with no selection (dense), or of {@link
 * CudaBackend#selectAndDecode} with the pattern: each of Q's {@code rows} rows sits at position
 * {@code length − rows + r} and sees keys {@code 0 ..} that position (Quest's and top-k's among
 * them). The step cuts the keys each (sequence, KV head) visits into a fixed number of chunks chosen
 * at prepare time by the options' split rule at the most keys a sequence visits up to {@code
 * maxLength} on this device: an explicit {@link SplitKv#fixed} length cuts as a direct call does; the
 * rule cuts every length evenly into that many chunks, so the
 * results equal a direct call's up to the f32 rounding of the merge (within the decode tolerance),
 * and a replay is bitwise the same as a direct {@link #run} at the same lengths.
 *
 * <p>Contract: the kernels read the lengths and tables of the last {@link #refresh()}; {@link #run}
 * refuses a cache whose lengths (or the first or last page of a block table) differ from them, but a
 * graph replay cannot check, so call {@code refresh()} after every change of the cache and before
 * the next replay. A graph bakes
 * the Q, output and LSE addresses of the captured {@code run}: write each step's Q into the same
 * tensor. All work (the refresh's copy, the kernels, the replays) goes on the step's stream, so its
 * order is the stream's; the K/V rows an append writes must be in place before the stream runs the
 * step (appends through another stream: synchronize it first). Not thread-safe.
 */
public final class CudaDecodeStep implements AutoCloseable {
    private final CudaRuntime rt;
    private final KvCache cache;
    private final int queryHeads;
    private final int rows;
    private final int maxLength;
    private final DecodeOptions options;
    private final CudaStream stream;
    private final DecodeStepLayout layout;
    private final int pageSize;
    private final DecodePattern chosen;
    private final int[] host;
    private final DeviceBuffer meta;
    private final DeviceBuffer scores;
    private final DeviceBuffer scratchO;
    private final DeviceBuffer scratchLse;
    private final DeviceBuffer mergeCounts;
    private final Pointer pinned;
    private final IntBuffer pinnedInts;
    private final CUevent copied = new CUevent();
    private boolean copyPending;
    private int[] lengths;
    private int[][] tables;
    private boolean closed;

    /**
     * Lays out the step, allocates its buffers and queues the first {@link #refresh()}. The arguments
     * are checked by {@link CudaBackend#prepareDecodeStep}.
     */
    CudaDecodeStep(CudaRuntime rt, KvCache cache, DecodePattern chosen, int queryHeads, int rows, int maxLength,
                   DecodeOptions options, CudaStream stream) {
        this.rt = rt;
        this.cache = cache;
        this.queryHeads = queryHeads;
        this.rows = rows;
        this.maxLength = maxLength;
        this.options = options;
        this.stream = stream;
        this.pageSize = cache instanceof PagedKvCache p ? p.pageSize() : 0;
        this.chosen = chosen;
        int width = pageSize > 0 ? (maxLength + pageSize - 1) / pageSize : 0;
        int batch = cache.batch();
        int kvHeads = cache.kvHeads();
        SplitKv split = options.split().onGpu();
        CudaDevice dev = rt.device();
        // the split rule weighs the most keys a step visits up to the longest length: for Quest and top-k, their budget's
        int longest = DecodeStepLayout.maxVisits(chosen, pageSize, rows, maxLength);
        int chunkKeys = split.chunkKeys(batch, kvHeads, longest, dev.multiprocessors());
        int chunks = SplitKv.chunks(longest, chunkKeys);
        int fixed = split.fixedChunkKeys() > 0 && chunks > 1 ? chunkKeys : 0;
        this.layout = new DecodeStepLayout(batch, kvHeads, (queryHeads / kvHeads) * rows, chunks, fixed,
                Math.max(width, pageSize > 0 ? 1 : 0), chosen, pageSize, rows, maxLength);
        this.host = new int[layout.hostSize];
        dev.makeCurrent();
        Cuda.check(cuEventCreate(copied, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        DeviceBuffer m = null;
        DeviceBuffer so = null;
        DeviceBuffer sl = null;
        DeviceBuffer mc = null;
        DeviceBuffer sc = null;
        Pointer p = new Pointer();
        boolean done = false;
        try {
            m = new DeviceBuffer(dev, 4L * layout.size);
            so = layout.scratchEntries > 0 ? new DeviceBuffer(dev, 4L * layout.scratchEntries * cache.valueDim()) : null;
            sl = layout.scratchEntries > 0 ? new DeviceBuffer(dev, 4L * layout.scratchEntries) : null;
            if (layout.merges > 0 && CudaDecode.mergeInDecode) {
                mc = new DeviceBuffer(dev, 4L * layout.merges);
                mc.fill((byte) 0, stream); // the kernels leave the counters at zero after every run
            }
            if (chosen != null) {
                sc = new DeviceBuffer(dev, 4L * batch * kvHeads * layout.scoreWidth);
            }
            Cuda.check(cuMemHostAlloc(p, 4L * layout.hostSize, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc("
                    + 4L * layout.hostSize + " bytes)");
            done = true;
        } finally {
            if (!done) {
                for (DeviceBuffer b : new DeviceBuffer[] {m, so, sl, mc, sc}) {
                    if (b != null) {
                        b.close();
                    }
                }
                cuEventDestroy(copied);
            }
        }
        this.meta = m;
        this.scratchO = so;
        this.scratchLse = sl;
        this.mergeCounts = mc;
        this.scores = sc;
        this.pinned = p;
        this.pinnedInts = p.getByteBuffer(0, 4L * layout.hostSize).order(ByteOrder.nativeOrder()).asIntBuffer();
        try {
            refresh();
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The cache whose lengths {@link #refresh()} reads. */
    public KvCache cache() {
        return cache;
    }

    /** The pattern the step decodes: dense, or the Quest or top-k it chooses on the device at every run. */
    public DecodePattern pattern() {
        return chosen == null ? DecodePattern.dense() : chosen;
    }

    /** The longest sequence length the step runs. */
    public int maxLength() {
        return maxLength;
    }

    /** The stream every copy and kernel of the step goes on (replay its graphs there). */
    public CudaStream stream() {
        return stream;
    }

    /** Chunks each (sequence, KV head)'s keys are cut into (1: no split, nothing to merge). */
    public int chunks() {
        return layout.chunks;
    }

    /** CTAs of the decode kernel at every step: sequences × KV heads × pair tiles × chunks. */
    public int workItems() {
        return layout.items;
    }

    /**
     * Reads the cache's lengths (and block tables) and queues their copy, with the work items' key
     * ranges, into the step's device metadata on {@link #stream()}. Waits only for the previous
     * refresh's copy to have left its pinned host buffer.
     *
     * @throws IllegalStateException if a sequence is longer than {@link #maxLength()} (prepare a
     *     larger step), the stream is capturing (a refresh is host work between replays, not part of
     *     a graph), or the step is closed
     */
    public void refresh() {
        ensureOpen();
        int[] now = cache.lengths();
        for (int b = 0; b < now.length; b++) {
            if (now[b] > maxLength) {
                throw new IllegalStateException("cache: sequence " + b + " has length " + now[b]
                        + ", past the step's maxLength " + maxLength + "; prepare a step for longer sequences");
            }
        }
        rt.device().makeCurrent();
        if (capturing()) {
            throw new IllegalStateException("refresh: the step's stream is capturing a graph; refresh between replays,"
                    + " outside the capture");
        }
        int[][] tab = tablesOf(cache);
        layout.write(host, now, tab);
        if (copyPending) {
            Cuda.check(cuEventSynchronize(copied), "cuEventSynchronize", "decode step metadata");
            copyPending = false;
        }
        pinnedInts.clear();
        pinnedInts.put(host, 0, layout.hostSize);
        Cuda.check(cuMemcpyHtoDAsync(meta.pointer(), pinned, 4L * layout.hostSize, stream.handle()), "cuMemcpyHtoDAsync");
        Cuda.check(cuEventRecord(copied, stream.handle()), "cuEventRecord");
        copyPending = true;
        lengths = now;
        tables = tab;
    }

    /** {@link #run(Tensor, KvCache, Tensor, Tensor)} on the prepared cache. */
    public String run(Tensor q, Tensor out, Tensor lse) {
        return run(q, cache, out, lse);
    }

    /**
     * Queues the step's kernels on {@link #stream()} without waiting: the choice of {@link #pattern()}
     * (Quest, top-k), then decode of {@code q} against {@code layerCache} at the lengths of the last
     * {@link #refresh()}, into {@code out} and {@code lse}. {@code layerCache} is the prepared cache or
     * another with the same layout, lengths and block tables (another layer's cache of the same
     * model), so that one refresh serves every layer; Quest and top-k choose from that layer's page
     * bounds or keys. May be called while the stream captures a graph.
     *
     * @param q   {@code [batch, queryHeads, rows, headDim]} in the cache's dtype (f16, bf16 or e4m3 for an
     *            e4m3 cache), on its device
     * @param out {@code [batch, queryHeads, rows, valueDim]}, f32 or Q's dtype
     * @param lse {@code [batch, queryHeads, rows, 1]} f32, or null
     * @return the names of the kernels queued
     * @throws IllegalArgumentException as {@link DecodeArguments#validate}, or if Q's heads or rows
     *     differ from the prepared ones, or {@code layerCache}'s kind, shape, page size, page bounds
     *     (Quest), lengths or first or last page of a block table differ from the prepared cache's at
     *     the last refresh
     * @throws IllegalStateException if the step is closed
     */
    public String run(Tensor q, KvCache layerCache, Tensor out, Tensor lse) {
        ensureOpen();
        DecodeArguments.validate(q, layerCache, null, out, lse, options);
        String refusal = CudaDecode.queryRefusal(layerCache.dtype(), q);
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        if (chosen != null && !CudaDecode.readsQuery(q, layerCache)) {
            throw new IllegalArgumentException("q: " + q + " is not a query the choice kernels of " + chosen.name()
                    + " read on " + layerCache + " (the cache's dtype, its device and head dim)");
        }
        if (q.heads() != queryHeads || q.seqLen() != rows) {
            throw new IllegalArgumentException("q: " + q.heads() + " heads × " + q.seqLen() + " rows, but the step was"
                    + " prepared for " + queryHeads + " × " + rows);
        }
        if (layerCache != cache) {
            String why = sameLayout(layerCache);
            if (why != null) {
                throw new IllegalArgumentException("cache: " + why + " differs from the prepared cache's; a step runs "
                        + "caches of one layout");
            }
        }
        if (!Arrays.equals(layerCache.lengths(), lengths)) {
            throw new IllegalArgumentException("cache: lengths " + Arrays.toString(layerCache.lengths()) + " differ from "
                    + Arrays.toString(lengths) + " of the last refresh(); call refresh() after the cache changes");
        }
        if (pageSize > 0) {
            // the first and last page of each table: O(batch), so that a direct run per layer stays cheap
            PagedKvCache paged = (PagedKvCache) layerCache;
            for (int b = 0; b < lengths.length; b++) {
                int len = lengths[b];
                if (len > 0 && (paged.page(b, 0) != tables[b][0]
                        || paged.page(b, len - 1) != tables[b][(len - 1) / pageSize])) {
                    throw new IllegalArgumentException("cache: sequence " + b + "'s block table differs from the one of "
                            + "the last refresh() (first or last page); call refresh() after the cache changes");
                }
            }
        }
        CudaDecode.Storage st = CudaDecode.storage(layerCache);
        int kvHeads = layerCache.kvHeads();
        long[] scalars = CudaDecode.scalars(q, st.k(), st.v(), out, lse, queryHeads / kvHeads, rows, st.paged(),
                st.pageShift(), layout.tableWidth, layout.mode, kvHeads, layerCache.batch(), layout.offsets(),
                Math.max(1, layout.listWidth), options.run().scaleFor(layerCache.headDim()), options.run().softCap());
        rt.device().makeCurrent();
        String chose = "";
        if (chosen != null) {
            CudaDecode.Plan p = new CudaDecode.Plan();
            p.mode = layout.mode;
            p.questWidth = layout.scoreWidth;
            p.questBudget = layout.budget;
            p.listWidth = layout.listWidth;
            p.oCounts = layout.oCounts;
            p.oLists = layout.oLists;
            p.scalars = scalars;
            chose = (layout.mode == CudaDecode.MODE_PAGES ? CudaDecode.queueQuest(rt, q, st, p, meta, scores, stream)
                    : CudaDecodeTopK.queue(rt, q, layerCache, st, p, meta, scores, stream)) + "+";
        }
        return chose + CudaDecode.launch(rt, layerCache.dtype(), layerCache.headDim(), layout.items, layout.merges, q,
                st, out, lse, scratchO, scratchLse, mergeCounts, meta, scalars, stream);
    }

    /** Why {@code other} cannot run on this step's metadata, or null. */
    private String sameLayout(KvCache other) {
        if (other == null) {
            return "null";
        }
        if (other.getClass() != cache.getClass()) {
            return "kind " + other.getClass().getSimpleName();
        }
        if (other.batch() != cache.batch() || other.kvHeads() != cache.kvHeads() || other.headDim() != cache.headDim()
                || other.valueDim() != cache.valueDim() || other.dtype() != cache.dtype()
                || !other.device().equals(cache.device())) {
            return "shape " + other;
        }
        if (other instanceof PagedKvCache p && p.pageSize() != pageSize) {
            return "page size " + p.pageSize();
        }
        if (chosen instanceof DecodePattern.Quest && !((PagedKvCache) other).hasPageBounds()) {
            return "page bounds (none kept)";
        }
        return null;
    }

    /** The block tables of a paged cache (each at least as long as its length needs), or null. */
    private static int[][] tablesOf(KvCache c) {
        if (!(c instanceof PagedKvCache p)) {
            return null;
        }
        int[][] t = new int[p.batch()][];
        for (int b = 0; b < t.length; b++) {
            t[b] = p.blockTable(b);
        }
        return t;
    }

    private boolean capturing() {
        int[] status = new int[1];
        Cuda.check(cuStreamIsCapturing(stream.handle(), status), "cuStreamIsCapturing");
        return status[0] != CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_NONE;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("decode step: already closed");
        }
    }

    /**
     * Waits for the step's stream, then frees its device and pinned memory (idempotent). Graphs
     * captured from the step must not be replayed afterwards.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        rt.device().makeCurrent();
        try {
            stream.synchronize();
        } catch (RuntimeException ignored) {
            // a failed kernel was reported by the call that waited for it; the memory goes anyway
        }
        for (DeviceBuffer b : new DeviceBuffer[] {meta, scratchO, scratchLse, mergeCounts, scores}) {
            if (b != null) {
                b.close();
            }
        }
        Cuda.check(cuMemFreeHost(pinned), "cuMemFreeHost");
        Cuda.check(cuEventDestroy(copied), "cuEventDestroy");
    }

    @Override
    public String toString() {
        return "CudaDecodeStep[" + pattern().name() + ", " + cache.batch() + " sequences, " + queryHeads + " query heads × " + rows
                + " rows, maxLength " + maxLength + ", " + layout.chunks + " chunks, " + layout.items + " work items on "
                + stream + "]";
    }
}
