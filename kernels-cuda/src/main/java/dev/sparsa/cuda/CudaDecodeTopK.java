package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import jcuda.Pointer;
import jcuda.driver.CUfunction;

/**
 * Top-k decode's selection on the device, for a cache in CUDA memory: every candidate key of each
 * (sequence, KV head) scored by {@code sparsa_decode_key_scores_*} (the maximum of {@code q·k} over the
 * group's query vectors, with the bits of {@code DecodeSelector.plainScorer}: values as the host reads
 * them, products rounded, added in channel order), then the {@code tokens} best chosen by {@code
 * sparsa_decode_topk_choose} ({@link CudaChoice}; ties to the lower position, NaN below every
 * number), so the selection is the one {@code DecodeSelector.select} makes on host copies, without
 * copying the keys. The choice writes each head's key list (sinks, chosen keys, window) into the
 * decode metadata: {@link #queue} leaves it there for the decode kernels (one pass, nothing copied
 * back), {@link #select} copies the chosen positions back (four bytes per chosen key) to build a
 * {@link DecodeSelection}.
 *
 * <p>Runs for a plain {@link DecodePattern.TopK} (per-head mixes take the default) where the group's
 * query vectors fit: heads per KV head × rows × head dim at most {@value #MAX_VECTOR_FLOATS}, and the
 * kernel's shared memory fits the device.
 */
final class CudaDecodeTopK {
    /** Most floats of the group's query vectors a scoring CTA keeps in shared memory. */
    static final int MAX_VECTOR_FLOATS = 4096;
    /**
     * Keys a scoring CTA takes per turn (DEC_SCORE_KEYS), one thread each: 128 in the committed images.
     * {@code -Dsparsa.cuda.scoreKeys} and {@code -Dsparsa.cuda.scoreStages} (the ring's slots; 0 for
     * the rule of {@link #stages}) are for development images built with other values
     * (kernels-cuda/bench/dev-fatbin.sh); the launch refuses an image whose thread count differs.
     */
    static final int KEYS = Integer.getInteger("sparsa.cuda.scoreKeys", 128);
    /** Slots of the scoring kernel's ring as a development image was built with them; 0: {@link #stages}'s rule. */
    static final int STAGES = Integer.getInteger("sparsa.cuda.scoreStages", 0);

    private CudaDecodeTopK() {
    }

    /** The scoring kernel for a cache of {@code cache} read by a query of {@code q} at head dim {@code d}. */
    static String keyScoresName(DType cache, DType q, int d) {
        return "sparsa_decode_key_scores_" + (cache == DType.E4M3 ? "e4m3_" : "") + CudaDecode.typeName(q) + "_d" + d;
    }

    /**
     * Slots of the scoring kernel's ring of key rows for rows of {@code rowBytes} bytes: two while both
     * fit in 100 KiB, else one (decScoreStages).
     */
    static int stages(int rowBytes) {
        return STAGES > 0 ? STAGES : 2 * KEYS * (rowBytes + 16) <= 100 * 1024 ? 2 : 1;
    }

    /**
     * Dynamic shared memory of the scoring kernel for {@code vectors} query vectors of head dim {@code d}
     * over a cache of {@code elementBytes}-byte elements: the vectors as f32, channel-major, padded to a
     * multiple of four; the ring of turns of key rows as stored, each row padded by 16 bytes.
     */
    static int sharedBytes(int vectors, int d, int elementBytes) {
        int row = d * elementBytes;
        return 4 * d * ((vectors + 3) & ~3) + stages(row) * KEYS * (row + 16);
    }

    /**
     * The scoring kernel's shared-memory limit at head dim {@code d} and {@code elementBytes}-byte cache
     * elements on a device offering {@code maxShared} bytes per block: what the largest group it takes
     * needs, at most the device's offer. One value per kernel, whatever the call's group ({@link #runs}
     * admits only groups within it).
     */
    static int sharedLimit(int d, int elementBytes, int maxShared) {
        return Math.min(sharedBytes(MAX_VECTOR_FLOATS / d, d, elementBytes), maxShared);
    }

    /**
     * Whether top-k's choice for {@code q} on {@code cache} runs on the device with {@code maxShared}
     * bytes of shared memory per block: a cache the decode kernels take, Q on its device and of a type
     * they read, and the group's vectors within {@value #MAX_VECTOR_FLOATS} floats.
     */
    static boolean runs(Tensor q, KvCache cache, int maxShared) {
        if (!CudaDecode.readsQuery(q, cache)) {
            return false;
        }
        int vectors = q.heads() / cache.kvHeads() * q.seqLen();
        return vectors * cache.headDim() <= MAX_VECTOR_FLOATS
                && sharedBytes(vectors, cache.headDim(), cache.dtype().byteSize()) <= maxShared;
    }

    /**
     * The candidates of top-k for a sequence of {@code length} keys and a step of {@code rows} rows:
     * keys {@code [from, to)} outside the sinks and the window (DecodeSelector's rule).
     */
    static int[] candidates(int length, int rows, DecodePattern.TopK top) {
        int from = Math.min(top.sinks(), length);
        int to = top.window() > 0 ? (int) Math.max(0, Math.min(length, (long) length - rows - top.window() + 1)) : length;
        return new int[] {from, Math.max(from, to)};
    }

    /**
     * Writes the unit the choice kernel reads for a (sequence, KV head) of {@code length} keys and a
     * step of {@code rows} rows into {@code dst[at .. at + 4)}: the candidates' first key, how many it
     * ranks (0 when it keeps them all or none), the candidates' end, and the list's length (sinks,
     * kept candidates, window), which it returns: the keys the decode kernels visit.
     */
    static int writeUnit(int length, int rows, DecodePattern.TopK top, int[] dst, int at) {
        int[] r = candidates(length, rows, top);
        int n = r[1] - r[0];
        int count = r[0] + (top.tokens() == 0 ? 0 : Math.min(top.tokens(), n)) + (length - r[1]);
        dst[at] = r[0];
        dst[at + 1] = top.tokens() > 0 && n > top.tokens() ? n : 0;
        dst[at + 2] = r[1];
        dst[at + 3] = count;
        return count;
    }

    /**
     * Queues the key scores and the choice of a call planned in {@link CudaDecode#MODE_TOKENS}: the
     * choice writes every (sequence, KV head)'s key list (its sinks, its chosen keys ascending, its
     * window) into {@code meta}'s lists, which the decode kernels then visit; on {@code stream}, with
     * {@code scores} of {@code p.scoreBytes} bytes. Returns the kernels' names.
     */
    static String queue(CudaRuntime rt, Tensor q, KvCache cache, CudaDecode.Storage st, CudaDecode.Plan p,
                        DeviceBuffer meta, DeviceBuffer scores, CudaStream stream) {
        int units = cache.batch() * cache.kvHeads();
        int d = cache.headDim();
        int vectors = q.heads() / cache.kvHeads() * q.seqLen();
        int width = Math.max(1, p.questWidth);
        String name = keyScoresName(cache.dtype(), q.dtype(), d);
        int eb = cache.dtype().byteSize();
        int smem = sharedBytes(vectors, d, eb);
        // the function's shared-memory limit is one attribute per kernel: set it once, to the most any group needs
        // (a limit set per call's size would let a later, smaller call lower it below an earlier size's launches)
        CUfunction fs = rt.module().function(name, sharedLimit(d, eb, rt.device().maxSharedPerBlockOptin()));
        if (KEYS != 128 && rt.module().maxThreads(fs, name) != KEYS) {
            throw new IllegalStateException(name + ": the image runs " + rt.module().maxThreads(fs, name)
                    + " threads per CTA, -Dsparsa.cuda.scoreKeys says " + KEYS);
        }
        List<Pointer> args = new ArrayList<>(List.of(Pointer.to(CudaDecode.ptr("q", q)),
                Pointer.to(CudaDecode.ptr("cache keys", st.k())), Pointer.to(scores.pointer()),
                Pointer.to(meta.pointer()), Pointer.to(meta.pointer(4L * p.oCounts)), Pointer.to(p.scalars),
                Pointer.to(new int[] {width})));
        if (cache.dtype() == DType.E4M3) {
            args.add(Pointer.to(CudaDecode.e4m3Scales(q, st.k(), st.v())));
        }
        // one wave: as many CTAs per unit as the SMs hold at once (a second, partial wave would double the last
        // CTAs' turns), each taking every grid-th turn of its unit
        int[] perSm = new int[1];
        Cuda.check(cuOccupancyMaxActiveBlocksPerMultiprocessor(perSm, fs, KEYS, smem),
                "cuOccupancyMaxActiveBlocksPerMultiprocessor", name);
        int resident = Math.max(1, perSm[0]) * rt.device().multiprocessors();
        int turns = (width + KEYS - 1) / KEYS;
        int grid = Math.max(1, Math.min(turns, resident / units));
        Cuda.check(cuLaunchKernel(fs, grid, units, 1, KEYS, 1, 1, smem, stream.handle(),
                Pointer.to(args.toArray(new Pointer[0])), null), "cuLaunchKernel", name);
        String choose = CudaChoice.launch(rt, "sparsa_decode_topk_choose", units, width,
                smemKeys -> Pointer.to(Pointer.to(scores.pointer()), Pointer.to(new int[] {width}),
                        Pointer.to(meta.pointer()), Pointer.to(p.scalars), Pointer.to(new int[] {p.questBudget}),
                        Pointer.to(new long[] {p.oCounts}), Pointer.to(new int[] {smemKeys})), stream.handle());
        return name + "+" + choose;
    }

    /**
     * Top-k's selection made on the device and copied back (for callers that keep or reuse it): the
     * keys {@code DecodeSelector} chooses, with the pattern's sinks and window. Waits for the lane's
     * stream; {@code launched} receives the kernels' names when any candidate was ranked.
     */
    static DecodeSelection select(CudaRuntime rt, Tensor q, KvCache cache, DecodePattern.TopK top, DecodeOptions options,
                                  DecodeLane lane, Consumer<String> launched) {
        CudaDecode.Storage st = CudaDecode.storage(cache);
        CudaDecode.Plan p = CudaDecode.plan(rt.device().multiprocessors(), q, cache, st, null, top, null, null, options,
                false);
        int batch = cache.batch();
        int kvHeads = cache.kvHeads();
        int units = batch * kvHeads;
        int[] lengths = cache.lengths();
        int[] lists = new int[units * p.listWidth];
        int at = (int) p.oCounts;
        boolean ranking = false;
        for (int e = 0; e < units; e++) {
            ranking |= p.meta[at + 4 * e + 1] > 0;
        }
        if (ranking) {
            rt.device().makeCurrent();
            DeviceBuffer meta = lane.upload(p.meta, p.metaInts);
            launched.accept(queue(rt, q, cache, st, p, meta, lane.scores(p.scoreBytes(units)), lane.stream));
            lane.stream.synchronize("top-k's key choice");
            Cuda.check(cuMemcpyDtoH(Pointer.to(lists), meta.pointer(4L * p.oLists), 4L * lists.length), "cuMemcpyDtoH");
        }
        DecodeSelection.Builder sel = DecodeSelection.builder(batch, kvHeads, lengths).describe(top.name());
        int tokens = top.tokens();
        for (int e = 0; e < units; e++) {
            int b = e / kvHeads;
            int g = e % kvHeads;
            sel.forced(b, g, top.sinks(), top.window());
            int from = p.meta[at + 4 * e];
            int ranked = p.meta[at + 4 * e + 1];
            int to = p.meta[at + 4 * e + 2];
            if (ranked == 0) {
                if (to > from && tokens > 0) {
                    sel.span(b, g, from, to);
                }
                continue;
            }
            // the chosen keys follow the unit's sinks in its list; runs of consecutive keys as one span each
            int c0 = e * p.listWidth + from;
            int start = lists[c0];
            int end = start + 1;
            for (int i = 1; i < tokens; i++) {
                int key = lists[c0 + i];
                if (key == end) {
                    end++;
                } else {
                    sel.span(b, g, start, end);
                    start = key;
                    end = key + 1;
                }
            }
            sel.span(b, g, start, end);
        }
        return sel.build();
    }
}
