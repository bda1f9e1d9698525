package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import java.util.function.IntFunction;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;

/**
 * How the device's choice of the best candidates per (sequence, KV head) is launched: Quest's pages
 * ({@code sparsa_quest_topk}) and top-k's keys ({@code sparsa_decode_topk_choose}), both the radix select
 * of {@code decChooseBest}, or for up to 16384 candidates of one CTA its form with every candidate in
 * registers ({@code decChooseBestRegs}: one 11-bit histogram, then the keys of the k-th best's bin ranked
 * against each other; a Quest step at 128k keys in pages of 16 is 5–6 % faster with it on an H100). On
 * compute capability 9.0 and up, from {@value #CLUSTER_MIN_WIDTH} candidates
 * on, each (sequence, KV head) takes a cluster of {@value #CLUSTER} CTAs of {@value #THREADS} threads (the
 * {@code _c8} kernels), each over a slice of the candidates, exchanging histograms and counts through
 * distributed shared memory; else one CTA. At batch 1 with 8 KV heads one CTA per head kept 8 SMs busy
 * and the others idle through every pass: top-k over 128k keys took 208 µs, 32 µs as clusters, and the
 * whole top-k step at 32k keys 0.117 ms, 0.104 ms as clusters (an H100); but Quest's 8192 pages at 128k
 * keys were chosen faster by one CTA (the step 0.074–0.081 ms against 0.088 ms as clusters), whose
 * passes are short enough that the cluster's barriers cost more than the split saves.
 *
 * <p>Each kernel keeps the order keys of the first {@link #smemKeys} candidates of its CTA's share in
 * shared memory and rereads the others' scores from memory; the clustered kernels take 1 KiB more for
 * the summed histogram. The chosen candidates are the same either way (the tests run both).
 */
final class CudaChoice {
    /** CTAs per (sequence, KV head) of the clustered kernels ({@code __cluster_dims__(8, 1, 1)}). */
    static final int CLUSTER = 8;
    /** Threads per CTA. */
    static final int THREADS = 1024;
    /** Fewest candidates per (sequence, KV head) chosen by clusters: between the measured 8192 and 32768. */
    static final int CLUSTER_MIN_WIDTH = 16384;
    /** Most candidates' order keys a CTA keeps in shared memory (4 bytes each). */
    static final int MAX_SMEM_KEYS = 49152;

    /**
     * Candidates whose order keys a CTA keeps in shared memory, the first ones of its share; it rereads
     * the others' scores (a CTA that holds its candidates in registers uses none of it). Not final so that
     * the tests take the second path as well.
     */
    static int smemKeys = MAX_SMEM_KEYS;

    /**
     * Whether the choice may run as clusters where the device has them (the system property {@code
     * sparsa.cuda.choiceClusters=false} keeps one CTA per (sequence, KV head), to compare the two); not
     * final so that the tests take the one-CTA kernels on such a device as well.
     */
    static boolean clusters = !"false".equals(System.getProperty("sparsa.cuda.choiceClusters"));

    /**
     * Fewest candidates chosen by clusters: {@value #CLUSTER_MIN_WIDTH}, or the system property {@code
     * sparsa.cuda.choiceClusterMinWidth} (to time the two kernels on either side of the threshold); not final
     * so that the tests run the clusters on small problems.
     */
    static int clusterMinWidth = Math.max(1, Integer.getInteger("sparsa.cuda.choiceClusterMinWidth",
            CLUSTER_MIN_WIDTH));

    private CudaChoice() {
    }

    /**
     * Whether the choice over at most {@code width} candidates per (sequence, KV head) runs as clusters on
     * {@code rt}'s device: compute capability 9.0 and up, at least {@link #clusterMinWidth} candidates.
     */
    static boolean clustered(CudaRuntime rt, int width) {
        return clusters && width >= clusterMinWidth && rt.device().computeCapability() >= 90;
    }

    /** The kernel of {@code base} ({@code sparsa_quest_topk} or {@code sparsa_decode_topk_choose}) to launch. */
    static String kernelName(String base, boolean clustered) {
        return clustered ? base + "_c8" : base;
    }

    /**
     * The most candidates out of {@code width} one CTA takes: all of them, or with clusters an eighth,
     * rounded up to whole rows of 32 (the kernel's slices).
     */
    static int shareKeys(int width, boolean clustered) {
        return clustered ? ((width + CLUSTER - 1) / CLUSTER + 31) & ~31 : width;
    }

    /**
     * Queues the choice kernel of {@code base} for {@code units} (sequence, KV head) pairs of at most
     * {@code width} candidates on {@code stream}; {@code args} builds the kernel's arguments from the
     * order keys each CTA keeps in shared memory (its last argument). Returns the kernel's name.
     */
    static String launch(CudaRuntime rt, String base, int units, int width, IntFunction<Pointer> args,
                         CUstream stream) {
        boolean clustered = clustered(rt, width);
        String name = kernelName(base, clustered);
        int keys = Math.min(shareKeys(width, clustered), smemKeys);
        int smem = 4 * (keys + (clustered ? 256 : 0));
        // one limit per kernel, whatever the call (a limit set per call would let a smaller call lower it)
        CUfunction f = rt.module().function(name, 4 * (MAX_SMEM_KEYS + 256));
        Cuda.check(cuLaunchKernel(f, units * (clustered ? CLUSTER : 1), 1, 1, THREADS, 1, 1, smem, stream,
                args.apply(keys), null), "cuLaunchKernel", name);
        return name;
    }
}
