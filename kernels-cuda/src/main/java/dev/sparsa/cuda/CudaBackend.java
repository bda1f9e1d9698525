package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.BackendUnavailableException;
import dev.sparsa.backend.DecodeArguments;
import dev.sparsa.backend.DecodeShape;
import dev.sparsa.backend.EstimatedPlan;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
 * driver, a device of sm_80 or newer, loading the kernel images) and caches the answer with its reason.
 *
 * <p>{@link #prepare(SparsePlan, Device)} uploads a plan to one device ({@code cuda:N}); every
 * later {@code forward} with that prepared plan reuses it. Device tensors ({@link CudaTensors}) run
 * without copies; host tensors are copied in through pinned buffers and the output copied back (the
 * output is never uploaded). Outputs the backend allocates for host calls ({@link #allocateOutput},
 * which the facade uses) are host tensors over page-locked memory that the copy writes directly:
 * closing one gives its memory back at once, and one never closed gives it back when collected; the
 * pinned memory so held is bounded ({@code -Dsparsa.cuda.pinnedOutputBytes}), heap tensors beyond
 * it. A caller's stream ({@link CudaStream#use()}, {@link #forwardAsync}) takes
 * the work instead of the backend's own. Thread-safe: every call binds the device's primary context
 * to its thread.
 */
public final class CudaBackend implements AttentionBackend {
    private static final Object SHARED_LOCK = new Object();
    private static volatile Probe shared;
    /** Runtimes of devices other than the default one, opened on first use, shared by service-loaded instances. */
    private static final Map<Integer, CudaRuntime> SHARED_OTHERS = new HashMap<>();
    /** The kernels the last call on this thread launched (for tests that check routing). */
    private static final ThreadLocal<String> LAST_KERNEL = new ThreadLocal<>();

    private final Supplier<CudaRuntime> opener;
    private volatile Probe probe;
    private final Map<Integer, CudaRuntime> others;

    /** The outcome of opening the runtime: a runtime, or the reason there is none. */
    private record Probe(CudaRuntime runtime, Availability availability) {
    }

    /** The service-loader constructor: cheap, touches no JCuda class. */
    public CudaBackend() {
        this.opener = null;
        this.others = SHARED_OTHERS;
    }

    /** A backend whose runtime comes from {@code opener} (tests inject failures here). */
    CudaBackend(Supplier<CudaRuntime> opener) {
        this.opener = opener;
        this.others = new HashMap<>();
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
                case "CUDA_ERROR_NO_BINARY_FOR_GPU" -> "the kernel images have no code for this GPU (they target sm_80 and newer)";
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
     * The default device this backend runs on ({@code -Dsparsa.cuda.device=N}, else 0), for
     * allocating device tensors ({@link CudaTensors}).
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

    /**
     * An output the next {@code forward} writes entirely, not cleared (the kernels write every row).
     * On a CUDA device: a tensor from the device's block cache. On the host: a host tensor over
     * page-locked memory ({@code cuMemHostAlloc}) that the copy from the device writes directly,
     * with no staging copy; it owns that memory: {@link Tensor#close()} gives it back at once (the
     * tensor, its views and its segment are unusable afterwards), and a tensor never closed gives it
     * back once it, its views and its segment are unreachable (a {@link java.lang.ref.Cleaner}).
     * Blocks given back are kept for the next outputs of their size. The pinned memory held this way
     * is bounded by {@code -Dsparsa.cuda.pinnedOutputBytes} (default the smaller of 4 GiB and an
     * eighth of the host's memory; {@link CudaDevice#pinnedOutputBytes()} says how much is held);
     * beyond it, after asking the collector once for unreachable outputs, the output is an ordinary
     * heap tensor. Where the backend is unavailable, host outputs are heap tensors.
     */
    @Override
    public Tensor allocateOutput(Device device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        if (device != null && device.isHost()) {
            Probe p = probe();
            Tensor pinned = p.runtime() == null ? null
                    : p.runtime().device().pinnedOutputs().allocate(dtype, layout, batch, heads, seq, dim);
            return pinned != null ? pinned : Tensor.allocate(dtype, layout, batch, heads, seq, dim);
        }
        return CudaTensors.allocate(device(device), dtype, layout, batch, heads, seq, dim, null);
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
     * KernelChoice#MIXED_DIMS}, more shared memory than the device offers, or e4m3 outside the
     * Hopper e4m3 kernel's conditions or with {@link KernelChoice#E4M3_PROPERTY} false), or null when
     * it runs.
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
     * As {@link #refusal(AttentionShape, DType, TileGeometry)}; a Q of another dtype than e4m3 K and V
     * is refused too (the e4m3 kernel multiplies e4m3 by e4m3), so that such calls go to the CPU backend.
     */
    @Override
    public String refusal(AttentionShape shape, DType q, DType kv, TileGeometry geometry) {
        String mixed = mixedE4m3(q, kv);
        return mixed != null ? mixed : refusal(shape, ForwardArguments.inputType(q, kv), geometry);
    }

    /** The refusal of a Q that is not e4m3 against e4m3 K and V, or null. */
    static String mixedE4m3(DType q, DType kv) {
        return kv.isScaled() && !q.isScaled()
                ? "dtype: the CUDA backend's e4m3 kernel reads e4m3 q, k and v; q is " + q
                  + " (quantise it, e.g. with Tensor.quantizeE4m3PerHead, or run on the cpu backend)"
                : null;
    }

    /**
     * The kernel this backend runs for a call of this shape, dtype and geometry on its device (for
     * tests and the benchmark's log).
     *
     * @throws IllegalArgumentException as {@link KernelChoice#of(AttentionShape, DType, TileGeometry, int, int)}
     * @throws BackendUnavailableException if no usable device is here
     */
    public KernelChoice kernelFor(AttentionShape shape, DType dtype, TileGeometry geometry) {
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
     * Runs a prepared plan. Device tensors (on the plan's device) are read and written in place; host
     * tensors are copied in through pinned buffers and the output (and LSE) copied back the same way
     * (the output is never uploaded). See {@link AttentionBackend#forward(PreparedPlan, Tensor,
     * Tensor, Tensor, Tensor, Tensor, RunOptions)}.
     *
     * <p>The work runs on the stream the calling thread made current for the device ({@link
     * CudaStream#use()}), else on a stream of its own. On a stream of its own, and for host tensors,
     * the call returns once the kernels have finished; on the caller's stream, a call on device
     * tensors returns once the kernels are queued (plans whose rows need an LSE merge wait for the
     * stream, since their scratch memory is freed before returning).
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
        CudaDevice dev = c.plan().runtime().device();
        CudaStream given = CudaStream.current(dev.ordinal());
        if (given != null && given.device().ordinal() != dev.ordinal()) {
            throw new IllegalStateException("stream: " + given + " is current for cuda:" + dev.ordinal());
        }
        CudaStream stream = given != null ? given : new CudaStream(dev);
        try {
            if (c.host()) {
                forwardStaged(c, q, k, v, out, lse, options, stream);
            } else {
                run(c, q, k, v, out, lse, options, stream, given == null);
            }
        } finally {
            if (given == null) {
                stream.close();
            }
        }
    }

    /**
     * Host tensors: Q, K, V copied into device buffers of their own strides (the span each view
     * reaches), the output and LSE written into NaN-filled device buffers and copied back; the
     * buffers come from the device's block cache and go back once the copies are done.
     */
    private void forwardStaged(Call c, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options,
                               CudaStream stream) {
        CudaDevice dev = c.plan().runtime().device();
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            List<HostStaging.Piece> in = new ArrayList<>();
            Tensor dq = stagedInput(dev, q, buffers, in);
            Tensor dk = stagedInput(dev, k, buffers, in);
            Tensor dv = stagedInput(dev, v, buffers, in);
            dev.staging().upload(in, stream);
            Staged o = stagedOutput(dev, out, buffers, stream);
            Staged l = lse == null ? null : stagedOutput(dev, lse, buffers, stream);
            run(c, dq, dk, dv, o.device(), l == null ? null : l.device(), options, stream, false);
            List<HostStaging.Piece> back = new ArrayList<>();
            back.add(o.piece());
            if (l != null) {
                back.add(l.piece());
            }
            dev.staging().download(back, stream);
            stream.synchronize(LAST_KERNEL.get());
            o.finish(out);
            if (l != null) {
                l.finish(lse);
            }
        } catch (RuntimeException | Error e) {
            // a failed call may leave work queued on the buffers: wait before they are reused
            try {
                stream.synchronize();
            } catch (RuntimeException ignored) {
                // the first failure is the one to report
            }
            throw e;
        } finally {
            for (DeviceBuffer b : buffers) {
                b.close();
            }
        }
    }

    /** A device copy of a host input in the host's strides; its span joins the upload. */
    private static Tensor stagedInput(CudaDevice dev, Tensor host, List<DeviceBuffer> buffers,
                                      List<HostStaging.Piece> pieces) {
        DeviceBuffer b = DeviceBuffer.scratch(dev, host.spanBytes());
        buffers.add(b);
        pieces.add(new HostStaging.Piece(host.segment().asSlice(host.byteOffset(), host.spanBytes()), b.pointer()));
        Tensor t = Tensor.wrapDevice(b, host.dtype(), host.shape(), host.strides(), 0);
        return host.dtype().isScaled() ? t.withScales(host.scales()) : t;
    }

    /**
     * A staged output: the device tensor the kernels write, the piece copied back, and, for a host
     * view with holes, the heap span it lands in before its rows are copied into the view.
     */
    private record Staged(Tensor device, HostStaging.Piece piece, Tensor landing) {
        void finish(Tensor host) {
            if (landing != null) {
                HostSpan.copyView(landing, host);
            }
        }
    }

    private static Staged stagedOutput(CudaDevice dev, Tensor host, List<DeviceBuffer> buffers, CudaStream stream) {
        boolean direct = host.spanIsDense();
        long[] strides = direct ? host.strides() : Layout.BHSD.strides(host.batch(), host.heads(), host.seqLen(), host.dim());
        Tensor landing = direct ? null : Tensor.allocate(host.dtype(), Layout.BHSD, host.batch(), host.heads(),
                host.seqLen(), host.dim());
        long bytes = direct ? host.spanBytes() : landing.spanBytes();
        DeviceBuffer b = DeviceBuffer.scratch(dev, bytes);
        buffers.add(b);
        // NaN-filled: the kernels write every row, and a row one failed to write can never pass as zero
        b.fill((byte) 0xFF, stream);
        MemorySegment target = direct ? host.segment().asSlice(host.byteOffset(), bytes) : landing.segment();
        return new Staged(Tensor.wrapDevice(b, host.dtype(), host.shape(), strides, 0),
                new HostStaging.Piece(target, b.pointer()), landing);
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
        if (stream.device().ordinal() != c.plan().runtime().device().ordinal()) {
            throw new IllegalArgumentException("stream: on cuda:" + stream.device().ordinal() + " but the plan is on cuda:"
                    + c.plan().runtime().device().ordinal());
        }
        if (c.shape().queryLength() > 0) {
            run(c, q, k, v, out, lse, options, stream, false);
        }
    }

    // ------------------------------------------------------------------ selection estimated on the device

    /**
     * The skeleton of a {@link MeanPoolBlockTopK} plan whose selection is estimated on {@code device}
     * at every call ({@link CudaEstimatedPlan}): built from the context's shape alone, reusable for
     * every Q and K of that shape. Where {@link CudaEstimatedPlan#refusal} names a reason, the host
     * plans the pattern instead ({@code pattern.plan} and {@link #prepare(SparsePlan, Device)}).
     *
     * @throws IllegalArgumentException with the refusal, for a geometry other than 64×64 or 128×128,
     *     or a device that is not a CUDA device here
     * @throws BackendUnavailableException if no usable device is here
     */
    public CudaEstimatedPlan prepareEstimated(MeanPoolBlockTopK pattern, PlanContext ctx, Device device) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return tileRows == 64 ? new CudaEstimatedPlan(pattern, ctx, rt, 64) : new CudaEstimatedPlan(pattern, ctx, rt, tileRows, 64);
    }

    /**
     * The facade's road to the device estimates: a {@link MeanPoolBlockTopK}, {@link
     * VerticalSlashEstimator}, {@link TopKPerQueryBlock}, {@link TopKPerQuery} or {@link LightningIndexer} (over
     * indexer inputs in CUDA memory of {@code device}) whose context the device estimate takes
     * (the plan class's {@code refusal} is null) on a CUDA device, behind the
     * backend-neutral {@link EstimatedPlan}; null for any other pattern, context or device (the caller
     * plans on the host then).
     *
     * @throws IllegalArgumentException if an argument is null
     * @throws BackendUnavailableException if no usable device is here
     */
    @Override
    public EstimatedPlan prepareEstimated(Pattern pattern, PlanContext ctx, Device device) {
        return prepareEstimated(pattern, ctx, device, Double.POSITIVE_INFINITY);
    }

    /**
     * {@link #prepareEstimated(Pattern, PlanContext, Device)} limited to plans that visit fewer than
     * {@code visitedBelow} of the pairs: each plan kind's bound comes from the pattern and context
     * alone, so a selection that could be nearly dense is refused before any device memory is
     * allocated.
     *
     * @throws IllegalArgumentException if an argument is null or {@code visitedBelow} is NaN
     * @throws BackendUnavailableException if no usable device is here
     */
    @Override
    public EstimatedPlan prepareEstimated(Pattern pattern, PlanContext ctx, Device device, double visitedBelow) {
        if (pattern == null || ctx == null || device == null) {
            throw new IllegalArgumentException("pattern, context and device: must not be null");
        }
        if (Double.isNaN(visitedBelow)) {
            throw new IllegalArgumentException("visitedBelow: must be a number, got NaN");
        }
        if (!runsOn(device) || !supports(ctx.geometry())) {
            return null;
        }
        if (pattern instanceof MeanPoolBlockTopK m && CudaEstimatedPlan.refusal(m, ctx) == null) {
            return CudaEstimatedPlan.visitedFractionBound(m, ctx) < visitedBelow
                    ? new CudaDeviceEstimate(this, prepareEstimated(m, ctx, device), device) : null;
        }
        if (pattern instanceof VerticalSlashEstimator e && CudaVsEstimatedPlan.refusal(e, ctx) == null) {
            return CudaVsEstimatedPlan.visitedFractionBound(e, ctx) < visitedBelow
                    ? new CudaDeviceEstimate(this, prepareEstimated(e, ctx, device), device) : null;
        }
        if (pattern instanceof TopKPerQueryBlock t && CudaTopKEstimatedPlan.refusal(t, ctx) == null) {
            return CudaTopKEstimatedPlan.visitedFractionBound(t, ctx) < visitedBelow
                    ? new CudaDeviceEstimate(this, prepareEstimated(t, ctx, device), device) : null;
        }
        if (pattern instanceof TopKPerQuery t && CudaTopKQueryEstimatedPlan.refusal(t, ctx) == null) {
            return CudaTopKQueryEstimatedPlan.visitedFractionBound(t, ctx) < visitedBelow
                    ? new CudaDeviceEstimate(this, prepareEstimated(t, ctx, device), device) : null;
        }
        if (pattern instanceof LightningIndexer li && CudaLightningIndexerEstimatedPlan.refusal(li, ctx) == null
                && li.inputs().queries().device().equals(device)) {
            return CudaLightningIndexerEstimatedPlan.visitedFractionBound(li, ctx) < visitedBelow
                    ? new CudaDeviceEstimate(this, prepareEstimated(li, ctx, device), device) : null;
        }
        return null;
    }

    /**
     * Estimates the selection of {@code plan}'s pattern from {@code q} and {@code k} on the device
     * and runs attention over it: the estimate's kernels and the attention kernel are queued on one
     * stream, with nothing copied back. The stream is the one the calling thread made current
     * ({@link CudaStream#use()}), and then the call returns once the kernels are queued; else a stream
     * of its own, and the call returns once they have finished. Host tensors take the host path:
     * the pattern plans in Java ({@code plan.pattern().plan}), and that plan is prepared and run as
     * {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor, Tensor, RunOptions)} does.
     *
     * @throws IllegalArgumentException as {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor,
     *     Tensor, RunOptions)}, and for device tensors on another device than the plan's
     * @throws IllegalStateException if the plan is closed
     * @throws CudaException naming the driver call, the kernel and the CUDA error
     */
    public void forward(CudaDeviceEstimatedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                        RunOptions options) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (ForwardArguments.device(q, k, v, out, lse).isHost()) {
            PlanContext ctx = plan.context();
            ForwardArguments.validate(ctx.shape(), q, k, v, out, lse, options);
            // the indexer's inputs live on the device: the host plans over copies of them
            SparsePlan host = plan instanceof CudaLightningIndexerEstimatedPlan li ? li.onHost().plan(ctx, q, k)
                    : plan.pattern().plan(ctx, q, k);
            try (PreparedPlan prepared = prepare(host, Device.cuda(plan.runtime().device().ordinal()))) {
                forward(prepared, q, k, v, out, lse, options);
            }
            return;
        }
        CudaDevice dev = plan.runtime().device();
        CudaStream given = CudaStream.current(dev.ordinal());
        CudaStream stream = given != null ? given : new CudaStream(dev);
        try {
            runEstimated(plan, q, k, v, out, lse, options, stream, given == null, true);
        } finally {
            if (given == null) {
                stream.close();
            }
        }
    }

    /**
     * {@link #forward(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor, RunOptions)} on
     * {@code stream}, returning once the kernels are queued. The tensors must stay open until the
     * stream is synchronized; the kernels' own errors surface there.
     *
     * @throws IllegalArgumentException as that method, and for a stream on another device
     */
    public void forwardAsync(CudaDeviceEstimatedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                             RunOptions options, CudaStream stream) {
        if (plan == null || stream == null) {
            throw new IllegalArgumentException("plan and stream: must not be null");
        }
        if (stream.device().ordinal() != plan.runtime().device().ordinal()) {
            throw new IllegalArgumentException("stream: on cuda:" + stream.device().ordinal() + " but the plan is on cuda:"
                    + plan.runtime().device().ordinal());
        }
        runEstimated(plan, q, k, v, out, lse, options, stream, false, true);
    }

    /**
     * The attention kernel alone over the device plan as {@code plan}'s last estimate wrote it (no
     * estimate queued), on {@code stream}: for benchmarks that time the kernel apart from the estimate.
     * Checks as {@link #forwardAsync(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor, Tensor,
     * RunOptions, CudaStream)}; the plan must have been estimated at least once.
     */
    void forwardAsEstimated(CudaDeviceEstimatedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                            RunOptions options, CudaStream stream) {
        if (plan == null || stream == null || stream.device().ordinal() != plan.runtime().device().ordinal()) {
            throw new IllegalArgumentException("plan and stream: must not be null and must be on one device");
        }
        runEstimated(plan, q, k, v, out, lse, options, stream, false, false);
    }

    /**
     * The device path of an estimated plan (kept reachable until the kernels are queued): validates,
     * queues the estimate (when {@code estimate}) and then the attention kernel over the plan's device
     * form on {@code stream}.
     */
    private void runEstimated(CudaDeviceEstimatedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                              RunOptions options, CudaStream stream, boolean wait, boolean estimate) {
        plan.requireOpen();
        PlanContext ctx = plan.context();
        CudaRuntime runtime = plan.runtime();
        AttentionShape s = ForwardArguments.validate(ctx.shape(), q, k, v, out, lse, options);
        Device where = ForwardArguments.device(q, k, v, out, lse);
        CudaDevice d = runtime.device();
        if (!where.equals(Device.cuda(d.ordinal()))) {
            throw new IllegalArgumentException("q: the estimated plan runs on device tensors of cuda:" + d.ordinal()
                    + ", got tensors on " + where);
        }
        if (q.dtype().isScaled() || k.dtype().isScaled()) {
            throw new IllegalArgumentException("dtype: the device estimates read f32, f16 or bf16 q and k, got "
                    + q.dtype() + " and " + k.dtype() + " (plan e4m3 inputs on the host, then run the plan)");
        }
        KernelChoice kc = KernelChoice.of(s, ForwardArguments.inputType(q.dtype(), k.dtype()), ctx.geometry(),
                d.maxSharedPerBlockOptin(), d.computeCapability());
        String[] names = {"q", "k", "v", "out", "lse"};
        Tensor[] ts = {q, k, v, out, lse};
        for (int i = 0; i < ts.length; i++) {
            if (ts[i] != null) {
                CudaTensors.buffer(names[i], ts[i]);
            }
        }
        if (kc.tensorCores()) {
            requireStrides("q", q.strides(), 8);
            requireStrides("k", k.strides(), 8);
            requireStrides("v", v.strides(), 8);
            for (int i = 0; i < 3; i++) {
                if (ts[i].byteOffset() % 16 != 0) {
                    throw new IllegalArgumentException(names[i] + ": a bf16/f16 view must start at a 16-byte boundary, "
                            + "got byte offset " + ts[i].byteOffset());
                }
            }
        }
        requireEvenStrides("out", out.strides());
        if (out.byteOffset() % (2L * out.dtype().byteSize()) != 0) {
            throw new IllegalArgumentException("out: the view must start at an even element, got byte offset "
                    + out.byteOffset());
        }
        d.makeCurrent();
        try {
            if (estimate) {
                plan.queueEstimate(q, k, stream);
            }
            launch(runtime, plan.devicePlan(), kc, s, ctx.geometry().blockCols(), q, k, v, out, lse, options, stream, wait);
            if (estimate) {
                LAST_KERNEL.set(plan.kernels() + "+" + LAST_KERNEL.get());
            }
        } finally {
            Reference.reachabilityFence(plan);
        }
    }

    /**
     * The skeleton of a {@link VerticalSlashEstimator} plan whose selection is estimated on {@code
     * device} at every call ({@link CudaVsEstimatedPlan}): built from the context's shape and the
     * budgets alone, reusable for every Q and K of that shape. Where {@link
     * CudaVsEstimatedPlan#refusal} names a reason, the host plans the estimator instead ({@code
     * estimator.plan} and {@link #prepare(SparsePlan, Device)}).
     *
     * @throws IllegalArgumentException with the refusal, for a geometry other than 64×64 or 128×128,
     *     or a device that is not a CUDA device here
     * @throws BackendUnavailableException if no usable device is here
     */
    public CudaVsEstimatedPlan prepareEstimated(VerticalSlashEstimator estimator, PlanContext ctx, Device device) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return tileRows == 64 ? new CudaVsEstimatedPlan(estimator, ctx, rt, 64)
                : new CudaVsEstimatedPlan(estimator, ctx, rt, tileRows, 64);
    }

    /**
     * The skeleton of a {@link TopKPerQueryBlock} plan (pooled scoring) whose selection is estimated
     * on {@code device} at every call ({@link CudaTopKEstimatedPlan}): built from the context's shape
     * alone, reusable for every Q and K of that shape. Where {@link CudaTopKEstimatedPlan#refusal}
     * names a reason, the host plans the pattern instead ({@code pattern.plan} and {@link
     * #prepare(SparsePlan, Device)}).
     *
     * @throws IllegalArgumentException with the refusal, for a geometry other than 64×64 or 128×128,
     *     a device whose shared memory per block is too small for the keys, or a device that is not
     *     a CUDA device here
     * @throws BackendUnavailableException if no usable device is here
     */
    public CudaTopKEstimatedPlan prepareEstimated(TopKPerQueryBlock pattern, PlanContext ctx, Device device) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return tileRows == 64 ? new CudaTopKEstimatedPlan(pattern, ctx, rt, 64)
                : new CudaTopKEstimatedPlan(pattern, ctx, rt, tileRows, 64);
    }

    /**
     * The skeleton of a {@link TopKPerQuery} plan whose selection is estimated on {@code device} at
     * every call ({@link CudaTopKQueryEstimatedPlan}: per-row lists): built from the context's shape
     * alone, reusable for every Q and K of that shape. Where {@link CudaTopKQueryEstimatedPlan#refusal}
     * names a reason, the host plans the pattern instead ({@code pattern.plan} and {@link
     * #prepare(SparsePlan, Device)}).
     *
     * @throws IllegalArgumentException with the refusal, for a geometry other than 64×64 or 128×128,
     *     a device whose shared memory per block is too small for the keys, or a device that is not
     *     a CUDA device here
     * @throws BackendUnavailableException if no usable device is here
     */
    public CudaTopKQueryEstimatedPlan prepareEstimated(TopKPerQuery pattern, PlanContext ctx, Device device) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return tileRows == 64 ? new CudaTopKQueryEstimatedPlan(pattern, ctx, rt, 64)
                : new CudaTopKQueryEstimatedPlan(pattern, ctx, rt, tileRows, 64);
    }

    /**
     * The skeleton of a {@link LightningIndexer} plan whose selection is estimated on {@code device} at
     * every call from the pattern's own indexer inputs ({@link CudaLightningIndexerEstimatedPlan}: one
     * layout of per-row lists per batch entry, shared by its query heads): built from the context's
     * shape alone. Where {@link CudaLightningIndexerEstimatedPlan#refusal} names a reason (the projected
     * stand-in, inputs in host memory), the host plans the pattern instead ({@code pattern.plan} and
     * {@link #prepare(SparsePlan, Device)}).
     *
     * @throws IllegalArgumentException with the refusal, for a geometry other than 64×64 or 128×128,
     *     inputs on another device, a device whose shared memory per block is too small for the keys,
     *     or a device that is not a CUDA device here
     * @throws BackendUnavailableException if no usable device is here
     */
    public CudaLightningIndexerEstimatedPlan prepareEstimated(LightningIndexer pattern, PlanContext ctx, Device device) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return tileRows == 64 ? new CudaLightningIndexerEstimatedPlan(pattern, ctx, rt, 64)
                : new CudaLightningIndexerEstimatedPlan(pattern, ctx, rt, tileRows, 64);
    }

    /**
     * {@link #prepareEstimated(LightningIndexer, PlanContext, Device)} with a scores' scratch of at most
     * {@code scratchBytes} (at least one row group of 16 rows), so that small shapes run many chunks.
     */
    CudaLightningIndexerEstimatedPlan prepareEstimated(LightningIndexer pattern, PlanContext ctx, Device device,
                                                       long scratchBytes) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return new CudaLightningIndexerEstimatedPlan(pattern, ctx, rt, scratchBytes,
                tileRows == 64 ? new int[] {64} : new int[] {tileRows, 64});
    }

    /**
     * {@link #prepareEstimated(TopKPerQueryBlock, PlanContext, Device)} with a scores' scratch of at
     * most {@code scratchBytes} (at least one group of 16 query tiles), so that small shapes run many
     * chunks.
     */
    CudaTopKEstimatedPlan prepareEstimated(TopKPerQueryBlock pattern, PlanContext ctx, Device device,
                                           long scratchBytes) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return new CudaTopKEstimatedPlan(pattern, ctx, rt, scratchBytes,
                tileRows == 64 ? new int[] {64} : new int[] {tileRows, 64});
    }

    /**
     * {@link #prepareEstimated(TopKPerQuery, PlanContext, Device)} with a scores' scratch of at most
     * {@code scratchBytes} (at least one row group of 16 rows), so that small shapes run many chunks.
     */
    CudaTopKQueryEstimatedPlan prepareEstimated(TopKPerQuery pattern, PlanContext ctx, Device device, long scratchBytes) {
        CudaRuntime rt = estimateRuntime(ctx, device);
        int tileRows = ctx.geometry().tileRows();
        return new CudaTopKQueryEstimatedPlan(pattern, ctx, rt, scratchBytes,
                tileRows == 64 ? new int[] {64} : new int[] {tileRows, 64});
    }

    /**
     * The runtime of {@code device}, made current, for a device-estimated plan of {@code ctx}; refuses
     * a missing context or a geometry this backend does not run.
     */
    private CudaRuntime estimateRuntime(PlanContext ctx, Device device) {
        if (ctx == null || !supports(ctx.geometry())) {
            throw new IllegalArgumentException("geometry: the cuda backend runs " + supportedGeometries() + ", got "
                    + (ctx == null ? null : ctx.geometry()));
        }
        CudaRuntime rt = runtime(device);
        rt.device().makeCurrent();
        return rt;
    }

    // ------------------------------------------------------------------ decode against a KV cache

    /** Decode lanes with streams of their own, per device ordinal (calls without a caller's stream). */
    private static final java.util.concurrent.ConcurrentHashMap<Integer, java.util.concurrent.ConcurrentLinkedQueue<DecodeLane>>
            OWN_LANES = new java.util.concurrent.ConcurrentHashMap<>();
    /** Decode lanes of callers' streams, by "ordinal:handle". */
    private static final java.util.concurrent.ConcurrentHashMap<String, DecodeLane> CALLER_LANES =
            new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * {@inheritDoc}
     *
     * <p>Null for caches in CUDA memory with head dims 64, 128 or 256 (valueDim == headDim), in f32,
     * f16 or bf16 and for any row count; else why not (host caches are the CPU backend's), or the
     * reason this backend is unavailable.
     */
    @Override
    public String decodeRefusal(DecodeShape shape) {
        if (shape == null) {
            throw new IllegalArgumentException("shape: must not be null");
        }
        if (!probe().availability().available()) {
            return "cuda: " + probe().availability().reason();
        }
        return CudaDecode.refusal(shape);
    }

    /**
     * Decode on the GPU (see {@link CudaDecode}): dense, or over {@code selection}'s spans, on a
     * contiguous or paged cache in CUDA memory, Q and the outputs on the same device. Runs on the
     * thread's current stream for the device ({@link CudaStream#use()}) without waiting and without
     * any allocation once that stream's buffers have grown to the call's size (so a caller can
     * capture steps in a CUDA graph), else on a stream of the backend's and returns when done.
     *
     * @throws IllegalArgumentException as {@link dev.sparsa.backend.DecodeArguments#validate}, and for
     *     shapes this backend refuses ({@link #decodeRefusal(DecodeShape)}'s reason) or K/V rows not
     *     16-byte aligned
     */
    @Override
    public void decode(Tensor q, KvCache cache, DecodeSelection selection, Tensor out, Tensor lse, DecodeOptions options) {
        decodeOn(q, cache, selection, null, out, lse, options);
    }

    /**
     * Quest without sinks or window, and top-k with one query row or no window, run wholly on the device
     * (scores, choice and decode queued together, nothing copied back, so a caller's stream can capture
     * them in a CUDA graph); other patterns select ({@link #select}) and decode.
     */
    @Override
    public void selectAndDecode(Tensor q, KvCache cache, DecodePattern pattern, Tensor out, Tensor lse, DecodeOptions options) {
        if (pattern instanceof DecodePattern.Quest quest && quest.sinks() == 0 && quest.window() == 0
                && cache instanceof PagedKvCache pc && pc.hasPageBounds() && CudaDecode.refusal(cache) == null) {
            decodeOn(q, cache, null, quest, out, lse, options);
            return;
        }
        if (pattern instanceof DecodePattern.TopK top && cache != null && "cuda".equals(cache.device().kind())
                && q != null && (q.seqLen() == 1 || top.window() == 0)
                && CudaDecodeTopK.runs(q, cache, runtime(cache.device()).device().maxSharedPerBlockOptin())) {
            decodeOn(q, cache, null, top, out, lse, options);
            return;
        }
        AttentionBackend.super.selectAndDecode(q, cache, pattern, out, lse, options);
    }

    private void decodeOn(Tensor q, KvCache cache, DecodeSelection selection, DecodePattern chosen, Tensor out,
                          Tensor lse, DecodeOptions options) {
        DecodeArguments.validate(q, cache, selection, out, lse, options);
        String refusal = CudaDecode.refusal(cache);
        if (refusal == null) {
            refusal = CudaDecode.queryRefusal(cache.dtype(), q);
        }
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        CudaRuntime rt = runtime(cache.device());
        refusal = CudaDecode.deviceRefusal(cache.dtype(), cache.headDim(), rt.device().maxSharedPerBlockOptin());
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        withLane(rt, lane -> LAST_KERNEL.set(CudaDecode.run(rt, q, cache, selection, chosen, out, lse, options, lane)));
    }

    /**
     * Quest on a paged cache in CUDA memory is chosen on the device (a query of the cache's type; for
     * e4m3 caches an f16, bf16 or e4m3 query), and so is top-k on a contiguous or paged cache in CUDA
     * memory ({@link CudaDecodeTopK}: the same selection as the default's, without copying the keys to
     * the host), and so are the Quest and top-k heads of a per-KV-head mix whose scored patterns all run
     * on the device; other patterns, and queries the kernels do not read, as the default.
     */
    @Override
    public DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        if (pattern instanceof DecodePattern.PerKvHead per) {
            DecodeSelection mixed = perKvHeadOnDevice(q, cache, per, options);
            if (mixed != null) {
                return mixed;
            }
        } else if (choosesOnDevice(q, cache, pattern)) {
            return selectOnDevice(q, cache, pattern, options);
        }
        return AttentionBackend.super.select(q, cache, pattern, options);
    }

    /** Whether the device chooses {@code pattern}'s keys on {@code cache} for {@code q}: Quest and top-k, as {@link #select} says. */
    private boolean choosesOnDevice(Tensor q, KvCache cache, DecodePattern pattern) {
        return switch (pattern) {
            case DecodePattern.TopK top -> cache != null && "cuda".equals(cache.device().kind())
                    && CudaDecodeTopK.runs(q, cache, runtime(cache.device()).device().maxSharedPerBlockOptin());
            case DecodePattern.Quest quest -> cache instanceof PagedKvCache pc && pc.hasPageBounds()
                    && CudaDecode.readsQuery(q, cache);
            default -> false;
        };
    }

    /** Quest's or top-k's selection made on the device ({@link #choosesOnDevice} holds) and copied back. */
    private DecodeSelection selectOnDevice(Tensor q, KvCache cache, DecodePattern pattern, DecodeOptions options) {
        CudaRuntime rt = runtime(cache.device());
        DecodeSelection[] made = new DecodeSelection[1];
        if (pattern instanceof DecodePattern.TopK top) {
            withLane(rt, lane -> {
                // the kernels queued, when any candidate is ranked
                LAST_KERNEL.set(CudaDecodeTopK.keyScoresName(cache.dtype(), q.dtype(), cache.headDim()));
                made[0] = CudaDecodeTopK.select(rt, q, cache, top, options, lane, LAST_KERNEL::set);
            });
        } else {
            DecodePattern.Quest quest = (DecodePattern.Quest) pattern;
            withLane(rt, lane -> {
                made[0] = CudaDecode.questSelection(rt, q, (PagedKvCache) cache, quest, options, lane, LAST_KERNEL::set);
            });
        }
        return made[0];
    }

    /**
     * A per-KV-head mix chosen where the cache is: each distinct Quest or top-k pattern of the mix is
     * chosen once on the device for every KV head, and each head keeps the choice of its own pattern (a
     * (sequence, KV head)'s choice depends only on its pattern, its group's query vectors and its own
     * keys, so this is the default's selection); dense and sinks + window heads read no keys. Null when
     * the mix has no Quest or top-k head (the default then reads no keys either), or one the device does
     * not choose (the default then scores on host copies and says what does not fit).
     */
    private DecodeSelection perKvHeadOnDevice(Tensor q, KvCache cache, DecodePattern.PerKvHead per,
                                              DecodeOptions options) {
        if (cache == null || per.heads().size() != cache.kvHeads()) {
            return null;
        }
        Map<DecodePattern, DecodeSelection> chosen = new LinkedHashMap<>();
        for (DecodePattern p : per.heads()) {
            if ((p instanceof DecodePattern.Quest || p instanceof DecodePattern.TopK) && !chosen.containsKey(p)) {
                if (!choosesOnDevice(q, cache, p)) {
                    return null;
                }
                chosen.put(p, null);
            }
        }
        if (chosen.isEmpty()) {
            return null;
        }
        chosen.replaceAll((p, none) -> selectOnDevice(q, cache, p, options));
        int heads = cache.kvHeads();
        int[][] spans = new int[cache.batch() * heads][];
        for (int u = 0; u < spans.length; u++) {
            DecodeSelection made = chosen.get(per.head(u % heads));
            spans[u] = made == null ? null : made.chosenSpans(u / heads, u % heads);
        }
        return DecodeSelector.assemble(cache, per, spans);
    }

    /**
     * A dense decode step for {@code cache} prepared up to {@code maxLength} tokens per sequence,
     * whose kernels a caller captures once in a CUDA graph and replays while the cache grows (see
     * {@link CudaDecodeStep}); its first refresh is queued on {@code stream}.
     *
     * @param cache      a contiguous or paged cache in CUDA memory of a shape {@link #decodeRefusal}
     *                   accepts
     * @param queryHeads Q's heads, a multiple of the cache's KV heads
     * @param rows       query rows per sequence and step, 1 to {@value DecodeArguments#MAX_QUERY_ROWS}
     * @param maxLength  the longest length any sequence reaches while the step is used: at least the
     *                   cache's current longest and 1, at most a contiguous cache's capacity
     * @param options    the scale, soft cap and split rule (the rule fixes the chunk count at {@code maxLength})
     * @param stream     a stream of the cache's device; the step's copies and kernels go there
     * @throws IllegalArgumentException naming the argument that does not fit, or the reason the
     *     backend refuses the cache
     * @throws BackendUnavailableException if no CUDA device is usable
     */
    public CudaDecodeStep prepareDecodeStep(KvCache cache, int queryHeads, int rows, int maxLength, DecodeOptions options,
                                            CudaStream stream) {
        return prepareDecodeStep(cache, DecodePattern.dense(), queryHeads, rows, maxLength, options, stream);
    }

    /**
     * A decode step of {@code pattern} for {@code cache} prepared up to {@code maxLength} tokens per
     * sequence, whose kernels (for Quest and top-k: the choice, then the decode) a caller captures
     * once in a CUDA graph and replays while the cache grows (see {@link CudaDecodeStep}); its first
     * refresh is queued on {@code stream}. The arguments are those of {@link #prepareDecodeStep(KvCache,
     * int, int, int, DecodeOptions, CudaStream)} and:
     *
     * @param pattern dense; Quest without sinks or window, on a paged cache that keeps page bounds; or
     *                top-k with one query row or no window, whose group's query vectors (query heads
     *                per KV head × rows × head dim) fit {@value CudaDecodeTopK#MAX_VECTOR_FLOATS}
     *                floats
     * @throws IllegalArgumentException also for a pattern the device does not choose, naming why
     */
    public CudaDecodeStep prepareDecodeStep(KvCache cache, DecodePattern pattern, int queryHeads, int rows, int maxLength,
                                            DecodeOptions options, CudaStream stream) {
        if (cache == null || pattern == null || options == null || stream == null) {
            throw new IllegalArgumentException("cache, options and stream: must not be null (got cache=" + cache
                    + ", options=" + options + ", stream=" + stream + ")");
        }
        String refusal = CudaDecode.refusal(cache);
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        cache.validate();
        if (queryHeads < 1 || queryHeads % cache.kvHeads() != 0) {
            throw new IllegalArgumentException("queryHeads: must be a positive multiple of the cache's " + cache.kvHeads()
                    + " KV heads, got " + queryHeads);
        }
        if (rows < 1 || rows > DecodeArguments.MAX_QUERY_ROWS) {
            throw new IllegalArgumentException("rows: decode takes 1 to " + DecodeArguments.MAX_QUERY_ROWS
                    + " query rows per sequence, got " + rows);
        }
        if (maxLength < Math.max(1, cache.maxLength())) {
            throw new IllegalArgumentException("maxLength: must be at least 1 and the cache's longest sequence ("
                    + cache.maxLength() + "), got " + maxLength);
        }
        if (cache instanceof dev.sparsa.kv.ContiguousKvCache c && maxLength > c.capacity()) {
            throw new IllegalArgumentException("maxLength: " + maxLength + " exceeds the cache's capacity of "
                    + c.capacity() + " tokens");
        }
        CudaRuntime rt = runtime(cache.device());
        String onDevice = CudaDecode.deviceRefusal(cache.dtype(), cache.headDim(), rt.device().maxSharedPerBlockOptin());
        if (onDevice != null) {
            throw new IllegalArgumentException(onDevice);
        }
        if (stream.device().ordinal() != rt.device().ordinal()) {
            throw new IllegalArgumentException("stream: on " + stream.device() + " but the cache is on " + cache.device());
        }
        String why = decodeStepRefusal(pattern, cache, queryHeads, rows);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        return new CudaDecodeStep(rt, cache, pattern instanceof DecodePattern.Dense ? null : pattern, queryHeads, rows,
                maxLength, options, stream);
    }

    /**
     * Why {@link #prepareDecodeStep(KvCache, DecodePattern, int, int, int, DecodeOptions, CudaStream)}
     * refuses {@code pattern} on {@code cache} for {@code queryHeads} × {@code rows} query rows (the
     * pattern's own conditions; the cache, shape and stream are checked there), or null.
     *
     * @param cache a cache in CUDA memory of this backend (its device's shared memory bounds top-k's group)
     */
    public String decodeStepRefusal(DecodePattern pattern, KvCache cache, int queryHeads, int rows) {
        int maxShared = runtime(cache.device()).device().maxSharedPerBlockOptin();
        return switch (pattern) {
            case DecodePattern.Dense d -> null;
            case DecodePattern.Quest quest when quest.sinks() > 0 || quest.window() > 0 ->
                    "pattern: a prepared step runs Quest without sinks or window, got " + quest.name();
            case DecodePattern.Quest quest when !(cache instanceof PagedKvCache pc && pc.hasPageBounds()) ->
                    "pattern: Quest needs a paged cache that keeps page bounds, got " + cache;
            case DecodePattern.Quest quest -> null;
            case DecodePattern.TopK top when rows > 1 && top.window() > 0 ->
                    "pattern: a prepared step runs top-k with a window for one query row, got " + rows + " rows";
            case DecodePattern.TopK top -> {
                int vectors = queryHeads / cache.kvHeads() * rows;
                if (vectors * cache.headDim() > CudaDecodeTopK.MAX_VECTOR_FLOATS
                        || CudaDecodeTopK.sharedBytes(vectors, cache.headDim(), cache.dtype().byteSize()) > maxShared) {
                    yield "pattern: top-k scores the group's " + vectors + " query vectors of " + cache.headDim()
                            + " floats on the device, at most " + CudaDecodeTopK.MAX_VECTOR_FLOATS + " floats in all";
                }
                yield null;
            }
            default -> "pattern: a prepared step runs dense, Quest or top-k, got " + pattern.name()
                    + "; run it with selectAndDecode";
        };
    }

    /** Frees the decode lane of a stream this package created, before the stream is destroyed. */
    static void streamClosed(int ordinal, long address) {
        DecodeLane lane = CALLER_LANES.remove(ordinal + ":" + address);
        if (lane != null) {
            synchronized (lane) {
                lane.close();
            }
        }
    }

    /**
     * Runs {@code work} on the lane of the thread's current stream (without waiting), or on a pooled
     * lane of the backend's own (waiting for it).
     */
    private static void withLane(CudaRuntime rt, java.util.function.Consumer<DecodeLane> work) {
        CudaDevice dev = rt.device();
        CudaStream given = CudaStream.current(dev.ordinal());
        if (given != null) {
            DecodeLane lane = CALLER_LANES.computeIfAbsent(dev.ordinal() + ":" + given.address(),
                    key -> new DecodeLane(dev, given));
            synchronized (lane) {
                work.accept(lane);
            }
            return;
        }
        java.util.concurrent.ConcurrentLinkedQueue<DecodeLane> pool = OWN_LANES.computeIfAbsent(dev.ordinal(),
                key -> new java.util.concurrent.ConcurrentLinkedQueue<>());
        DecodeLane lane = pool.poll();
        if (lane == null) {
            lane = new DecodeLane(dev, new CudaStream(dev));
        }
        try {
            work.accept(lane);
            lane.stream.synchronize(LAST_KERNEL.get());
        } catch (RuntimeException | Error e) {
            try {
                lane.stream.synchronize();
            } catch (RuntimeException ignored) {
                // the first failure is the one reported
            }
            throw e;
        } finally {
            pool.add(lane);
        }
    }

    /**
     * Chunked prefill: a paged cache in CUDA memory is gathered on the device into a contiguous
     * scratch copy of the sequence's K/V (one kernel), then run as {@code forward}; other caches as
     * the default.
     */
    @Override
    public void forward(PreparedPlan plan, Tensor q, KvCache cache, int sequence, Tensor out, Tensor lse,
                        RunOptions options) {
        if (!(cache instanceof PagedKvCache pc) || cache.device().isHost()) {
            AttentionBackend.super.forward(plan, q, cache, sequence, out, lse, options);
            return;
        }
        CudaRuntime rt = runtime(cache.device());
        int length = cache.length(sequence);
        try (Tensor k = gather(rt, pc.keyPages(), pc, sequence, length);
             Tensor v = gather(rt, pc.valuePages(), pc, sequence, length)) {
            forward(plan, q, k, v, out, lse, options);
        }
    }

    /** Sequence {@code b}'s first {@code length} rows of a page pool as a new contiguous device tensor. */
    private static Tensor gather(CudaRuntime rt, Tensor pages, PagedKvCache cache, int b, int length) {
        CudaDevice dev = rt.device();
        int e = pages.dtype().byteSize();
        // an e4m3 sequence keeps the pool's scales: its codes are copied as they are
        Tensor dst = CudaTensors.allocate(dev, pages.dtype(), Layout.BHSD, 1, pages.heads(), length, pages.dim(), null,
                pages.dtype().isScaled() ? pages.scales() : null);
        if (length == 0) {
            return dst;
        }
        if ((pages.stride(0) * e) % 16 != 0 || (pages.stride(1) * e) % 16 != 0 || (pages.stride(2) * e) % 16 != 0
                || (pages.dim() * e) % 16 != 0 || pages.byteOffset() % 16 != 0) {
            dst.close();
            throw new IllegalArgumentException("cache: the CUDA page gather copies 16-byte rows; strides "
                    + Arrays.toString(pages.strides()) + " of " + pages.dtype() + " do not allow it");
        }
        try (DeviceBuffer table = DeviceBuffer.scratch(dev, 4L * Math.max(1, cache.pageCount(b)))) {
            table.copyFrom(cache.blockTable(b));
            CUfunction f = rt.module().function("sparsa_gather_pages", 0);
            Pointer params = Pointer.to(Pointer.to(pointer(pages)), Pointer.to(pointer(dst)), Pointer.to(table.pointer()),
                    Pointer.to(new int[] {length}), Pointer.to(new int[] {Integer.numberOfTrailingZeros(cache.pageSize())}),
                    Pointer.to(new long[] {pages.stride(0) * e}), Pointer.to(new long[] {pages.stride(1) * e}),
                    Pointer.to(new long[] {pages.stride(2) * e}), Pointer.to(new long[] {dst.stride(1) * e}),
                    Pointer.to(new long[] {dst.stride(2) * e}), Pointer.to(new int[] {pages.dim() * e}));
            CudaStream legacy = CudaStream.wrap(dev, 0L);
            Cuda.check(cuLaunchKernel(f, (length + 7) / 8, pages.heads(), 1, 256, 1, 1, 0, legacy.handle(), params, null),
                    "cuLaunchKernel", "sparsa_gather_pages");
            legacy.synchronize("sparsa_gather_pages");
        } catch (RuntimeException | Error ex) {
            dst.close();
            throw ex;
        }
        return dst;
    }

    /**
     * Whether calls on plans with a head-packed work list use it (the default); the system property
     * {@code sparsa.cuda.headPacking=false}, read at every call, runs them one head per CTA instead.
     */
    static boolean headPacking() {
        return !"false".equals(System.getProperty("sparsa.cuda.headPacking"));
    }

    /** The kernels the last call on this thread launched, or null (for tests that check routing). */
    static String lastKernel() {
        return LAST_KERNEL.get();
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
        DType input = ForwardArguments.inputType(q.dtype(), k.dtype());
        String mixed = mixedE4m3(q.dtype(), k.dtype());
        if (mixed != null) {
            throw new IllegalArgumentException(mixed);
        }
        KernelChoice kc = KernelChoice.of(s, input, plan.plan().geometry(), d.maxSharedPerBlockOptin(),
                d.computeCapability());
        if (kc.tensorCores()) {
            int row = 16 / input.byteSize();
            requireStrides("q", q.strides(), row);
            requireStrides("k", k.strides(), row);
            requireStrides("v", v.strides(), row);
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
                        throw new IllegalArgumentException(names[i] + ": a " + ts[i].dtype().name().toLowerCase(Locale.ROOT)
                                + " view must start at a 16-byte boundary, "
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

    private static void requireStrides(String name, long[] strides, int elements) {
        for (int i = 0; i < 3; i++) {
            if (strides[i] % elements != 0) {
                throw new IllegalArgumentException(name + ": the CUDA tensor-core kernels load 16-byte rows; batch, head and "
                        + "sequence strides must be multiples of " + elements + " elements, got " + Arrays.toString(strides));
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

    /**
     * The e4m3 kernel's scale parameter (WgScales in sparsa_prefill_wgmma.cuh): Q's scale per query head,
     * then K's and V's per KV head, each in a block of {@link KernelChoice#E4M3_MAX_HEADS} floats.
     */
    static float[] e4m3Scales(Tensor q, Tensor k, Tensor v) {
        int m = KernelChoice.E4M3_MAX_HEADS;
        float[] s = new float[3 * m];
        for (int h = 0; h < q.heads(); h++) {
            s[h] = q.scale(h);
        }
        for (int h = 0; h < k.heads(); h++) {
            s[m + h] = k.scale(h);
            s[2 * m + h] = v.scale(h);
        }
        return s;
    }

    /** The Hopper kernel's TMA maps of K, V and Q for this call (off where TMA cannot describe them). */
    private static byte[] tensorMaps(Tensor q, Tensor k, Tensor v, AttentionShape s) {
        return CudaTensorMaps.of(CudaTensors.address("k", k), CudaTensors.address("v", v), CudaTensors.address("q", q),
                strides(k), strides(v), strides(q), s.headDim(), s.keyLength(), s.queryLength(), s.kvHeads(), s.qHeads(),
                s.batch(), k.dtype());
    }

    /** Element strides of (batch, head, sequence), as the kernels' scalars hold them. */
    private static long[] strides(Tensor t) {
        return new long[] {t.stride(0), t.stride(1), t.stride(2)};
    }

    /** Device pointer of element (0, 0, 0, 0) of a device tensor. */
    private static CUdeviceptr pointer(Tensor t) {
        return CudaTensors.buffer("tensor", t).pointer(t.byteOffset());
    }

    /**
     * Queues the kernels on {@code stream}; waits for them when {@code wait} is set or when merge
     * scratch memory has to be freed.
     */
    private void run(Call c, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options,
                     CudaStream stream, boolean wait) {
        try {
            launch(c.plan().runtime(), c.plan().devicePlan(), c.kernel(), c.shape(), c.plan().plan().geometry().blockCols(),
                    q, k, v, out, lse, options, stream, wait);
        } finally {
            Reference.reachabilityFence(c.plan());
        }
    }

    /**
     * Queues the attention kernels of device plan {@code dp} on {@code stream}; waits for them when
     * {@code wait} is set or when merge scratch memory has to be freed.
     */
    private static void launch(CudaRuntime rt, DevicePlan dp, KernelChoice chosen, AttentionShape s, int blockCols, Tensor q,
                               Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options, CudaStream stream,
                               boolean wait) {
        CudaDevice dev = rt.device();
        dev.makeCurrent();
        KernelChoice kc = chosen;
        DevicePlan.WorkList work;
        boolean e4m3 = q.dtype().isScaled();
        // the e4m3 kernel has no head-packed form: its calls take the plan's own work list
        DevicePlan.WorkList packed = kc.tensorCores() && headPacking() && !e4m3 ? dp.packedWorkList() : null;
        if (packed != null) {
            // head-packed items, and the items of plans of one-row tiles, run on the mma.sync kernel of 64-row
            // CTAs, gather-pipelined where compiled (the Hopper kernel has no packing and 128-row CTAs)
            kc = KernelChoice.packed(s, q.dtype(), dev.maxSharedPerBlockOptin(), k.stride(2), v.stride(2));
            work = packed;
        } else {
            work = dp.workList(kc.rows());
        }
        long[] scalars = DevicePlanFormat.scalars(q, k, v, out, lse, s, blockCols,
                options.scaleFor(s.headDim()), options.softCap());
        CUdeviceptr none = new CUdeviceptr();
        CUdeviceptr lsePtr = lse == null ? none : pointer(lse);
        long entries = dp.scratchEntries();
        DeviceBuffer scratchO = entries > 0 ? DeviceBuffer.scratch(dev, entries * s.valueDim() * 4L) : null;
        DeviceBuffer scratchLse = entries > 0 ? DeviceBuffer.scratch(dev, entries * 4L) : null;
        String launched = work.items() > 0 ? kc.name() : null;
        try {
            CUdeviceptr so = scratchO == null ? none : scratchO.pointer();
            CUdeviceptr sl = scratchLse == null ? none : scratchLse.pointer();
            if (work.items() > 0) {
                CUfunction f = rt.module().function(kc.name(), kc.sharedBytes(), kc.gatherPipelined());
                // the Hopper kernel is persistent: one CTA per multiprocessor walks the work list (it takes the
                // item count after the scalars); the others take one CTA per work item
                int grid = kc.hopper() ? Math.min(work.items(), dev.multiprocessors()) : work.items();
                Pointer[] args = {Pointer.to(pointer(q)), Pointer.to(pointer(k)), Pointer.to(pointer(v)),
                        Pointer.to(pointer(out)), Pointer.to(lsePtr), Pointer.to(so), Pointer.to(sl),
                        Pointer.to(dp.ints().pointer()), Pointer.to(dp.floats().pointer()),
                        Pointer.to(work.buffer().pointer()), Pointer.to(scalars), Pointer.to(new int[] {work.items()})};
                if (kc.hopper()) {
                    // the Hopper kernels take the tensor maps of K, V and Q by value after the item count, and the
                    // e4m3 kernel its per-head scales after them
                    args = Arrays.copyOf(args, args.length + (e4m3 ? 2 : 1));
                    args[12] = Pointer.to(tensorMaps(q, k, v, s));
                    if (e4m3) {
                        args[13] = Pointer.to(e4m3Scales(q, k, v));
                    }
                }
                Pointer params = Pointer.to(args);
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
                launched = launched == null ? merge : launched + "+" + merge;
            }
            LAST_KERNEL.set(launched);
            if (wait || scratchO != null) {
                stream.synchronize(kc.name());
            }
        } finally {
            if (scratchO != null) {
                // the blocks go back to the cache: nothing queued may still use them (a second wait after a
                // failure reports nothing new)
                try {
                    stream.synchronize();
                } catch (RuntimeException ignored) {
                    // the failure is reported by the call above
                }
                scratchO.close();
                scratchLse.close();
            }
        }
    }
}
