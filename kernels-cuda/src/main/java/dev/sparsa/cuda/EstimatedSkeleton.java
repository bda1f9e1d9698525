package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.PlanContext;
import jcuda.Pointer;
import jcuda.driver.CUfunction;

/**
 * What the plans estimated on the device ({@link CudaEstimatedPlan}, {@link CudaVsEstimatedPlan},
 * {@link CudaTopKQueryEstimatedPlan}) share: the layout descriptions and tile rows of a skeleton whose lists the device fills, one layout
 * per (batch, query head) slice over contiguous tiles, and the kernel launch. The int pool starts with
 * the {@code slices} descriptions, then three arrays of {@code tiles} ints (each tile's first row, row
 * count and row-list offset −1), then {@code tiles + 1} zeros that empty lists point at.
 */
final class EstimatedSkeleton {
    private EstimatedSkeleton() {
    }

    /** Ints of the pool before the first slice's lists. */
    static int headerInts(int slices, int tiles) {
        return LI_STRIDE * slices + 4 * tiles + 1;
    }

    /** Offset of the {@code tiles + 1} zeros. */
    static int zeros(int slices, int tiles) {
        return LI_STRIDE * slices + 3 * tiles;
    }

    /**
     * The pool's header: every slice's description with the context's predicate and query offset, its
     * row arrays, and every list pointing at the zeros (the caller points the lists the device
     * writes at that slice's arrays).
     */
    static int[] header(PlanContext ctx, int slices, int tiles) {
        return header(ctx, slices, tiles, ctx.geometry().tileRows());
    }

    /**
     * {@link #header(PlanContext, int, int)} for tiles of {@code rows} consecutive query rows (1 for
     * per-row lists) instead of the geometry's.
     */
    static int[] header(PlanContext ctx, int slices, int tiles, int rows) {
        int rowStart = LI_STRIDE * slices;
        int rowCount = rowStart + tiles;
        int rowListOff = rowCount + tiles;
        int zeros = rowListOff + tiles;
        int[] head = new int[headerInts(slices, tiles)];
        ElementPredicate p = ctx.basePredicate();
        for (int l = 0; l < slices; l++) {
            int at = l * LI_STRIDE;
            head[at + LI_ROW_START] = rowStart;
            head[at + LI_ROW_COUNT] = rowCount;
            head[at + LI_ROW_LIST_OFFSET] = rowListOff;
            head[at + LI_ROW_LIST] = zeros;
            for (int li : new int[] {LI_FULL_OFFSETS, LI_FULL_BLOCKS, LI_PARTIAL_OFFSETS, LI_PARTIAL_BLOCKS,
                LI_GATHER_OFFSETS, LI_GATHER_KEYS, LI_UNCOND_OFFSETS, LI_UNCOND_KEYS}) {
                head[at + li] = zeros;
            }
            head[at + LI_GATHER_LW] = 0;
            head[at + LI_UNCOND_LW] = 0;
            writePredicate(head, at, p, ctx.queryOffset());
            head[at + LI_ROW_ENTRY_OFFSETS] = -1;
            head[at + LI_ROW_ENTRIES] = -1;
        }
        int nq = ctx.queryLength();
        for (int t = 0; t < tiles; t++) {
            head[rowStart + t] = t * rows;
            head[rowCount + t] = Math.min(rows, nq - t * rows);
            head[rowListOff + t] = -1;
        }
        return head;
    }

    /** Launches {@code f} on {@code stream}, naming the kernel in a failure. */
    static void launch(CUfunction f, int gx, int gy, int gz, int threads, int smem, CudaStream stream, String name,
                       Pointer... params) {
        Cuda.check(cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, smem, stream.handle(), Pointer.to(params), null),
                "cuLaunchKernel", name);
    }

    static Pointer i32(int v) {
        return Pointer.to(new int[] {v});
    }

    static Pointer i64(long v) {
        return Pointer.to(new long[] {v});
    }
}
