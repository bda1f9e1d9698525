package dev.sparsa.cuda;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.plan.TileGeometry;
import dev.sparsa.tensor.DType;
import java.util.List;

/**
 * Which compiled kernel runs a call, with its launch shape. bf16 and f16 inputs run the tensor-core
 * kernel {@code sparsa_tc_<dtype>_d<D>_r<tileRows>} (one CTA of tileRows/16 warps per query tile);
 * f32 inputs run the exact CUDA-core kernel {@code sparsa_f32_d<D>} (one CTA of 256 threads per
 * 64-row sub-tile).
 *
 * @param name        the kernel's symbol in the fatbin
 * @param threads     threads per CTA
 * @param sharedBytes dynamic shared memory per CTA
 * @param rows        query rows per CTA (the work list's sub-tile height)
 */
public record KernelChoice(String name, int threads, int sharedBytes, int rows) {
    /** Head dimensions the kernels are compiled for. */
    public static final List<Integer> HEAD_DIMS = List.of(64, 80, 96, 128, 256);
    /** Geometries the CUDA backend runs. */
    public static final List<TileGeometry> GEOMETRIES = List.of(new TileGeometry(64, 64), new TileGeometry(128, 128));

    /**
     * The kernel for a call.
     *
     * @param maxSharedBytes the device's opt-in shared memory per block (0 to skip that check)
     * @throws IllegalArgumentException naming the geometry, head dimension or value dimension this
     *     backend does not run, or the shared memory the device lacks
     */
    public static KernelChoice of(AttentionShape shape, DType dtype, TileGeometry geometry, int maxSharedBytes) {
        if (!GEOMETRIES.contains(geometry)) {
            throw new IllegalArgumentException("geometry: the CUDA backend runs plans of geometry 64x64 and 128x128, got "
                    + geometry);
        }
        int d = shape.headDim();
        if (!HEAD_DIMS.contains(d)) {
            throw new IllegalArgumentException("headDim: the CUDA backend's kernels cover head dims " + HEAD_DIMS + ", got " + d);
        }
        if (shape.valueDim() != d) {
            throw new IllegalArgumentException("valueDim: the CUDA backend needs valueDim == headDim, got valueDim "
                    + shape.valueDim() + " with headDim " + d);
        }
        KernelChoice k;
        if (dtype == DType.F32) {
            int smem = 4 * (64 * (d + 1) + 2 * 32 * (d + 1) + 64 * 33 + 32) + 4 * (32 + 64);
            k = new KernelChoice("sparsa_f32_d" + d, 256, smem, 64);
        } else {
            // -Dsparsa.cuda.ctaRows=64 runs 128-row tiles as two 64-row CTAs (an experiment switch)
            int rows = Math.min(geometry.tileRows(), Integer.getInteger("sparsa.cuda.ctaRows", geometry.tileRows()));
            int str = d + 8;
            int stages = d >= 256 ? 1 : 2;
            int smem = 2 * (rows * str + 2 * stages * 64 * str) + 4 * stages * 64 * 2 + 4 * rows;
            String t = dtype == DType.BF16 ? "bf16" : "f16";
            // 128-row CTAs at D <= 128 give each warp two 16-row m-tiles (4 warps); otherwise one (rows/16 warps)
            int mTiles = rows == 128 && d <= 128 ? 2 : 1;
            k = new KernelChoice("sparsa_tc_" + t + "_d" + d + "_r" + rows, 32 * rows / (16 * mTiles), smem, rows);
        }
        if (maxSharedBytes > 0 && k.sharedBytes > maxSharedBytes) {
            throw new IllegalArgumentException("headDim: kernel " + k.name + " needs " + k.sharedBytes
                    + " bytes of shared memory per block; this device offers " + maxSharedBytes);
        }
        return k;
    }

    /** True for the tensor-core kernels (16-byte loads: strides must be multiples of 8 elements). */
    public boolean tensorCores() {
        return name.startsWith("sparsa_tc_");
    }
}
