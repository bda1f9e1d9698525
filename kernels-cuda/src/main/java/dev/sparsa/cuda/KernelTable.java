package dev.sparsa.cuda;

import java.util.List;

/**
 * Every kernel of the fatbin by name, in the order of the kernel table {@code src/main/cuda/sparsa_kernels.def}.
 * Generated from that table by kernels-cuda/build-fatbin.sh and checked against it by KernelTableTest;
 * do not edit.
 */
final class KernelTable {
    /** The kernels' names. */
    static final List<String> NAMES = List.of(
            "sparsa_tc_bf16_d64_r64",
            "sparsa_tc_bf16_d80_r64",
            "sparsa_tc_bf16_d96_r64",
            "sparsa_tc_bf16_d128_r64",
            "sparsa_tc_bf16_d256_r64",
            "sparsa_tc_bf16_d128v64_r64",
            "sparsa_tc_bf16_d64v128_r64",
            "sparsa_tc_bf16_d192v128_r64",
            "sparsa_tc_bf16_d64_r128",
            "sparsa_tc_bf16_d80_r128",
            "sparsa_tc_bf16_d96_r128",
            "sparsa_tc_bf16_d128_r128",
            "sparsa_tc_bf16_d256_r128",
            "sparsa_tc_bf16_d128v64_r128",
            "sparsa_tc_bf16_d64v128_r128",
            "sparsa_tc_bf16_d192v128_r128",
            "sparsa_tc_f16_d64_r64",
            "sparsa_tc_f16_d80_r64",
            "sparsa_tc_f16_d96_r64",
            "sparsa_tc_f16_d128_r64",
            "sparsa_tc_f16_d256_r64",
            "sparsa_tc_f16_d128v64_r64",
            "sparsa_tc_f16_d64v128_r64",
            "sparsa_tc_f16_d192v128_r64",
            "sparsa_tc_f16_d64_r128",
            "sparsa_tc_f16_d80_r128",
            "sparsa_tc_f16_d96_r128",
            "sparsa_tc_f16_d128_r128",
            "sparsa_tc_f16_d256_r128",
            "sparsa_tc_f16_d128v64_r128",
            "sparsa_tc_f16_d64v128_r128",
            "sparsa_tc_f16_d192v128_r128",
            "sparsa_wg_bf16_d128_r128",
            "sparsa_wg_f16_d128_r128",
            "sparsa_f32_d64",
            "sparsa_f32_d80",
            "sparsa_f32_d96",
            "sparsa_f32_d128",
            "sparsa_f32_d256",
            "sparsa_f32_d128v64",
            "sparsa_f32_d64v128",
            "sparsa_f32_d192v128",
            "sparsa_merge",
            "sparsa_decode_f32_d64",
            "sparsa_decode_f32_d128",
            "sparsa_decode_f32_d256",
            "sparsa_decode_f16_d64",
            "sparsa_decode_f16_d128",
            "sparsa_decode_f16_d256",
            "sparsa_decode_bf16_d64",
            "sparsa_decode_bf16_d128",
            "sparsa_decode_bf16_d256",
            "sparsa_decode_f16_d64_mma",
            "sparsa_decode_f16_d128_mma",
            "sparsa_decode_bf16_d64_mma",
            "sparsa_decode_bf16_d128_mma",
            "sparsa_decode_merge",
            "sparsa_gather_pages",
            "sparsa_quest_bounds_f32_d64",
            "sparsa_quest_bounds_f32_d128",
            "sparsa_quest_bounds_f32_d256",
            "sparsa_quest_bounds_f16_d64",
            "sparsa_quest_bounds_f16_d128",
            "sparsa_quest_bounds_f16_d256",
            "sparsa_quest_bounds_bf16_d64",
            "sparsa_quest_bounds_bf16_d128",
            "sparsa_quest_bounds_bf16_d256",
            "sparsa_quest_topk",
            "sparsa_est_pool",
            "sparsa_est_select",
            "sparsa_est_emit");

    private KernelTable() {
    }
}
