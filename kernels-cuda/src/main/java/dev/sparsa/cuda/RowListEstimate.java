package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimatedSkeleton.i32;
import static dev.sparsa.cuda.EstimatedSkeleton.i64;

import dev.sparsa.plan.PlanContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import jcuda.Pointer;

/**
 * What the device-estimated plans with per-row lists ({@link CudaTopKQueryEstimatedPlan}, {@link
 * CudaLightningIndexerEstimatedPlan}) share: their device memory and the kernels after the scores.
 *
 * <p><b>Memory.</b> The int pool is {@link EstimatedSkeleton#header} of {@code slices} layouts of
 * {@code nq} one-row tiles, each layout's unconditional lists pointing at its slice's arrays ({@code
 * nq + 1} offsets, then room for {@code capRow} keys per row); the float pool is {@code max(1, nq ·
 * capRow)} zeros; a work list per distinct entry of {@code rowsPerCta} and an optional gather list of
 * {@value DevicePlan#PACKED_ROWS} rows per CTA; then the buffers {@link #SEL} ({@code slices · nq ·
 * cap} ints, at least one), {@link #SEL_COUNT} ({@code slices · nq} ints) and {@link #SCRATCH} ({@link
 * #chunk} row groups of {@value CudaTopKQueryEstimatedPlan#SCORE_ROWS} rows of {@code nk} order keys).
 * A constructor that fails frees what it had allocated.
 *
 * <p><b>Launches.</b> {@link #queue} runs, per chunk of row groups, the plan's scores (its own
 * kernel, writing the scratch) then {@code sparsa_tq_rank}, and after the last chunk {@code
 * sparsa_tq_emit} and {@code sparsa_tq_emit_rows}, which write the lists' offsets and keys into the int pool.
 */
final class RowListEstimate {
    /** Index of the selections among the memory's buffers. */
    static final int SEL = 0;
    /** Index of the selections' counts among the memory's buffers. */
    static final int SEL_COUNT = 1;
    /** Index of the scores' scratch among the memory's buffers. */
    static final int SCRATCH = 2;
    private static final int ROWS = CudaTopKQueryEstimatedPlan.SCORE_ROWS;

    /** Queues one chunk's scores: row groups {@code [g0, g0 + m)} of {@code groups} per slice into {@code scratch}. */
    @FunctionalInterface
    interface Scores {
        void launch(long g0, int m, int groups, DeviceBuffer scratch);
    }

    private final PlanContext ctx;
    private final int slices;
    private final int nq;
    private final int cap;
    private final int header;
    private final int sliceStride;
    private final long groupsTotal;
    private final long chunk;
    private final EstimateMemory memory;

    /**
     * Allocates the memory on {@code dev} for {@code slices} layouts of the context's query rows,
     * room for {@code capRow} keys per row's list and {@code cap} per row's selection, a scratch of
     * at most {@code scratchBudget} bytes (at least one row group); {@code workItems} gives the work
     * items of CTAs of {@code r} rows, {@code gatherItems} those of the gather list or null for none.
     */
    RowListEstimate(CudaDevice dev, PlanContext ctx, int slices, int cap, int capRow, long scratchBudget,
                    int[] rowsPerCta, IntFunction<int[]> workItems, Supplier<int[]> gatherItems) {
        this.ctx = ctx;
        this.slices = slices;
        this.nq = ctx.queryLength();
        this.cap = cap;
        int nk = ctx.keyLength();
        this.groupsTotal = (long) slices * CudaTopKQueryEstimatedPlan.groups(nq);
        this.chunk = CudaTopKQueryEstimatedPlan.chunkGroups(slices, nq, nk, scratchBudget);
        // the int pool: layout descriptions, one tile per row, the zeros, then each slice's lists
        int[] head = EstimatedSkeleton.header(ctx, slices, nq, 1);
        this.header = head.length;
        this.sliceStride = (int) CudaTopKQueryEstimatedPlan.sliceInts(nq, capRow);
        for (int l = 0; l < slices; l++) {
            int mine = header + l * sliceStride;
            head[l * LI_STRIDE + LI_UNCOND_OFFSETS] = mine;
            head[l * LI_STRIDE + LI_UNCOND_KEYS] = mine + nq + 1;
        }
        long total = header + (long) sliceStride * slices;
        // every slice's log-weights: the float pool's zeros, as many as a slice's keys at most
        long zeroFloats = Math.max(1L, (long) nq * capRow);
        DeviceBuffer ints = null;
        DeviceBuffer floats = null;
        List<DevicePlan.WorkList> lists = new ArrayList<>();
        DevicePlan dp = null;
        DevicePlan.WorkList gather = null;
        DeviceBuffer sel = null;
        DeviceBuffer cnt = null;
        DeviceBuffer scratch = null;
        try {
            dev.makeCurrent();
            ints = new DeviceBuffer(dev, 4L * total);
            ints.copyFrom(head);
            floats = new DeviceBuffer(dev, 4L * zeroFloats);
            floats.fill((byte) 0); // no host array of that many zeros (hundreds of MB at 32k)
            for (int r : rowsPerCta) {
                if (lists.stream().noneMatch(w -> w.rows() == r)) {
                    lists.add(DevicePlan.upload(dev, r, workItems.apply(r)));
                }
            }
            int[] gatherList = gatherItems.get();
            if (gatherList != null) {
                gather = DevicePlan.upload(dev, DevicePlan.PACKED_ROWS, gatherList);
            }
            dp = new DevicePlan(dev, ints, floats, lists, gather);
            gather = null;
            sel = new DeviceBuffer(dev, 4L * Math.max(1L, (long) slices * nq * cap));
            cnt = new DeviceBuffer(dev, 4L * slices * nq);
            scratch = new DeviceBuffer(dev, chunk * ROWS * 4L * Math.max(1, nk));
        } catch (RuntimeException | Error e) {
            EstimateMemory.abandon(dp, ints, floats, lists, sel, cnt, scratch, gather == null ? null : gather.buffer());
            throw e;
        }
        this.memory = new EstimateMemory(dp, sel, cnt, scratch);
    }

    /** The memory allocated, for the plan to take ({@code CudaDeviceEstimatedPlan.own}). */
    EstimateMemory memory() {
        return memory;
    }

    /** Query rows per CTA of {@code sparsa_tq_emit_rows}: one warp each. */
    static final int EMIT_ROWS_PER_CTA = 16;

    /**
     * The grid of {@code sparsa_tq_emit_rows}: {@code slices · ceil(nq / 16)} CTAs in one dimension.
     *
     * @throws IllegalArgumentException if that passes 2³¹ − 1 CTAs
     */
    static int emitRowsBlocks(int slices, int nq) {
        long blocks = (long) slices * ((nq + EMIT_ROWS_PER_CTA - 1) / EMIT_ROWS_PER_CTA);
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("estimate: " + slices + " slices of " + nq
                    + " query rows need more CTAs than one launch takes (" + blocks + ")");
        }
        return (int) blocks;
    }

    /**
     * Queues on {@code stream}, per chunk of row groups, {@code scores} then {@code sparsa_tq_rank}
     * (rows of {@code dim} channels, {@code sinks} and {@code window} forced keys set aside), then
     * {@code sparsa_tq_emit} over the slices (the lists' offsets) and {@code sparsa_tq_emit_rows} over
     * the rows (their keys, a warp per row).
     */
    void queue(CudaModule mod, CudaStream stream, int dim, int sinks, int window, Scores scores) {
        DeviceBuffer sel = memory.buffer(SEL);
        DeviceBuffer cnt = memory.buffer(SEL_COUNT);
        DeviceBuffer scratch = memory.buffer(SCRATCH);
        int nk = ctx.keyLength();
        int causal = ctx.causal() ? 1 : 0;
        int groups = CudaTopKQueryEstimatedPlan.groups(nq);
        for (long g0 = 0; g0 < groupsTotal; g0 += chunk) {
            int m = (int) Math.min(chunk, groupsTotal - g0);
            scores.launch(g0, m, groups, scratch);
            int rankShared = CudaTopKEstimatedPlan.selectShared(dim,
                    CudaTopKQueryEstimatedPlan.rankKeys(ctx, groups, g0, m));
            EstimatedSkeleton.launch(mod.function("sparsa_tq_rank", rankShared), m * ROWS, 1, 1,
                    CudaTopKEstimatedPlan.SELECT_THREADS, rankShared, stream, "sparsa_tq_rank",
                    Pointer.to(scratch.pointer()), i32(dim), i32(nq), i32(nk), i32(causal),
                    i32(ctx.queryOffset()), i32(sinks), i32(window), i32(cap), i64(g0), i32(groups),
                    Pointer.to(sel.pointer()), Pointer.to(cnt.pointer()));
        }
        Pointer[] emit = {Pointer.to(sel.pointer()), Pointer.to(cnt.pointer()), i32(cap), i32(nq), i32(nk),
                i32(ctx.queryOffset()), i32(causal), i32(sinks), i32(window),
                Pointer.to(memory.plan().ints().pointer()), i64(header), i64(sliceStride)};
        EstimatedSkeleton.launch(mod.function("sparsa_tq_emit", 0), slices, 1, 1, 512, 0, stream, "sparsa_tq_emit", emit);
        EstimatedSkeleton.launch(mod.function("sparsa_tq_emit_rows", 0), emitRowsBlocks(slices, nq), 1, 1,
                EMIT_ROWS_PER_CTA * 32, 0, stream, "sparsa_tq_emit_rows", emit);
    }

    /**
     * The selection of {@code slice} as the device last wrote it: per query row, its ascending keys.
     * Copies synchronously; for tests.
     */
    int[][] selection(int slice) {
        int[] counts = memory.buffer(SEL_COUNT).readInts(4L * slice * nq, nq);
        int[][] out = new int[nq][];
        if (cap == 0) {
            Arrays.fill(out, new int[0]);
            return out;
        }
        int[] all = memory.buffer(SEL).readInts(4L * slice * nq * cap, nq * cap);
        for (int r = 0; r < nq; r++) {
            out[r] = Arrays.copyOfRange(all, r * cap, r * cap + counts[r]);
        }
        return out;
    }

    /**
     * The lists of {@code slice} as the device last wrote them: {full offsets, full blocks, partial
     * offsets, partial blocks, gather offsets, gathered keys, unconditional offsets, unconditional
     * keys}, in the form of {@code HeadLayout}'s arrays (the block and gathered lists empty). Copies
     * synchronously; for tests.
     */
    int[][] lists(int slice) {
        DeviceBuffer ints = memory.plan().ints();
        int zeros = EstimatedSkeleton.zeros(slices, nq);
        int[] none = ints.readInts(4L * zeros, nq + 1);
        long at = 4L * (header + (long) slice * sliceStride);
        int[] off = ints.readInts(at, nq + 1);
        int[] keys = ints.readInts(at + 4L * (nq + 1), off[nq]);
        return new int[][] {none, new int[0], none.clone(), new int[0], none.clone(), new int[0], off, keys};
    }
}
