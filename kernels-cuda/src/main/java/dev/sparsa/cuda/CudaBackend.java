package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import dev.sparsa.attention.AttentionShape;
import dev.sparsa.attention.Options;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.BackendUnavailableException;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.plan.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;
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
 * Host tensors in and out work as a drop-in (copied to and from the device per call); {@link
 * #forward(SparsePlan, CudaTensor, CudaTensor, CudaTensor, CudaTensor, CudaTensor, Options)} takes
 * device tensors and copies nothing. Plans are uploaded once and cached, weakly keyed by the plan,
 * and freed when the plan is collected. Thread-safe: every call binds the device's primary context
 * to its thread and runs on its own stream.
 */
public final class CudaBackend implements AttentionBackend {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final Object SHARED_LOCK = new Object();
    private static volatile Probe shared;

    private final Supplier<CudaRuntime> opener;
    private volatile Probe probe;
    private final Map<SparsePlan, DevicePlan> plans = new WeakHashMap<>();

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
     * Host tensors in, host tensors out: copies Q, K, V to the device, runs the plan and copies the
     * output (and LSE) back. See {@link AttentionBackend#forward}.
     *
     * @throws IllegalArgumentException for mismatched arguments, a geometry other than 64×64 and
     *     128×128, a head dim outside {@link KernelChoice#HEAD_DIMS}, a (headDim, valueDim) pair outside
     *     {@link KernelChoice#MIXED_DIMS}, or, for
     *     bf16/f16, strides that are not multiples of 8 elements
     * @throws BackendUnavailableException if no usable device is here
     * @throws CudaException naming the driver call, the kernel and the CUDA error
     */
    @Override
    public void forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Options options) {
        AttentionShape s = ForwardArguments.validate(plan, q, k, v, out, lse, options);
        CudaRuntime rt = runtime();
        KernelChoice kc = KernelChoice.of(s, q.dtype(), plan.geometry(), rt.device().maxSharedPerBlockOptin(),
                rt.device().computeCapability());
        if (kc.tensorCores()) {
            requireStrides("q", q.strides());
            requireStrides("k", k.strides());
            requireStrides("v", v.strides());
        }
        requireEvenStrides("out", out.strides());
        if (s.queryLength() == 0) {
            return;
        }
        CudaDevice dev = rt.device();
        try (CudaTensor dq = CudaTensor.upload(dev, q);
             CudaTensor dk = CudaTensor.upload(dev, k);
             CudaTensor dv = CudaTensor.upload(dev, v);
             CudaTensor dOut = CudaTensor.upload(dev, out);
             CudaTensor dLse = lse == null ? null : CudaTensor.upload(dev, lse)) {
            run(rt, kc, plan, s, dq, dk, dv, dOut, dLse, options, null);
            dOut.download(out);
            if (lse != null) {
                dLse.download(lse);
            }
        }
    }

    /**
     * Device tensors in and out: no copies. Q, K, V are {@code [batch, heads, seq, dim]} device
     * tensors of one dtype, {@code out} f32 or that dtype, {@code lse} an f32 {@code [batch, qHeads,
     * queryLength, 1]} device tensor or null. Returns once the kernels have finished.
     *
     * @throws IllegalArgumentException as the host variant, and for {@code validateFinite} (device
     *     tensors are not scanned)
     */
    public void forward(SparsePlan plan, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor out, CudaTensor lse,
                        Options options) {
        AttentionShape s = validateDevice(plan, q, k, v, out, lse, options);
        CudaRuntime rt = runtime();
        KernelChoice kc = KernelChoice.of(s, q.dtype(), plan.geometry(), rt.device().maxSharedPerBlockOptin(),
                rt.device().computeCapability());
        requireDeviceAlignment(kc, q, k, v, out);
        if (s.queryLength() == 0) {
            return;
        }
        run(rt, kc, plan, s, q, k, v, out, lse, options, null);
    }

    /**
     * Queues the kernels of {@link #forward(SparsePlan, CudaTensor, CudaTensor, CudaTensor, CudaTensor,
     * CudaTensor, Options)} on {@code stream} and returns without waiting (for callers that pipeline
     * work or time kernels with events). The tensors must stay open until the stream is synchronized;
     * errors of the kernels themselves surface at that synchronization. Plans whose rows need an LSE
     * merge allocate scratch and wait for the stream before returning.
     */
    public void forwardAsync(SparsePlan plan, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor out, CudaTensor lse,
                             Options options, CudaStream stream) {
        if (stream == null) {
            throw new IllegalArgumentException("stream: must not be null");
        }
        AttentionShape s = validateDevice(plan, q, k, v, out, lse, options);
        CudaRuntime rt = runtime();
        KernelChoice kc = KernelChoice.of(s, q.dtype(), plan.geometry(), rt.device().maxSharedPerBlockOptin(),
                rt.device().computeCapability());
        requireDeviceAlignment(kc, q, k, v, out);
        if (s.queryLength() > 0) {
            run(rt, kc, plan, s, q, k, v, out, lse, options, stream);
        }
    }

    private static AttentionShape validateDevice(SparsePlan plan, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor out,
                                                 CudaTensor lse, Options options) {
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        if (q == null || k == null || v == null || out == null) {
            throw new IllegalArgumentException("q, k, v, out: must not be null");
        }
        if (options.validateFinite()) {
            throw new IllegalArgumentException("options: validateFinite scans host tensors; device tensors are not scanned");
        }
        if (k.batch() != q.batch() || v.batch() != q.batch() || v.heads() != k.heads() || v.seqLen() != k.seqLen()
                || k.dim() != q.dim()) {
            throw new IllegalArgumentException("q, k, v: shapes do not agree: " + q + ", " + k + ", " + v);
        }
        AttentionShape s = new AttentionShape(q.batch(), q.heads(), k.heads(), q.seqLen(), k.seqLen(), q.dim(), v.dim());
        if (!s.equals(plan.shape())) {
            throw new IllegalArgumentException("plan: built for " + plan.shape() + " but the tensors have " + s);
        }
        if (k.dtype() != q.dtype() || v.dtype() != q.dtype()) {
            throw new IllegalArgumentException("dtype: q, k and v must share one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        if (out.batch() != s.batch() || out.heads() != s.qHeads() || out.seqLen() != s.queryLength() || out.dim() != s.valueDim()) {
            throw new IllegalArgumentException("out: expected shape [" + s.batch() + ", " + s.qHeads() + ", " + s.queryLength()
                    + ", " + s.valueDim() + "], got " + Arrays.toString(out.shape()));
        }
        if (out.dtype() != DType.F32 && out.dtype() != q.dtype()) {
            throw new IllegalArgumentException("out: dtype must be f32 or the input's " + q.dtype() + ", got " + out.dtype());
        }
        if (lse != null && (lse.dtype() != DType.F32 || lse.batch() != s.batch() || lse.heads() != s.qHeads()
                || lse.seqLen() != s.queryLength() || lse.dim() != 1)) {
            throw new IllegalArgumentException("lse: expected f32 [" + s.batch() + ", " + s.qHeads() + ", " + s.queryLength()
                    + ", 1], got " + lse.dtype() + " " + Arrays.toString(lse.shape()));
        }
        for (Object[] t : new Object[][] {{"q", q}, {"k", k}, {"v", v}, {"out", out}}) {
            CudaTensor c = (CudaTensor) t[1];
            if (c.stride(3) != 1 && c.dim() != 1) {
                throw new IllegalArgumentException(t[0] + ": the last axis must have stride 1, got strides "
                        + Arrays.toString(c.strides()));
            }
        }
        return s;
    }

    private static void requireDeviceAlignment(KernelChoice kc, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor out) {
        if (kc.tensorCores()) {
            requireStrides("q", q.strides());
            requireStrides("k", k.strides());
            requireStrides("v", v.strides());
            for (Object[] t : new Object[][] {{"q", q}, {"k", k}, {"v", v}}) {
                if (((CudaTensor) t[1]).byteOffset() % 16 != 0) {
                    throw new IllegalArgumentException(t[0] + ": a bf16/f16 view must start at a 16-byte boundary, got byte offset "
                            + ((CudaTensor) t[1]).byteOffset());
                }
            }
        }
        requireEvenStrides("out", out.strides());
        if (out.byteOffset() % (2L * out.dtype().byteSize()) != 0) {
            throw new IllegalArgumentException("out: the view must start at an even element, got byte offset " + out.byteOffset());
        }
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

    /** The plan's device copy, uploaded on first use and freed when the plan is collected. */
    private DevicePlan devicePlan(CudaRuntime rt, SparsePlan plan) {
        synchronized (plans) {
            DevicePlan dp = plans.get(plan);
            if (dp == null) {
                int tileRows = plan.geometry().tileRows();
                dp = tileRows == 64 ? new DevicePlan(rt.device(), plan, 64) : new DevicePlan(rt.device(), plan, tileRows, 64);
                plans.put(plan, dp);
                DevicePlan toFree = dp;
                CLEANER.register(plan, toFree::close);
            }
            return dp;
        }
    }

    /** Number of plans currently held on the device (for tests and tools). */
    public int cachedPlans() {
        synchronized (plans) {
            return plans.size();
        }
    }

    private void run(CudaRuntime rt, KernelChoice kc, SparsePlan plan, AttentionShape s, CudaTensor q, CudaTensor k,
                     CudaTensor v, CudaTensor out, CudaTensor lse, Options options, CudaStream given) {
        CudaDevice dev = rt.device();
        dev.makeCurrent();
        DevicePlan dp = devicePlan(rt, plan);
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
        CUdeviceptr lsePtr = lse == null ? none : lse.pointer();
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
                Pointer params = Pointer.to(Pointer.to(q.pointer()), Pointer.to(k.pointer()), Pointer.to(v.pointer()),
                        Pointer.to(out.pointer()), Pointer.to(lsePtr), Pointer.to(so), Pointer.to(sl),
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
                Pointer params = Pointer.to(Pointer.to(so), Pointer.to(sl), Pointer.to(out.pointer()), Pointer.to(lsePtr),
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
            Reference.reachabilityFence(plan);
        }
    }
}
