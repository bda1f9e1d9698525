package dev.sparsa.cuda;

import static dev.sparsa.cuda.BenchSupport.backendOrExit;
import static dev.sparsa.cuda.BenchSupport.median;
import static dev.sparsa.cuda.BenchSupport.randomBf16;
import static jcuda.driver.JCudaDriver.CU_MEMHOSTALLOC_PORTABLE;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import dev.sparsa.attention.Attention;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;
import jcuda.Pointer;

/**
 * What a call costs beyond its kernel, on one shape (default: bf16, B=1, H=32, N=32768, D=128, a
 * causal sliding window of 1024 keys, the geometry the backend proposes):
 * <ol>
 *   <li>{@code kernel}: the prepared plan on resident device tensors, CUDA events around each
 *       launch, median;
 *   <li>{@code facade resident}: {@code Attention.forward} on those device tensors (plan cache,
 *       output allocation, launch, wait, closing the output), host clock per call, median;
 *   <li>{@code pinned DMA}: this process's own host-to-device copy of Q, K, V and device-to-host
 *       copy of O from one pinned buffer, CUDA events;
 *   <li>{@code drop-in heap}: {@code Attention.forward} on Java-array tensors (staged in through
 *       pinned buffers, the output copied straight into its page-locked host tensor), closing each
 *       output, per count of copier threads, host clock (call and close), median; the same with the
 *       outputs dropped unclosed; then with a Java-array output given, and native (off-heap) tensors,
 *       staged (a shared arena's: copier threads) and registered in place (a confined arena's, the
 *       only memory the backend hands to the driver by address).
 * </ol>
 * The targets compare the drop-in with {@code kernel + bytes in / h2d + bytes out / d2h} at the
 * pinned bandwidths given by {@code --h2d} and {@code --d2h} (GB/s, measured by PyTorch in the same
 * run; this process's own pinned figures when absent) and the resident facade with the kernel.
 *
 * <p>Usage: {@code ./sparsa run dev.sparsa.cuda.CudaServingBench [--n 32768] [--heads 32] [--window 1024]
 * [--iters 10] [--threads 1,2,4,8] [--h2d GBps] [--d2h GBps]}. Not API: it lives beside the staging,
 * block cache and pinned outputs whose settings it varies.
 */
final class CudaServingBench {
    private CudaServingBench() {
    }

    /**
     * A causal sliding window of {@code w} keys (δ in [0, w − 1]) as a static pattern: full blocks
     * inside, partial ones at the edges (the plan {@code Patterns.slidingWindow(w)} makes).
     */
    record Window(int w) implements Pattern {
        @Override
        public String name() {
            return "window(" + w + ")";
        }

        @Override
        public SparsePlan plan(PlanContext ctx) {
            HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, w - 1));
            int rows = ctx.geometry().tileRows();
            int cols = ctx.geometry().blockCols();
            b.tilesByPredicate(t -> Math.floorDiv(t * rows - (w - 1), cols), t -> ((t + 1) * rows - 1) / cols);
            return SparsePlan.uniform(ctx, b.build(), "window-" + w);
        }
    }

    public static void main(String[] args) {
        int n = 32768;
        int h = 32;
        int w = 1024;
        int iters = 10;
        int[] threads = {1, 2, 4, 8};
        double h2d = Double.NaN;
        double d2h = Double.NaN;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> n = Integer.parseInt(args[++i]);
                case "--heads" -> h = Integer.parseInt(args[++i]);
                case "--window" -> w = Integer.parseInt(args[++i]);
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--threads" -> threads = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--h2d" -> h2d = Double.parseDouble(args[++i]);
                case "--d2h" -> d2h = Double.parseDouble(args[++i]);
                default -> {
                    System.err.println("unknown argument " + args[i] + "; usage: CudaServingBench [--n 32768] [--heads 32] "
                            + "[--window 1024] [--iters 10] [--threads 1,2,4,8] [--h2d GBps] [--d2h GBps]");
                    System.exit(2);
                }
            }
        }
        CudaBackend backend = backendOrExit();
        CudaDevice dev = backend.device();
        int d = 128;
        AttentionShape s = AttentionShape.of(1, h, n, n, d);
        Pattern pattern = new Window(w);
        Options o = Options.causalMask();
        System.err.println("device: " + dev + "; " + Runtime.getRuntime().availableProcessors() + " host processors");
        long t0 = System.nanoTime();
        Tensor q = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 11);
        Tensor k = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 12);
        Tensor v = randomBf16(s.qHeads(), s.queryLength(), s.headDim(), 13);
        System.err.printf(Locale.ROOT, "inputs made in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        long bytesIn = 3 * q.spanBytes();
        long bytesOut = q.spanBytes();
        SparsePlan plan = Attention.plan(q, k, v, pattern, o);
        System.out.printf(Locale.ROOT, "shape B1 H%d N%d D%d bf16, %s causal, geometry %s, kernel %s, in %.1f MB, out %.1f MB%n",
                h, n, d, pattern.name(), plan.geometry(), backend.kernelFor(s, DType.BF16, plan.geometry()).name(),
                bytesIn / 1e6, bytesOut / 1e6);

        double kernel;
        double facade;
        double forwardResident;
        Tensor residentOut;
        try (Tensor dq = CudaTensors.upload(dev, q); Tensor dk = CudaTensors.upload(dev, k);
             Tensor dv = CudaTensors.upload(dev, v);
             Tensor out = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, h, n, d);
             CudaStream stream = new CudaStream(dev);
             PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()));
             CudaEvents ev = new CudaEvents(dev)) {
            for (int i = 0; i < 3; i++) {
                backend.forwardAsync(prepared, dq, dk, dv, out, null, o.run(), stream);
            }
            stream.synchronize();
            double[] ms = new double[Math.max(iters, 20)];
            for (int i = 0; i < ms.length; i++) {
                ev.start(stream);
                backend.forwardAsync(prepared, dq, dk, dv, out, null, o.run(), stream);
                ev.stop(stream);
                ms[i] = ev.millis();
            }
            kernel = median(ms);
            residentOut = out.toHost();
            // backend.forward on resident tensors with the output given: launch, own stream, wait
            for (int i = 0; i < ms.length; i++) {
                long a = System.nanoTime();
                backend.forward(prepared, dq, dk, dv, out, null, o.run());
                ms[i] = (System.nanoTime() - a) / 1e6;
            }
            forwardResident = median(ms);
            // the facade: plan cache, output allocation (block cache), launch, wait, close
            for (int i = 0; i < 3; i++) {
                Attention.forward(dq, dk, dv, pattern, o).close();
            }
            for (int i = 0; i < ms.length; i++) {
                long a = System.nanoTime();
                Tensor r = Attention.forward(dq, dk, dv, pattern, o);
                r.close();
                ms[i] = (System.nanoTime() - a) / 1e6;
            }
            facade = median(ms);
            try (Tensor r = Attention.forward(dq, dk, dv, pattern, o)) {
                check("facade resident", residentOut, r.toHost());
            }
        }
        System.out.printf(Locale.ROOT, "kernel (events)            %9.3f ms%n", kernel);
        System.out.printf(Locale.ROOT, "backend.forward resident   %9.3f ms  (%.3f x kernel)%n", forwardResident, forwardResident / kernel);
        System.out.printf(Locale.ROOT, "facade resident            %9.3f ms  (%.3f x kernel; target <= 1.05)%n", facade, facade / kernel);

        double[] own = pinnedBandwidth(dev, bytesIn, bytesOut, iters);
        System.out.printf(Locale.ROOT, "pinned DMA (this process)  h2d %.1f GB/s, d2h %.1f GB/s%n", own[0], own[1]);
        boolean fromTorch = !Double.isNaN(h2d) && !Double.isNaN(d2h);
        if (!fromTorch) {
            h2d = own[0];
            d2h = own[1];
        }
        double model = kernel + bytesIn / (h2d * 1e6) + bytesOut / (d2h * 1e6);
        System.out.printf(Locale.ROOT, "model: kernel + in/%.1f + out/%.1f GB/s (%s) = %.3f ms%n", h2d, d2h,
                fromTorch ? "PyTorch pinned, same run" : "this process's pinned", model);

        HostStaging staging = dev.staging();
        double best = Double.MAX_VALUE;
        for (int t : threads) {
            staging.setThreads(t);
            double[] ms = new double[iters];
            boolean pinned = false;
            for (int i = -2; i < iters; i++) {
                // the serving loop: call, use, close (the output's pinned block is reused by the next call)
                long a = System.nanoTime();
                Tensor r = Attention.forward(q, k, v, pattern, o);
                long b = System.nanoTime();
                if (i == iters - 1) {
                    check("drop-in heap", residentOut, r);
                    pinned = PinnedOutputs.holds(r.segment());
                }
                long c = System.nanoTime();
                r.close();
                double el = ((b - a) + (System.nanoTime() - c)) / 1e6;
                if (i >= 0) {
                    ms[i] = el;
                }
            }
            double med = median(ms);
            best = Math.min(best, med);
            System.out.printf(Locale.ROOT, "drop-in heap, %d copier threads, output %s, closed  %9.3f ms  (%.3f x model; "
                    + "target <= 1.3)%n", t, pinned ? "pinned" : "on the heap", med, med / model);
        }
        staging.setThreads(threads[threads.length - 1]);
        // the same calls with the outputs dropped unclosed: their blocks come back through the collector
        {
            double[] ms = new double[iters];
            int pinned = 0;
            for (int i = -2; i < iters; i++) {
                long a = System.nanoTime();
                Tensor r = Attention.forward(q, k, v, pattern, o);
                double el = (System.nanoTime() - a) / 1e6;
                if (i >= 0) {
                    ms[i] = el;
                    pinned += PinnedOutputs.holds(r.segment()) ? 1 : 0;
                }
            }
            System.out.printf(Locale.ROOT, "drop-in heap, outputs dropped unclosed  %9.3f ms  (%.3f x model; %d of %d pinned; "
                    + "pinned output memory held %.1f MB, bound %.1f MB)%n", median(ms), median(ms) / model, pinned, iters,
                    dev.pinnedOutputBytes() / 1e6, dev.pinnedOutputs().limit() / 1e6);
        }
        // phases of the drop-in at the last thread count: the staged copies alone
        try (CudaStream stream = new CudaStream(dev)) {
            DeviceBuffer[] bufs = {DeviceBuffer.scratch(dev, q.spanBytes()), DeviceBuffer.scratch(dev, q.spanBytes()),
                DeviceBuffer.scratch(dev, q.spanBytes())};
            double[] up = new double[iters];
            double[] down = new double[iters];
            MemorySegment landing = MemorySegment.ofArray(new short[(int) (bytesOut / 2)]);
            for (int i = 0; i < iters; i++) {
                long a = System.nanoTime();
                staging.upload(java.util.List.of(new HostStaging.Piece(q.segment(), bufs[0].pointer()),
                        new HostStaging.Piece(k.segment(), bufs[1].pointer()),
                        new HostStaging.Piece(v.segment(), bufs[2].pointer())), stream);
                stream.synchronize();
                up[i] = (System.nanoTime() - a) / 1e6;
                a = System.nanoTime();
                staging.download(java.util.List.of(new HostStaging.Piece(landing, bufs[0].pointer())), stream);
                down[i] = (System.nanoTime() - a) / 1e6;
            }
            for (DeviceBuffer b : bufs) {
                b.close();
            }
            System.out.printf(Locale.ROOT, "staged upload of Q,K,V  %9.3f ms (%.1f GB/s); staged download of O %9.3f ms (%.1f GB/s)%n",
                    median(up), bytesIn / (median(up) * 1e6), median(down), bytesOut / (median(down) * 1e6));
        }
        // the drop-in without the facade's output allocation: heap tensors, the output given
        {
            Tensor given = Tensor.allocate(DType.BF16, Layout.BHSD, 1, h, n, d);
            double[] ms = new double[iters];
            try (PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()))) {
                for (int i = -2; i < iters; i++) {
                    long a = System.nanoTime();
                    backend.forward(prepared, q, k, v, given, null, o.run());
                    double el = (System.nanoTime() - a) / 1e6;
                    if (i >= 0) {
                        ms[i] = el;
                    }
                }
            }
            check("heap, output given", residentOut, given);
            System.out.printf(Locale.ROOT, "heap tensors, output given %9.3f ms  (%.3f x model)%n", median(ms), median(ms) / model);
        }
        // staged: a shared arena's memory (copier threads read it); registered: a confined arena's (the
        // only native memory the backend hands to the driver by address, as no other thread can free it)
        for (boolean register : new boolean[] {false, true}) {
            staging.setRegisterNative(register);
            try (Arena arena = register ? Arena.ofConfined() : Arena.ofShared()) {
                Tensor nq = Tensor.allocate(arena, DType.BF16, Layout.BHSD, 1, h, n, d);
                Tensor nk = Tensor.allocate(arena, DType.BF16, Layout.BHSD, 1, h, n, d);
                Tensor nv = Tensor.allocate(arena, DType.BF16, Layout.BHSD, 1, h, n, d);
                nq.segment().copyFrom(q.segment());
                nk.segment().copyFrom(k.segment());
                nv.segment().copyFrom(v.segment());
                Tensor nout = Tensor.allocate(arena, DType.BF16, Layout.BHSD, 1, h, n, d);
                double[] ms = new double[iters];
                try (PreparedPlan prepared = backend.prepare(plan, Device.cuda(dev.ordinal()))) {
                    for (int i = -2; i < iters; i++) {
                        long a = System.nanoTime();
                        backend.forward(prepared, nq, nk, nv, nout, null, o.run());
                        double el = (System.nanoTime() - a) / 1e6;
                        if (i >= 0) {
                            ms[i] = el;
                        }
                    }
                }
                check("native " + (register ? "registered" : "staged"), residentOut, nout);
                double med = median(ms);
                System.out.printf(Locale.ROOT, "native segments, %-10s %9.3f ms  (%.3f x model)%n",
                        register ? "registered" : "staged", med, med / model);
            }
        }
        staging.setRegisterNative(false);
        System.out.printf(Locale.ROOT, "summary: kernel %.3f ms; facade resident %.3f x kernel (target <= 1.05); drop-in heap best %.3f ms"
                + " = %.3f x model %.3f ms (target <= 1.3)%n", kernel, facade / kernel, best, best / model, model);
    }

    private static void check(String what, Tensor expected, Tensor got) {
        if (MemorySegment.mismatch(expected.segment(), 0, expected.spanBytes(), got.segment(), 0, got.spanBytes()) != -1) {
            throw new IllegalStateException(what + ": output differs from the resident kernel's");
        }
    }

    /** Host-to-device of {@code in} bytes and device-to-host of {@code out} bytes from pinned memory, GB/s (median). */
    private static double[] pinnedBandwidth(CudaDevice dev, long in, long out, int iters) {
        dev.makeCurrent();
        Pointer host = new Pointer();
        Cuda.check(cuMemHostAlloc(host, in, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc");
        try (DeviceBuffer buf = DeviceBuffer.scratch(dev, in); CudaStream stream = new CudaStream(dev);
             CudaEvents ev = new CudaEvents(dev)) {
            double[] up = new double[iters];
            double[] down = new double[iters];
            for (int i = -1; i < iters; i++) {
                ev.start(stream);
                Cuda.check(cuMemcpyHtoDAsync(buf.pointer(), host, in, stream.handle()), "cuMemcpyHtoDAsync");
                ev.stop(stream);
                float a = ev.millis();
                ev.start(stream);
                Cuda.check(cuMemcpyDtoHAsync(host, buf.pointer(), out, stream.handle()), "cuMemcpyDtoHAsync");
                ev.stop(stream);
                float b = ev.millis();
                if (i >= 0) {
                    up[i] = in / (a * 1e6);
                    down[i] = out / (b * 1e6);
                }
            }
            return new double[] {median(up), median(down)};
        } finally {
            Cuda.check(cuMemFreeHost(host), "cuMemFreeHost");
        }
    }
}
