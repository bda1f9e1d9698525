package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.BackendUnavailableException;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;

/**
 * The CUDA backend ({@code "cuda"}, priority 10): FlashAttention-2-style kernels over any {@link
 * SparsePlan} of geometry 64×64 or 128×128, head dims 64, 80, 96, 128 and 256 (value dim equal to
 * the head dim) and the (head, value) dim pairs of {@link KernelChoice#MIXED_DIMS}. bf16 and f16
 * run on tensor cores with f32 accumulation; f32 runs an exact
 * CUDA-core (FMA) kernel. Output f32 or the input dtype; LSE in f32.
 *
 * <p>Construction is cheap and never fails. {@link #availability()} probes once (JCuda's natives, the
 * driver, a device of sm_80 or newer, loading the fatbin) and caches the answer with its reason.
 *
 * <p>{@link #prepare(SparsePlan, Device)} uploads a plan to one device ({@code cuda:N}); every
 * later {@code forward} with that prepared plan reuses it. Device tensors ({@link CudaTensors}) run
 * without copies; host tensors are copied in and the output copied back (the output is never
 * uploaded). {@link #forwardAsync} queues the kernels on a caller's {@link CudaStream}. Thread-safe:
 * every call binds the device's primary context to its thread and runs on its own stream.
 */
public final class CudaBackend implements AttentionBackend {
    private static final Object SHARED_LOCK = new Object();
    private static volatile Probe shared;

    private final Supplier<CudaRuntime> opener;
    private volatile Probe probe;
    /** Runtimes of devices other than the default one, opened on first use. */
    private final Map<Integer, CudaRuntime> others = new HashMap<>();

    /** The outcome of opening the runtime: a runtime, or the reason there is none. */
    private record Probe(CudaRuntime runtime, Availability availability) {
    }

    /** The service-loader constructor: cheap, touches no JCuda class. */
    public CudaBackend() {
        this.opener = null;
    }

    /** A backend whose runtime comes from {@code opener} (tests inject failures here). */
    CudaBackend(Supplier<CudaRuntime> opener) {
        this.opener = opener;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 10;
    }

    @Override
    public Availability availability() {
        return probe().availability();
    }

    private Probe probe() {
        Probe p = probe;
        if (p != null) {
            return p;
        }
        if (opener == null) {
            // one process-wide probe for every service-loaded instance
            synchronized (SHARED_LOCK) {
                if (shared == null) {
                    shared = open(CudaRuntime::open);
                }
                probe = shared;
            }
        } else {
            synchronized (this) {
                if (probe == null) {
                    probe = open(opener);
                }
            }
        }
        return probe;
    }

    private static Probe open(Supplier<CudaRuntime> opener) {
        if (Boolean.getBoolean("sparsa.cuda.disabled")) {
            return new Probe(null, Availability.no("disabled by -Dsparsa.cuda.disabled=true"));
        }
        try {
            CudaRuntime rt = opener.get();
            return new Probe(rt, Availability.yes(rt.device() + ", fatbin " + Fatbin.manifest().getOrDefault("nvcc", "?")));
        } catch (UnsatisfiedLinkError e) {
            return new Probe(null, Availability.no("JCuda's native library or the CUDA driver (libcuda) could not be loaded: "
                    + linkFailure(e.getMessage())
                    + " (needs an NVIDIA driver R580+ and linux-x86_64, windows-x86_64 or another JCuda platform)"));
        } catch (NoClassDefFoundError e) {
            return new Probe(null, Availability.no("JCuda could not be initialised (its native library failed to load earlier): "
                    + e.getMessage()));
        } catch (CudaException e) {
            String hint = switch (e.errorName()) {
                case "CUDA_ERROR_NO_DEVICE" -> "no CUDA device is visible";
                case "CUDA_ERROR_INSUFFICIENT_DRIVER", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION" ->
                        "the driver is too old for kernels built with nvcc 13 (needs R580 or newer)";
                case "CUDA_ERROR_NO_BINARY_FOR_GPU" -> "the fatbin has no code for this GPU (it targets sm_80 and newer)";
                default -> "the CUDA driver refused";
            };
            return new Probe(null, Availability.no(hint + ": " + e.getMessage()));
        } catch (RuntimeException e) {
            return new Probe(null, Availability.no(e.getClass().getSimpleName() + ": " + e.getMessage()));
        }
    }

    /**
     * The one line of JCuda's multi-line loader message that says what is missing (it nests the
     * stack traces of each way it tried), e.g. {@code libcuda.so.1: cannot open shared object file}.
     */
    static String linkFailure(String message) {
        if (message == null) {
            return "no message";
        }
        String[] lines = message.split("\\R");
        for (int i = lines.length - 1; i >= 0; i--) {
            String line = lines[i].trim();
            if (line.startsWith("java.lang.UnsatisfiedLinkError:") && !line.contains("java.library.path")) {
                return line.substring("java.lang.UnsatisfiedLinkError:".length()).trim();
            }
        }
        return lines[0].trim();
    }

    /**
     * The device this backend runs on, for allocating {@link CudaTensor}s.
     *
     * @throws BackendUnavailableException with the reason when the backend is unavailable
     */
    public CudaDevice device() {
        return runtime().device();
    }

    private CudaRuntime runtime() {
        Probe p = probe();
        if (p.runtime() == null) {
            throw new BackendUnavailableException("cuda: " + p.availability().reason());
        }
        return p.runtime();
    }

    /**
     * The runtime of {@code device}: the default one, or another CUDA device of this machine opened
     * on first use.
     *
     * @throws IllegalArgumentException if the device is not a CUDA device of this machine
     */
    private CudaRuntime runtime(Device device) {
        CudaRuntime def = runtime();
        if (device == null || !device.kind().equals("cuda")) {
            throw new IllegalArgumentException("device: the cuda backend runs on cuda:N devices, got " + device);
        }
        if (device.ordinal() == def.device().ordinal()) {
            return def;
        }
        synchronized (others) {
            CudaRuntime rt = others.get(device.ordinal());
            if (rt == null) {
                rt = CudaRuntime.open(device.ordinal());
                others.put(device.ordinal(), rt);
            }
            return rt;
        }
    }

    /** The CUDA device {@code device} names, opened if needed (for allocating {@link CudaTensors}). */
    public CudaDevice device(Device device) {
        return runtime(device).device();
    }

    @Override
    public boolean runsOn(Device device) {
        if (device == null || !device.kind().equals("cuda")) {
            return false;
        }
        Probe p = probe();
        return p.runtime() != null && device.ordinal() < p.runtime().device().deviceCount();
    }

    @Override
    public Device defaultDevice() {
        return Device.cuda(runtime().device().ordinal());
    }

    /**
     * 128×128 where the Hopper (wgmma) kernel takes the shape and dtype (bf16/f16, head dim 128, on
     * compute capability 9.0), else 64×64.
     */
    @Override
    public TileGeometry proposedGeometry(AttentionShape shape, DType dtype) {
        Probe p = probe();
        if (p.runtime() == null || shape == null || dtype == null) {
            return TileGeometry.DEFAULT;
        }
        CudaDevice d = p.runtime().device();
        try {
            TileGeometry big = KernelChoice.GEOMETRIES.get(1);
            if (KernelChoice.of(shape, dtype, big, d.maxSharedPerBlockOptin(), d.computeCapability()).hopper()) {
                return big;
            }
        } catch (IllegalArgumentException e) {
            // not a shape the big tile runs: the default
        }
        return TileGeometry.DEFAULT;
    }

    /**
     * The kernels' cost model from the H200 figures of docs/PERFORMANCE.md ({@code CudaCostModel}),
     * over this device's multiprocessors (132 where no device is found).
     */
    @Override
    public KernelCostModel costModel() {
        Probe p = probe();
        if (p.runtime() == null) {
            return new CudaCostModel(132, KernelChoice.HOPPER);
        }
        CudaDevice d = p.runtime().device();
        return new CudaCostModel(d.multiprocessors(), d.computeCapability());
    }

    @Override
    public Tensor allocate(Device device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        if (device != null && device.isHost()) {
            return Tensor.allocate(dtype, layout, batch, heads, seq, dim);
        }
        return CudaTensors.allocate(device(device), dtype, layout, batch, heads, seq, dim);
    }

    @Override
    public boolean supports(TileGeometry geometry) {
        return KernelChoice.GEOMETRIES.contains(geometry);
    }

    @Override
    public String supportedGeometries() {
        return "64x64 and 128x128";
    }

    /**
     * Why a call of this shape, dtype and geometry is refused (geometry other than 64×64/128×128,
     * head dim outside {@link KernelChoice#HEAD_DIMS}, a valueDim != headDim outside {@link
     * KernelChoice#MIXED_DIMS}, or more shared memory
     * than the device offers), or null when it runs.
     */
    @Override
    public String refusal(AttentionShape shape, DType dtype, TileGeometry geometry) {
        Probe p = probe();
        int smem = p.runtime() == null ? 0 : p.runtime().device().maxSharedPerBlockOptin();
        int cc = p.runtime() == null ? 0 : p.runtime().device().computeCapability();
        try {
            KernelChoice.of(shape, dtype, geometry, smem, cc);
            return null;
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    /**
     * The kernel this backend runs for a call of this shape, dtype and geometry on its device (for
     * tests and the benchmark's log).
     *
     * @throws IllegalArgumentException as {@link KernelChoice#of(AttentionShape, DType, TileGeometry, int, int)}
     * @throws BackendUnavailableException if no usable device is here
     */
    KernelChoice kernelFor(AttentionShape shape, DType dtype, TileGeometry geometry) {
        CudaDevice d = runtime().device();
        return KernelChoice.of(shape, dtype, geometry, d.maxSharedPerBlockOptin(), d.computeCapability());
    }

    /**
     * Uploads the plan to {@code device} (its layouts, log-weights and work lists); the returned
     * plan holds that memory until closed (or collected).
     *
     * @throws IllegalArgumentException if the device is not a CUDA device here or the geometry is not
     *     64×64 or 128×128
     * @throws BackendUnavailableException if no usable device is here
     */
    @Override
    public PreparedPlan prepare(SparsePlan plan, Device device) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (!supports(plan.geometry())) {
            throw new IllegalArgumentException("geometry: the cuda backend runs " + supportedGeometries() + ", got "
                    + plan.geometry());
        }
        CudaRuntime rt = runtime(device);
        rt.device().makeCurrent();
        int tileRows = plan.geometry().tileRows();
        DevicePlan dp = tileRows == 64 ? new DevicePlan(rt.device(), plan, 64) : new DevicePlan(rt.device(), plan, tileRows, 64);
        return new CudaPreparedPlan(plan, this, Device.cuda(rt.device().ordinal()), rt, dp);
    }

    /**
     * Runs a prepared plan. Device tensors (on the plan's device) are read and written in place;
     * host tensors are copied in, and the output (and LSE) copied back. See {@link
     * AttentionBackend#forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor, Tensor, RunOptions)}.
     * Returns once the kernels have finished.
     *
     * @throws IllegalArgumentException for mismatched arguments, a head dim outside {@link
     *     KernelChoice#HEAD_DIMS}, a (headDim, valueDim) pair outside {@link KernelChoice#MIXED_DIMS},
     *     or, for bf16/f16, strides that are not multiples of 8 elements
     * @throws BackendUnavailableException if no usable device is here
     * @throws CudaException naming the driver call, the kernel and the CUDA error
     */
    @Override
    public void forward(PreparedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                        RunOptions options) {
        Call c = check(prepared, q, k, v, out, lse, options);
        if (c.shape().queryLength() == 0) {
            return;
        }
        if (!c.host()) {
            run(c, q, k, v, out, lse, options, null);
            return;
        }
        CudaDevice dev = c.plan().runtime().device();
        // host tensors: inputs copied in (in their own strides); the output is allocated, not uploaded
        try (Tensor dq = CudaTensors.upload(dev, q);
             Tensor dk = CudaTensors.upload(dev, k);
             Tensor dv = CudaTensors.upload(dev, v);
             // NaN-filled: the kernels write every row, and a row one failed to write can never pass as zero
             Tensor dOut = CudaTensors.allocate(dev, out.dtype(), Layout.BHSD, out.batch(), out.heads(), out.seqLen(),
                     out.dim(), (byte) 0xFF);
             Tensor dLse = lse == null ? null : CudaTensors.allocate(dev, DType.F32, Layout.BHSD, lse.batch(), lse.heads(),
                     lse.seqLen(), 1, (byte) 0xFF)) {
            run(c, dq, dk, dv, dOut, dLse, options, null);
            Tensor.copy(dOut, out);
            if (lse != null) {
                Tensor.copy(dLse, lse);
            }
        }
    }

    /**
     * Queues the kernels of a prepared plan on {@code stream} for device tensors and returns without
     * waiting (for callers that pipeline work or time kernels with events). The tensors must stay
     * open until the stream is synchronized; errors of the kernels themselves surface at that
     * synchronization. Plans whose rows need an LSE merge allocate scratch and wait for the stream
     * before returning.
     *
     * @throws IllegalArgumentException as {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor,
     *     Tensor, RunOptions)}, and for host tensors
     */
    public void forwardAsync(PreparedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                             RunOptions options, CudaStream stream) {
        if (stream == null) {
            throw new IllegalArgumentException("stream: must not be null");
        }
        Call c = check(prepared, q, k, v, out, lse, options);
        if (c.host()) {
            throw new IllegalArgumentException("q: forwardAsync takes device tensors (CudaTensors), got host tensors");
        }
        if (c.shape().queryLength() > 0) {
            run(c, q, k, v, out, lse, options, stream);
        }
    }

    /** A validated call: the prepared plan, its shape, the kernel, and whether the tensors are on the host. */
    private record Call(CudaPreparedPlan plan, AttentionShape shape, KernelChoice kernel, boolean host) {
    }

    private Call check(PreparedPlan prepared, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        Device where = ForwardArguments.device(q, k, v, out, lse);
        if (!where.isHost() && !where.kind().equals("cuda")) {
            throw new IllegalArgumentException("device: the cuda backend reads host or cuda tensors, these are on " + where);
        }
        CudaPreparedPlan plan = ForwardArguments.prepared(prepared, name(), CudaPreparedPlan.class, where);
        AttentionShape s = ForwardArguments.validate(plan.plan(), q, k, v, out, lse, options);
        CudaDevice d = plan.runtime().device();
        KernelChoice kc = KernelChoice.of(s, q.dtype(), plan.plan().geometry(), d.maxSharedPerBlockOptin(),
                d.computeCapability());
        if (kc.tensorCores()) {
            requireStrides("q", q.strides());
            requireStrides("k", k.strides());
            requireStrides("v", v.strides());
        }
        requireEvenStrides("out", out.strides());
        if (!where.isHost()) {
            String[] names = {"q", "k", "v", "out", "lse"};
            Tensor[] ts = {q, k, v, out, lse};
            for (int i = 0; i < ts.length; i++) {
                if (ts[i] != null) {
                    CudaTensors.buffer(names[i], ts[i]);
                }
            }
            if (kc.tensorCores()) {
                for (int i = 0; i < 3; i++) {
                    if (ts[i].byteOffset() % 16 != 0) {
                        throw new IllegalArgumentException(names[i] + ": a bf16/f16 view must start at a 16-byte boundary, "
                                + "got byte offset " + ts[i].byteOffset());
                    }
                }
            }
            if (out.byteOffset() % (2L * out.dtype().byteSize()) != 0) {
                throw new IllegalArgumentException("out: the view must start at an even element, got byte offset "
                        + out.byteOffset());
            }
        }
        return new Call(plan, s, kc, where.isHost());
    }

    private static void requireStrides(String name, long[] strides) {
        for (int i = 0; i < 3; i++) {
            if (strides[i] % 8 != 0) {
                throw new IllegalArgumentException(name + ": the CUDA tensor-core kernels load 16-byte rows; batch, head and "
                        + "sequence strides must be multiples of 8 elements, got " + Arrays.toString(strides));
            }
        }
    }

    private static void requireEvenStrides(String name, long[] strides) {
        for (int i = 0; i < 3; i++) {
            if (strides[i] % 2 != 0) {
                throw new IllegalArgumentException(name + ": the CUDA kernels store element pairs; batch, head and sequence "
                        + "strides must be even, got " + Arrays.toString(strides));
            }
        }
    }

    /** Device pointer of element (0, 0, 0, 0) of a device tensor. */
    private static CUdeviceptr pointer(Tensor t) {
        return CudaTensors.buffer("tensor", t).pointer(t.byteOffset());
    }

    private void run(Call c, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options,
                     CudaStream given) {
        CudaRuntime rt = c.plan().runtime();
        KernelChoice kc = c.kernel();
        SparsePlan plan = c.plan().plan();
        AttentionShape s = c.shape();
        CudaDevice dev = rt.device();
        dev.makeCurrent();
        DevicePlan dp = c.plan().devicePlan();
        DevicePlan.WorkList work = dp.workList(kc.rows());
        int outKind = out.dtype() == DType.F32 ? 0 : out.dtype() == DType.F16 ? 1 : 2;
        long[] scalars = {
            q.stride(0), q.stride(1), q.stride(2),
            k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2),
            out.stride(0), out.stride(1), out.stride(2),
            lse == null ? 0 : lse.stride(0), lse == null ? 0 : lse.stride(1), lse == null ? 0 : lse.stride(2),
            s.qHeads(), s.groupSize(), s.queryLength(), s.keyLength(), plan.geometry().blockCols(), outKind, s.valueDim(),
            Double.doubleToRawLongBits(options.scaleFor(s.headDim())), Double.doubleToRawLongBits(options.softCap())
        };
        CUdeviceptr none = new CUdeviceptr();
        CUdeviceptr lsePtr = lse == null ? none : pointer(lse);
        long entries = dp.scratchEntries();
        DeviceBuffer scratchO = entries > 0 ? new DeviceBuffer(dev, entries * s.valueDim() * 4L) : null;
        DeviceBuffer scratchLse = entries > 0 ? new DeviceBuffer(dev, entries * 4L) : null;
        CudaStream stream = given != null ? given : new CudaStream(dev);
        try {
            CUdeviceptr so = scratchO == null ? none : scratchO.pointer();
            CUdeviceptr sl = scratchLse == null ? none : scratchLse.pointer();
            if (work.items() > 0) {
                CUfunction f = rt.module().function(kc.name(), kc.sharedBytes());
                // the Hopper kernel is persistent: one CTA per multiprocessor walks the work list (its last
                // parameter is the item count); the others take one CTA per work item
                int grid = kc.hopper() ? Math.min(work.items(), dev.multiprocessors()) : work.items();
                Pointer params = Pointer.to(Pointer.to(pointer(q)), Pointer.to(pointer(k)), Pointer.to(pointer(v)),
                        Pointer.to(pointer(out)), Pointer.to(lsePtr), Pointer.to(so), Pointer.to(sl),
                        Pointer.to(dp.ints().pointer()), Pointer.to(dp.floats().pointer()),
                        Pointer.to(work.buffer().pointer()), Pointer.to(scalars), Pointer.to(new int[] {work.items()}));
                Cuda.check(cuLaunchKernel(f, grid, 1, 1, kc.threads(), 1, 1, kc.sharedBytes(), stream.handle(),
                        params, null), "cuLaunchKernel", kc.name());
            }
            if (dp.mergeSlices() > 0) {
                String merge = "sparsa_merge";
                if (dp.mergeSlices() > 65535) {
                    throw new IllegalArgumentException("plan: " + dp.mergeSlices() + " slices need an LSE merge; the CUDA "
                            + "backend merges at most 65535 per call");
                }
                CUfunction f = rt.module().function(merge, 0);
                Pointer params = Pointer.to(Pointer.to(so), Pointer.to(sl), Pointer.to(pointer(out)), Pointer.to(lsePtr),
                        Pointer.to(dp.ints().pointer()), Pointer.to(dp.mergeWork().pointer()), Pointer.to(scalars));
                Cuda.check(cuLaunchKernel(f, (s.queryLength() + 7) / 8, dp.mergeSlices(), 1, 256, 1, 1, 0, stream.handle(),
                        params, null), "cuLaunchKernel", merge);
            }
            if (given == null || scratchO != null) {
                stream.synchronize(kc.name());
            }
        } finally {
            if (given == null) {
                stream.close();
            }
            if (scratchO != null) {
                scratchO.close();
            }
            if (scratchLse != null) {
                scratchLse.close();
            }
            Reference.reachabilityFence(c.plan());
        }
    }
}
