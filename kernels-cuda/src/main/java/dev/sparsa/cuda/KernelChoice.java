package dev.sparsa.cuda;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import java.util.List;

/**
 * Which compiled kernel runs a call, with its launch shape. On compute capability 9.0 (H100/H200),
 * bf16 and f16 with head and value dim 64, 128 or 256 ({@link #HOPPER_DIMS}) on 128×128 tiles run the Hopper
 * kernel {@code sparsa_wg_<dtype>_d<D>_r128} (wgmma, sm_90a; three warpgroups: one producer, two
 * consumers of 64 rows); every other bf16/f16 call, and those on other chips, run the mma.sync kernel
 * {@code sparsa_tc_<dtype>_d<D>[v<DV>]_r<tileRows>} (one CTA per query tile: 4 warps of two
 * 16-row m-tiles for 128-row tiles up to D 128, else tileRows/16 warps); f32 inputs run the exact
 * CUDA-core kernel {@code sparsa_f32_d<D>[v<DV>]} (one CTA of 256 threads per 64-row sub-tile).
 * e4m3 Q, K and V (FP8 with per-head or per-tensor scales) run the Hopper kernel
 * {@code sparsa_wg_e4m3_d128_r128} under the same conditions at head dim 128 unless {@link
 * #E4M3_PROPERTY} is {@code false}, and are refused elsewhere (the CPU backend runs them).
 * The system property {@code sparsa.cuda.wgmma=false} keeps the mma.sync kernel everywhere. A bf16/f16
 * plan with a head-packed work list ({@code DevicePlan.packedWorkList}: per-row token lists shared by
 * the heads of a GQA group) runs on the mma.sync kernel of 64-row CTAs instead, whatever this choice
 * ({@link #packed}: its gather-pipelined variant {@code sparsa_tcg_<dtype>_d<D>_r64} where one is compiled).
 *
 * @param name        the kernel's symbol in its kernel image
 * @param threads     threads per CTA
 * @param sharedBytes dynamic shared memory per CTA
 * @param rows        query rows per CTA (the work list's sub-tile height)
 */
public record KernelChoice(String name, int threads, int sharedBytes, int rows) {
    /** Head dimensions the kernels are compiled for (with valueDim == headDim). */
    public static final List<Integer> HEAD_DIMS = List.of(64, 80, 96, 128, 256);
    /** (headDim, valueDim) pairs with valueDim != headDim the kernels are compiled for (MLA-style 192/128 too). */
    public static final List<List<Integer>> MIXED_DIMS = List.of(List.of(128, 64), List.of(64, 128), List.of(192, 128));
    /** Geometries the CUDA backend runs. */
    public static final List<TileGeometry> GEOMETRIES = List.of(new TileGeometry(64, 64), new TileGeometry(128, 128));

    /** (headDim, valueDim) pairs the gather-pipelined kernels {@code sparsa_tcg_*} are compiled for. */
    public static final List<List<Integer>> GATHER_DIMS = List.of(List.of(64, 64), List.of(128, 128));
    /**
     * Dynamic shared memory two CTAs of the gather-pipelined kernel may each take on one multiprocessor
     * of 228 KiB (1 KiB of each CTA's share is reserved by the hardware).
     */
    static final int TWO_CTA_SHARED_BYTES = 228 * 1024 / 2 - 1024;

    /** Compute capability ({@code major * 10 + minor}) the Hopper kernels are compiled for (sm_90a SASS runs there only). */
    public static final int HOPPER = 90;
    /** Head dims (with valueDim == headDim) the Hopper kernels {@code sparsa_wg_*} are compiled for. */
    public static final List<Integer> HOPPER_DIMS = List.of(64, 128, 256);
    /**
     * Pipeline depth of the Hopper kernel (WgConfig::STAGES in sparsa_prefill_wgmma.cuh), in stages of 64 keys,
     * for elements of {@code esz} bytes at head dim {@code d}: 8 where a stage of K and V takes 16 KiB (e4m3,
     * head dim 64; those kernels take two chunks per turn), 5 at head dim 128 in 16 bits, 2 at head dim 256 (a
     * 64 KiB stage beside 64 KiB of Q).
     */
    static int wgStages(int d, int esz) {
        return d * esz >= 512 ? 2 : d * esz <= 128 ? 8 : 5;
    }
    /** The head dim (with valueDim == headDim) of the e4m3 Hopper kernel {@code sparsa_wg_e4m3_d128_r128}. */
    public static final int E4M3_DIM = 128;
    /**
     * Query heads (and so KV heads) the e4m3 kernel takes: its per-head scales travel in a kernel parameter
     * of this many entries per tensor (WG_MAX_HEADS in sparsa_prefill_wgmma.cuh).
     */
    public static final int E4M3_MAX_HEADS = 128;
    /**
     * The system property that switches the GPU's e4m3 kernels (this prefill kernel and the e4m3 decode
     * kernels) off with {@code false}, read at every choice; on by default (their GPU suites pass on an
     * H100). Off, e4m3 calls go to the CPU backend.
     */
    public static final String E4M3_PROPERTY = "sparsa.cuda.e4m3";

    /** Whether the e4m3 kernels run: unless {@link #E4M3_PROPERTY} is {@code false}. */
    static boolean e4m3Enabled() {
        return !"false".equalsIgnoreCase(System.getProperty(E4M3_PROPERTY, "true").trim());
    }

    /**
     * Dynamic shared memory of the Hopper kernel at head dim {@code d} (WgConfig::SMEM): 1 KiB alignment
     * slack, Q, the stages of K and V with their key positions, log-weights and chunk descriptors, two
     * buffers of tile rows and tile info, the mbarriers.
     */
    static int wgSharedBytes(int d) {
        return wgSharedBytes(d, 2);
    }

    /**
     * As {@link #wgSharedBytes(int)} for elements of {@code esz} bytes; the e4m3 kernel ({@code esz} 1)
     * also holds four 64-key staging buffers of V (each producer warp's, before its transpose) and their four
     * mbarriers; the head dim 256 kernel, whose K and V rings are separate (WgConfig::SPLIT), a full and an
     * empty mbarrier more per stage.
     */
    static int wgSharedBytes(int d, int esz) {
        int vRaw = esz == 1 ? 4 * 64 * d : 0;
        int stages = wgStages(d, esz);
        int splitBarriers = d * esz >= 512 ? 2 * stages : 0;
        return 1024 + 128 * d * esz + 2 * stages * 64 * d * esz + vRaw + stages * 64 * 8 + stages * 16 + 2 * 128 * 4
                + 16 * 4 + (2 * stages + 3 + (esz == 1 ? 4 : 0) + splitBarriers) * 8;
    }

    /**
     * The kernel for a call on a device without the Hopper kernels (the mma.sync and f32 kernels only).
     *
     * @param maxSharedBytes the device's opt-in shared memory per block (0 to skip that check)
     * @throws IllegalArgumentException naming the geometry, head dimension or value dimension this
     *     backend does not run, or the shared memory the device lacks
     */
    public static KernelChoice of(AttentionShape shape, DType dtype, TileGeometry geometry, int maxSharedBytes) {
        return of(shape, dtype, geometry, maxSharedBytes, 0);
    }

    /**
     * The kernel for a call on a device of compute capability {@code computeCapability}: the Hopper
     * kernel where it applies (capability 9.0, bf16/f16, head and value dim 64 or 128, 128×128 tiles, not
     * disabled by {@code sparsa.cuda.wgmma=false} or {@code sparsa.cuda.ctaRows=64}), else as
     * {@link #of(AttentionShape, DType, TileGeometry, int)}. Both accept and refuse the same calls.
     *
     * @param computeCapability {@code major * 10 + minor}, 0 when unknown
     * @throws IllegalArgumentException as {@link #of(AttentionShape, DType, TileGeometry, int)}
     */
    public static KernelChoice of(AttentionShape shape, DType dtype, TileGeometry geometry, int maxSharedBytes,
                                  int computeCapability) {
        if (!GEOMETRIES.contains(geometry)) {
            throw new IllegalArgumentException("geometry: the CUDA backend runs plans of geometry 64x64 and 128x128, got "
                    + geometry);
        }
        int d = shape.headDim();
        int dv = shape.valueDim();
        if (dv == d && !HEAD_DIMS.contains(d)) {
            throw new IllegalArgumentException("headDim: the CUDA backend's kernels cover head dims " + HEAD_DIMS
                    + " (and headDim/valueDim pairs " + MIXED_DIMS + "), got " + d);
        }
        if (dv != d && !MIXED_DIMS.contains(List.of(d, dv))) {
            throw new IllegalArgumentException("valueDim: the CUDA backend runs valueDim == headDim for head dims " + HEAD_DIMS
                    + " and the headDim/valueDim pairs " + MIXED_DIMS + ", got headDim " + d + " with valueDim " + dv);
        }
        String dims = dv == d ? "_d" + d : "_d" + d + "v" + dv;
        KernelChoice k;
        if (dtype == DType.E4M3) {
            if (!e4m3Enabled()) {
                throw new IllegalArgumentException("dtype: the CUDA backend's e4m3 kernels are switched off (-D"
                        + E4M3_PROPERTY + "=false); the CPU backend runs e4m3 inputs");
            }
            if (!hopperTiles(geometry, computeCapability) || d != E4M3_DIM || dv != d || shape.qHeads() > E4M3_MAX_HEADS) {
                throw new IllegalArgumentException("dtype: the CUDA backend runs e4m3 on compute capability 9.0 "
                        + "(H100/H200) at head dim " + E4M3_DIM + " on 128x128 tiles with at most " + E4M3_MAX_HEADS
                        + " query heads (got capability " + computeCapability + ", head dim " + d + ", value dim " + dv
                        + ", geometry " + geometry + ", " + shape.qHeads() + " heads); the CPU backend runs the others");
            }
            k = new KernelChoice("sparsa_wg_e4m3_d" + d + "_r128", 384, wgSharedBytes(d, 1), 128);
        } else if (dtype == DType.F32) {
            int smem = 4 * (64 * (d + 1) + 32 * (d + 1) + 32 * (dv + 1) + 64 * 33 + 32) + 4 * (32 + 64);
            k = new KernelChoice("sparsa_f32" + dims, 256, smem, 64);
        } else if (hopperTiles(geometry, computeCapability) && dv == d && HOPPER_DIMS.contains(d)
                && (maxSharedBytes == 0 || wgSharedBytes(d) <= maxSharedBytes)) {
            String t = dtype == DType.BF16 ? "bf16" : "f16";
            k = new KernelChoice("sparsa_wg_" + t + "_d" + d + "_r128", 384, wgSharedBytes(d), 128);
        } else {
            // -Dsparsa.cuda.ctaRows=64 runs 128-row tiles as two 64-row CTAs (an experiment switch)
            int rows = Math.min(geometry.tileRows(), Integer.getInteger("sparsa.cuda.ctaRows", geometry.tileRows()));
            int dmax = Math.max(d, dv);
            int stages = dmax >= 256 || d + dv > 320 ? 1 : 2;
            int smem = 2 * (rows * (d + 8) + stages * 64 * ((d + 8) + (dv + 8))) + 4 * stages * 64 * 2 + 4 * rows;
            String t = dtype == DType.BF16 ? "bf16" : "f16";
            // 128-row CTAs at D <= 128 give each warp two 16-row m-tiles (4 warps); otherwise one (rows/16 warps)
            int mTiles = rows == 128 && dmax <= 128 ? 2 : 1;
            k = new KernelChoice("sparsa_tc_" + t + dims + "_r" + rows, 32 * rows / (16 * mTiles), smem, rows);
        }
        if (maxSharedBytes > 0 && k.sharedBytes > maxSharedBytes) {
            throw new IllegalArgumentException("headDim: kernel " + k.name + " needs " + k.sharedBytes
                    + " bytes of shared memory per block; this device offers " + maxSharedBytes);
        }
        return k;
    }

    /**
     * Whether the Hopper kernels may run a call in this geometry on this device: compute capability
     * 9.0, 128×128 tiles, and neither {@code sparsa.cuda.wgmma=false} nor {@code sparsa.cuda.ctaRows=64}.
     */
    private static boolean hopperTiles(TileGeometry geometry, int computeCapability) {
        return computeCapability == HOPPER && geometry.tileRows() == 128 && geometry.blockCols() == 128
                && Integer.getInteger("sparsa.cuda.ctaRows", 128) == 128
                && !"false".equals(System.getProperty("sparsa.cuda.wgmma"));
    }

    /**
     * The kernel for a head-packed work list (64-row CTAs) of a bf16/f16 call: the gather-pipelined
     * mma.sync kernel {@code sparsa_tcg_<dtype>_d<D>_r64} for the (headDim, valueDim) pairs of
     * {@link #GATHER_DIMS} (the key positions of each chunk fetched a stage ahead, {@link #gatherStages}
     * stages of keys, Q held in the last stage until it is in registers) where the device offers its
     * shared memory, else the plain 64-row mma.sync kernel ({@link #of(AttentionShape, DType, TileGeometry,
     * int, int)} on 64×64 tiles). The 64-row kernel gives a row the same arithmetic in the same order
     * as for an unpacked list (outputs equal bit for bit); the gather-pipelined one adds a row's
     * exponentials pairwise and, where a CTA's rows fill one or two of its warps, splits each chunk's
     * keys among the warps and merges their softmax states (outputs equal within rounding).
     *
     * K and V strides are not checked here (the five-argument form checks them).
     *
     * @param maxSharedBytes the device's opt-in shared memory per block (0 to skip that check)
     * @throws IllegalArgumentException for f32 inputs (packing is for the tensor-core kernels), or as
     *     {@link #of(AttentionShape, DType, TileGeometry, int)}
     */
    public static KernelChoice packed(AttentionShape shape, DType dtype, int maxSharedBytes) {
        return packed(shape, dtype, maxSharedBytes, 0, 0);
    }

    /**
     * {@link #packed(AttentionShape, DType, int)} for K and V whose consecutive keys lie {@code keyStride}
     * and {@code valueStride} elements apart: the plain 64-row kernel too where the gather-pipelined
     * kernel could not address every row ({@link #gatherOffsetsFit}).
     *
     * @throws IllegalArgumentException as {@link #packed(AttentionShape, DType, int)}
     */
    public static KernelChoice packed(AttentionShape shape, DType dtype, int maxSharedBytes, long keyStride,
                                      long valueStride) {
        if (dtype == DType.F32) {
            throw new IllegalArgumentException("dtype: head-packed work lists run on the tensor-core kernels, got F32");
        }
        int d = shape.headDim();
        int dv = shape.valueDim();
        if (!GATHER_DIMS.contains(List.of(d, dv)) || maxSharedBytes > 0 && gatherSharedBytes(d, dv) > maxSharedBytes
                || !gatherOffsetsFit(shape.keyLength(), keyStride, valueStride)) {
            return of(shape, dtype, GEOMETRIES.get(0), 0, 0);
        }
        String t = dtype == DType.BF16 ? "bf16" : "f16";
        return new KernelChoice("sparsa_tcg_" + t + "_d" + d + "_r64", 128, gatherSharedBytes(d, dv), 64);
    }

    /**
     * Key stages of the gather-pipelined kernel for (headDim {@code d}, valueDim {@code dv}):
     * as many 64-key stages as leave two CTAs per multiprocessor, between 2 and 6 (TcConfig::STAGES
     * with GP in sparsa_prefill_mma.cuh). For experiments with a fatbin built with another stage count
     * ({@code EXTRA=-DSPARSA_TCG_STAGES=n kernels-cuda/bench/dev-fatbin.sh}) the system property
     * {@code sparsa.cuda.gatherStages=n} sizes the shared memory to match.
     */
    static int gatherStages(int d, int dv) {
        int forced = Integer.getInteger("sparsa.cuda.gatherStages", 0);
        if (forced > 0) {
            return forced;
        }
        int fit = (TWO_CTA_SHARED_BYTES - 4 * 64 - 16 * 64) / (2 * 64 * ((d + 8) + (dv + 8)) + 8 * 64);
        return Math.max(2, Math.min(6, fit));
    }

    /**
     * Dynamic shared memory of the gather-pipelined kernel (TcConfig::SMEM with GP): the stages of K
     * and V with their key positions and log-weights (Q lives in the last stage at first), the tile's
     * rows, two buffers of the K and V row offsets (two ints each) of 64 prefetched keys.
     */
    static int gatherSharedBytes(int d, int dv) {
        int stages = gatherStages(d, dv);
        return 2 * stages * 64 * ((d + 8) + (dv + 8)) + 8 * stages * 64 + 4 * 64 + 8 * 2 * 64;
    }

    /**
     * True when the gather-pipelined kernel can address every K and V row of a call: it holds a row's
     * offset from the head's first row in 16-byte units as an {@code int}, so the last key's offset,
     * {@code (keyLength - 1) · stride / 8} for the key-axis strides (elements of a 2-byte dtype), must
     * be below 2³¹. Calls past it run on the plain 64-row kernel
     * ({@link #packed(AttentionShape, DType, int, long, long)}).
     *
     * @param keyLength keys per sequence
     * @param keyStride element stride between consecutive keys of K
     * @param valueStride element stride between consecutive keys of V
     */
    public static boolean gatherOffsetsFit(long keyLength, long keyStride, long valueStride) {
        long last = Math.max(0, keyLength - 1);
        long widest = Math.max(Math.abs(keyStride), Math.abs(valueStride)) / 8;
        return widest == 0 || last <= (Integer.MAX_VALUE - 1) / widest;
    }

    /** True for the tensor-core kernels (16-byte loads: strides must be multiples of 8 elements). */
    public boolean tensorCores() {
        return name.startsWith("sparsa_tc_") || name.startsWith("sparsa_tcg_") || name.startsWith("sparsa_wg_");
    }

    /**
     * True for the gather-pipelined kernels ({@code sparsa_tcg_*}), whose shared memory is sized for two
     * CTAs per multiprocessor (the launch asks for the largest shared-memory split).
     */
    public boolean gatherPipelined() {
        return name.startsWith("sparsa_tcg_");
    }

    /** True for the Hopper (wgmma, sm_90a) kernels. */
    public boolean hopper() {
        return name.startsWith("sparsa_wg_");
    }
}
