package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;

/**
 * Decode on the GPU against the bandwidth it must use: bf16, 32 query / 8 KV heads, D = 128, one
 * query row, batch {@code --batch} (default 1,16), cache lengths {@code --n} (default
 * 8192,32768,131072); dense decode on a contiguous cache and on a paged cache (pages of {@code --page}
 * tokens in a shuffled block table), and Quest at 1/16 of the pages (page bounds, page choice and
 * decode on the device) at batch 1. Each step is captured in a CUDA graph on a stream of the caller
 * and its replays timed with CUDA events (the device's time: metadata copy, kernels, merge; host work
 * between calls not counted), median of {@code --iters}; the host time of a direct call is logged.
 * In the same run a device-to-device copy gives the bandwidth ceiling. GB/s counts the bytes of K and
 * V the call must read.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaDecodeBench [--batch 1,16] [--n 8192,32768,131072]
 * [--page 16] [--iters 50] [--split rule,rule:MIN:ITEMS,KEYS,none] [--quest 16,64]}: the first split
 * rule runs every row, the others dense on the contiguous cache as extra rows; Quest runs at a budget
 * of 1/d of the tokens for each d of {@code --quest}. Not API: it lives beside the decode lanes and graph capture it times.
 */
final class CudaDecodeBench {
    private CudaDecodeBench() {
    }

    public static void main(String[] args) {
        int[] batches = {1, 16};
        int[] lengths = {8192, 32768, 131072};
        int page = 16;
        int iters = 50;
        String[] splits = {"rule"};
        int[] questDivisors = {16};
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--batch" -> batches = ints(args[++i]);
                case "--n" -> lengths = ints(args[++i]);
                case "--page" -> page = Integer.parseInt(args[++i]);
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--split" -> splits = args[++i].split(",");
                case "--quest" -> questDivisors = ints(args[++i]);
                default -> {
                    System.err.println("unknown argument " + args[i]
                            + "; usage: CudaDecodeBench [--batch 1,16] [--n 8192,32768,131072] [--page 16] [--iters 50]"
                            + " [--split rule,rule:MIN:ITEMS,KEYS,none] [--quest 16,64]");
                    System.exit(2);
                }
            }
        }
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.err.println("cuda backend unavailable: " + backend.availability().reason());
            System.exit(2);
        }
        CudaDevice dev = backend.device();
        System.err.println("device: " + dev);
        int hq = 32;
        int hk = 8;
        int d = 128;
        double copy = copyBandwidth(dev, iters);
        System.out.printf(Locale.ROOT, "device-to-device copy: %.0f GB/s (bytes read + written)%n", copy);
        System.out.printf(Locale.ROOT, "%-6s %-8s %-22s %10s %10s %8s%n", "batch", "kv len", "row", "median ms",
                "GB/s", "of copy");
        DecodeOptions o = DecodeOptions.defaults().withSplit(split(splits[0]));
        for (int batch : batches) {
            for (int n : lengths) {
                long kvBytes = 2L * batch * hk * n * d * 2;
                Tensor q = random(dev, batch, hq, 1, d, 7);
                Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, batch, hq, 1, d);
                Tensor lse = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, batch, hq, 1, 1);
                List<Tensor> held = new ArrayList<>(List.of(q, out, lse));
                try {
                    Tensor k = random(dev, batch, hk, n, d, 11);
                    Tensor v = random(dev, batch, hk, n, d, 12);
                    held.add(k);
                    held.add(v);
                    int[] lens = new int[batch];
                    Arrays.fill(lens, n);
                    ContiguousKvCache contiguous = ContiguousKvCache.wrap(k, v, lens);
                    double dense = time(backend, dev, q, contiguous, null, out, lse, o, iters);
                    row(batch, n, "dense contiguous", dense, kvBytes, copy);
                    for (int s = 1; s < splits.length; s++) {
                        double other = time(backend, dev, q, contiguous, null, out, lse,
                                o.withSplit(split(splits[s])), iters);
                        row(batch, n, "dense contig. " + splits[s], other, kvBytes, copy);
                    }
                    k.close();
                    v.close();
                    held.remove(k);
                    held.remove(v);
                    int pages = batch * (n / page);
                    Tensor kp = random(dev, pages, hk, page, d, 13);
                    Tensor vp = random(dev, pages, hk, page, d, 14);
                    held.add(kp);
                    held.add(vp);
                    PagedKvCache paged = PagedKvCache.wrap(kp, vp, null, page, batch, null);
                    shuffledTables(paged, batch, n, page, pages);
                    double pagedMs = time(backend, dev, q, paged, null, out, lse, o, iters);
                    row(batch, n, "dense paged (" + page + ")", pagedMs, kvBytes, copy);
                    System.out.printf(Locale.ROOT, "%-6d %-8d paged / contiguous = %.3f (target <= 1.1)%n", batch, n,
                            pagedMs / dense);
                    if (batch == 1) {
                        Tensor bounds = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, pages, hk, 2, d);
                        held.add(bounds);
                        PagedKvCache withBounds = PagedKvCache.wrap(kp, vp, bounds, page, batch, null);
                        shuffledTables(withBounds, batch, n, page, pages);
                        for (int div : questDivisors) {
                            DecodePattern.Quest quest = DecodePattern.quest(n / div);
                            double questMs = time(backend, dev, q, withBounds, quest, out, lse, o, iters);
                            row(batch, n, "quest 1/" + div + " (fused)", questMs, kvBytes, copy);
                            System.out.printf(Locale.ROOT, "%-6d %-8d dense paged / quest 1/%d = %.2f x (target >= 6 at "
                                    + "128k, 1/16)%n", batch, n, div, pagedMs / questMs);
                        }
                    }
                } finally {
                    held.forEach(Tensor::close);
                }
            }
        }
    }

    private static void row(int batch, int n, String what, double ms, long bytes, double copy) {
        double gbps = bytes / (ms * 1e6);
        System.out.printf(Locale.ROOT, "%-6d %-8d %-22s %10.4f %10.0f %7.1f%%%n", batch, n, what, ms, gbps, 100 * gbps / copy);
    }

    /** Each sequence's pages in a shuffled order of the pool (the bounds, if kept, computed once here). */
    private static void shuffledTables(PagedKvCache cache, int batch, int n, int page, int pages) {
        int[] perm = new int[pages];
        Arrays.setAll(perm, i -> i);
        SplittableRandom r = new SplittableRandom(3);
        for (int i = pages - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int per = n / page;
        for (int b = 0; b < batch; b++) {
            cache.setBlockTable(b, Arrays.copyOfRange(perm, b * per, (b + 1) * per), n);
        }
    }

    /**
     * Median device time of one decode step: the step captured in a CUDA graph on a stream of the
     * caller and replayed between events (so host work between calls is not counted); the host
     * time per direct call is logged next to it.
     */
    private static double time(CudaBackend backend, CudaDevice dev, Tensor q, KvCache cache, DecodePattern.Quest quest,
                               Tensor out, Tensor lse, DecodeOptions o, int iters) {
        double[] ms = new double[iters];
        double[] host = new double[iters];
        Runnable step = () -> {
            if (quest != null) {
                backend.selectAndDecode(q, cache, quest, out, lse, o);
            } else {
                backend.decode(q, cache, (DecodeSelection) null, out, lse, o);
            }
        };
        try (CudaStream stream = new CudaStream(dev); CudaStream.Scope scope = stream.use();
             CudaEvents ev = new CudaEvents(dev)) {
            for (int i = -5; i < iters; i++) {
                long a = System.nanoTime();
                step.run();
                stream.synchronize();
                if (i >= 0) {
                    host[i] = (System.nanoTime() - a) / 1e6;
                }
            }
            dev.makeCurrent();
            Cuda.check(cuStreamBeginCapture(stream.handle(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED),
                    "cuStreamBeginCapture");
            step.run();
            CUgraph graph = new CUgraph();
            Cuda.check(cuStreamEndCapture(stream.handle(), graph), "cuStreamEndCapture");
            CUgraphExec exec = new CUgraphExec();
            Cuda.check(cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
            for (int i = -3; i < iters; i++) {
                ev.start(stream);
                Cuda.check(cuGraphLaunch(exec, stream.handle()), "cuGraphLaunch");
                ev.stop(stream);
                float m = ev.millis();
                if (i >= 0) {
                    ms[i] = m;
                }
            }
            Cuda.check(cuGraphExecDestroy(exec), "cuGraphExecDestroy");
            Cuda.check(cuGraphDestroy(graph), "cuGraphDestroy");
        }
        System.err.printf(Locale.ROOT, "  (%s: host time per direct call %.3f ms, kernels %s)%n",
                quest == null ? "dense" : "quest", CudaServingBench.median(host), CudaBackend.lastKernel());
        return CudaServingBench.median(ms);
    }

    /** Device-to-device copy of 4 GiB, GB/s counting bytes read and written (median). */
    private static double copyBandwidth(CudaDevice dev, int iters) {
        long bytes = 4L << 30;
        try (DeviceBuffer a = DeviceBuffer.scratch(dev, bytes); DeviceBuffer b = DeviceBuffer.scratch(dev, bytes);
             CudaStream s = new CudaStream(dev); CudaEvents ev = new CudaEvents(dev)) {
            double[] gb = new double[Math.min(iters, 10)];
            for (int i = -2; i < gb.length; i++) {
                ev.start(s);
                Cuda.check(cuMemcpyDtoDAsync(b.pointer(), a.pointer(), bytes, s.handle()), "cuMemcpyDtoDAsync");
                ev.stop(s);
                float m = ev.millis();
                if (i >= 0) {
                    gb[i] = 2.0 * bytes / (m * 1e6);
                }
            }
            return CudaServingBench.median(gb);
        } finally {
            dev.releaseCachedMemory();
        }
    }

    /**
     * A device bf16 tensor of uniform values in [-1, 1): a 32 MiB random block uploaded once and
     * repeated across the tensor by device copies.
     */
    private static Tensor random(CudaDevice dev, int b, int h, int s, int d, long seed) {
        Tensor t = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, b, h, s, d, null);
        long bytes = t.spanBytes();
        int blockElems = (int) Math.min(bytes / 2, 16L << 20);
        short[] block = new short[blockElems];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < blockElems; i++) {
            block[i] = DType.floatToBf16((float) (r.nextDouble() * 2 - 1));
        }
        DeviceBuffer buf = (DeviceBuffer) t.deviceMemory();
        buf.copyFrom(java.lang.foreign.MemorySegment.ofArray(block), 0);
        dev.makeCurrent();
        for (long at = 2L * blockElems; at < bytes; at += 2L * blockElems) {
            long n = Math.min(2L * blockElems, bytes - at);
            Cuda.check(cuMemcpyDtoDAsync(buf.pointer(at), buf.pointer(), n, CudaStream.wrap(dev, 0L).handle()), "cuMemcpyDtoDAsync");
        }
        return t;
    }

    /** {@code rule}, {@code rule:MIN:ITEMS}, {@code none} or a fixed chunk length in keys. */
    private static SplitKv split(String s) {
        if (s.equals("rule")) {
            return SplitKv.rule();
        }
        if (s.equals("none")) {
            return SplitKv.none();
        }
        if (s.startsWith("rule:")) {
            String[] f = s.split(":");
            return SplitKv.rule(Integer.parseInt(f[1]), Integer.parseInt(f[2]));
        }
        return SplitKv.fixed(Integer.parseInt(s));
    }

    private static int[] ints(String csv) {
        return Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }
}
