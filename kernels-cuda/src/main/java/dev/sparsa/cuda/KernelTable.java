package dev.sparsa.cuda;

import java.util.List;

/**
 * Every kernel by name, in the order of the kernel table {@code src/main/cuda/sparsa_kernels.def}, with the
 * kernel image that holds it: one image per translation unit {@code src/main/cuda/<image>.cu}, loaded as the
 * resource {@code dev/sparsa/cuda/<image>.fatbin}. Generated from the table and the units by
 * kernels-cuda/build-fatbin.sh and checked against them by KernelTableTest; do not edit.
 */
final class KernelTable {
    /** The images, one per translation unit, by name. */
    static final List<String> IMAGES = List.of(
            "sparsa_decode_quest",
            "sparsa_estimators",
            "sparsa_prefill_f32_merge",
            "sparsa_prefill_mma_bf16",
            "sparsa_prefill_mma_f16",
            "sparsa_prefill_wgmma");

    /** The kernels, in table order, each with its image. */
    static final List<Kernel> KERNELS = List.of(
            new Kernel("sparsa_tc_bf16_d64_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d80_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d96_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d128_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d256_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d128v64_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d64v128_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d192v128_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d64_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d80_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d96_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d128_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d256_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d128v64_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d64v128_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_bf16_d192v128_r128", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tc_f16_d64_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d80_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d96_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d128_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d256_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d128v64_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d64v128_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d192v128_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d64_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d80_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d96_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d128_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d256_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d128v64_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d64v128_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tc_f16_d192v128_r128", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tcg_bf16_d64_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tcg_bf16_d128_r64", "sparsa_prefill_mma_bf16"),
            new Kernel("sparsa_tcg_f16_d64_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_tcg_f16_d128_r64", "sparsa_prefill_mma_f16"),
            new Kernel("sparsa_wg_bf16_d64_r128", "sparsa_prefill_wgmma"),
            new Kernel("sparsa_wg_bf16_d128_r128", "sparsa_prefill_wgmma"),
            new Kernel("sparsa_wg_f16_d64_r128", "sparsa_prefill_wgmma"),
            new Kernel("sparsa_wg_f16_d128_r128", "sparsa_prefill_wgmma"),
            new Kernel("sparsa_wg_e4m3_d128_r128", "sparsa_prefill_wgmma"),
            new Kernel("sparsa_f32_d64", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d80", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d96", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d128", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d256", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d128v64", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d64v128", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_f32_d192v128", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_merge", "sparsa_prefill_f32_merge"),
            new Kernel("sparsa_decode_f32_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f32_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f32_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f16_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_bf16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_bf16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_bf16_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f16_d64_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_f16_d128_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_bf16_d64_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_bf16_d128_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_f16_d64_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_f16_d128_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_bf16_d64_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_bf16_d128_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_e4m3_d64_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_e4m3_e4m3_d128_mma", "sparsa_decode_quest"),
            new Kernel("sparsa_decode_merge", "sparsa_decode_quest"),
            new Kernel("sparsa_gather_pages", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f32_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f32_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f32_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_f16_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_bf16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_bf16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_bf16_d256", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_f16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_f16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_bf16_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_bf16_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_e4m3_d64", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_bounds_e4m3_e4m3_d128", "sparsa_decode_quest"),
            new Kernel("sparsa_quest_topk", "sparsa_decode_quest"),
            new Kernel("sparsa_est_pool", "sparsa_estimators"),
            new Kernel("sparsa_est_select", "sparsa_estimators"),
            new Kernel("sparsa_est_emit", "sparsa_estimators"),
            new Kernel("sparsa_vs_scores", "sparsa_estimators"),
            new Kernel("sparsa_vs_rows", "sparsa_estimators"),
            new Kernel("sparsa_vs_sums", "sparsa_estimators"),
            new Kernel("sparsa_vs_top", "sparsa_estimators"),
            new Kernel("sparsa_vs_emit", "sparsa_estimators"),
            new Kernel("sparsa_vs_offsets", "sparsa_estimators"),
            new Kernel("sparsa_tk_mean", "sparsa_estimators"),
            new Kernel("sparsa_tk_scores", "sparsa_estimators"),
            new Kernel("sparsa_tk_rank", "sparsa_estimators"),
            new Kernel("sparsa_tk_emit_counts", "sparsa_estimators"),
            new Kernel("sparsa_tk_emit_offsets", "sparsa_estimators"),
            new Kernel("sparsa_tk_emit_tiles", "sparsa_estimators"),
            new Kernel("sparsa_tq_scores", "sparsa_estimators"),
            new Kernel("sparsa_tq_rank", "sparsa_estimators"),
            new Kernel("sparsa_tq_emit", "sparsa_estimators"),
            new Kernel("sparsa_tq_emit_rows", "sparsa_estimators"),
            new Kernel("sparsa_li_scores", "sparsa_estimators"));

    /** The kernels' names, in table order. */
    static final List<String> NAMES = KERNELS.stream().map(Kernel::name).toList();

    /** A kernel's name (its symbol) and the image that holds it. */
    record Kernel(String name, String image) {
    }

    private KernelTable() {
    }
}
