package dev.sparsa.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import jcuda.driver.CUgraph;

/**
 * Programmatic dependent launch in captured CUDA graphs: the edge from one kernel to the next becomes a
 * programmatic edge, so that the next kernel is launched as soon as every CTA of the one before has exited or
 * called {@code griddepcontrol.launch_dependents}, and its CTAs wait inside the kernel ({@code griddepcontrol.wait})
 * until the kernel before has ended and its writes are visible. What that saves is part of the gap between two
 * kernels (the launch of the second, its CTAs' start), which in a decode step of two to four short kernels is a
 * few percent of the step; the choice kernels of Quest and top-k call {@code launch_dependents} first, so that the
 * decode's CTAs start on the SMs the choice leaves idle.
 *
 * <p>An edge is rewritten only when both ends are kernel nodes and {@link #mayStartEarly} allows it: the
 * downstream kernel is one of {@link #WAITING_KERNELS}, which wait before they touch anything a kernel before them
 * writes (every kernel of the image {@code sparsa_decode_quest}; {@code DependentLaunchTest} checks the sources).
 * The tensor-core decode kernels read their query before they wait, so an edge into one of them is rewritten only
 * after a choice kernel, which writes nothing but the lists of keys or pages: after any other kernel (a projection
 * that writes Q, captured in the same graph) it stays a full dependency. So does every other edge, and a graph that
 * also holds other work stays correct.
 *
 * <p>The system property {@value #PROPERTY} turns it {@code on} (the default) or {@code off}. JCuda 12.0 binds
 * none of the driver calls needed ({@code cuGraphGetEdges_v2}, {@code cuGraphAddDependencies_v2},
 * {@code cuFuncGetName}: CUDA 12.3 and later), so they are called through the JDK's foreign function interface;
 * where the driver lacks them, or native access is refused, graphs keep full dependencies and {@link #status()}
 * says why.
 */
final class DependentLaunch {
    /** The system property that picks the mode. */
    static final String PROPERTY = "sparsa.cuda.dependentLaunch";

    /**
     * The kernels that wait for the kernel before them before touching its outputs: as their first statement, or
     * (the tensor-core decode kernels) after staging only their work item and Q.
     */
    static final Set<String> WAITING_KERNELS = KernelTable.KERNELS.stream()
            .filter(k -> k.image().equals("sparsa_decode_quest")).map(KernelTable.Kernel::name)
            .collect(Collectors.toUnmodifiableSet());

    /** The choice kernels of Quest and top-k: they write only the page or key lists of the decode metadata. */
    static final Set<String> CHOICE_KERNELS = Set.of("sparsa_quest_topk", "sparsa_quest_topk_c8",
            "sparsa_decode_topk_choose", "sparsa_decode_topk_choose_c8");

    /**
     * Whether kernel {@code down} may be launched before kernel {@code up}, the one before it in a graph, has
     * ended: {@code down} is one of {@link #WAITING_KERNELS}, and if it reads anything before its wait (the
     * tensor-core decode kernels: their work item and Q), {@code up} is a choice kernel, which writes neither.
     * Either name may be any kernel's; {@code up} may be null (a node without a named function).
     */
    static boolean mayStartEarly(String up, String down) {
        if (!WAITING_KERNELS.contains(down)) {
            return false;
        }
        return !readsBeforeWaiting(down) || up != null && CHOICE_KERNELS.contains(up);
    }

    /** The tensor-core decode kernels ({@code sparsa_decode_*_mma}), which stage their work item and Q first. */
    static boolean readsBeforeWaiting(String kernel) {
        return WAITING_KERNELS.contains(kernel) && kernel.startsWith("sparsa_decode_") && kernel.endsWith("_mma");
    }

    /** Whether graphs get programmatic edges. */
    enum Mode {
        /** No edge is rewritten. */
        OFF,
        /** Edges that {@link #mayStartEarly} allows become programmatic ({@code CU_GRAPH_KERNEL_NODE_PORT_PROGRAMMATIC}). */
        ON
    }

    private static final int NODE_TYPE_KERNEL = 0;          // CU_GRAPH_NODE_TYPE_KERNEL
    private static final byte PORT_PROGRAMMATIC = 1;        // CU_GRAPH_KERNEL_NODE_PORT_PROGRAMMATIC
    private static final byte DEPENDENCY_PROGRAMMATIC = 1;  // CU_GRAPH_DEPENDENCY_TYPE_PROGRAMMATIC
    private static final long EDGE_BYTES = 8;               // CUgraphEdgeData: from_port, to_port, type, reserved[5]
    private static final long KERNEL_PARAMS_BYTES = 72;     // CUDA_KERNEL_NODE_PARAMS_v2; the CUfunction at 0

    private static volatile Driver driver;
    private static volatile String unavailable;

    private DependentLaunch() {
    }

    /**
     * The mode the system property gives.
     *
     * @throws IllegalArgumentException if the property is set to anything but {@code on} or {@code off} (case and
     *     surrounding white space ignored)
     */
    static Mode mode() {
        String v = System.getProperty(PROPERTY, "on").strip().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "on" -> Mode.ON;
            case "off" -> Mode.OFF;
            default -> throw new IllegalArgumentException(
                    PROPERTY + ": wants on or off, got '" + System.getProperty(PROPERTY) + "'");
        };
    }

    /**
     * One line for logs: the mode, or why graphs keep full dependencies ({@code unavailable: ...}).
     */
    static String status() {
        if (mode() == Mode.OFF) {
            return "off";
        }
        return driver() != null ? "on" : "unavailable: " + unavailable;
    }

    /**
     * Rewrites the kernel-to-kernel edges of {@code graph} (captured, not yet instantiated) that {@link
     * #mayStartEarly} allows into programmatic edges, when the mode is on and the device is a
     * Hopper or later (compute capability 9.0: the kernels' wait and the driver's early launch exist from there).
     *
     * @param computeCapability the graph's device's, as {@link CudaDevice#computeCapability()} gives it (90 for 9.0)
     * @return the number of edges rewritten (0 when off or unavailable)
     * @throws CudaException if a driver call fails
     */
    static int rewrite(CUgraph graph, int computeCapability) {
        if (mode() == Mode.OFF || computeCapability < 90) {
            return 0;
        }
        Driver d = driver();
        if (d == null) {
            return 0;
        }
        MemorySegment g = MemorySegment.ofAddress(JCudaHandles.address(graph));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_LONG);
            Cuda.check((int) d.getEdges.invokeExact(g, MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, count),
                    "cuGraphGetEdges_v2");
            long n = count.get(JAVA_LONG, 0);
            if (n == 0) {
                return 0;
            }
            MemorySegment from = arena.allocate(ADDRESS, n);
            MemorySegment to = arena.allocate(ADDRESS, n);
            MemorySegment data = arena.allocate(EDGE_BYTES * n, 8);
            Cuda.check((int) d.getEdges.invokeExact(g, from, to, data, count), "cuGraphGetEdges_v2");
            n = Math.min(n, count.get(JAVA_LONG, 0));
            MemorySegment type = arena.allocate(JAVA_INT);
            MemorySegment params = arena.allocate(KERNEL_PARAMS_BYTES, 8);
            MemorySegment name = arena.allocate(ADDRESS);
            int rewritten = 0;
            for (long e = 0; e < n; e++) {
                MemorySegment up = from.getAtIndex(ADDRESS, e), down = to.getAtIndex(ADDRESS, e);
                boolean plain = true;
                for (long b = 0; b < EDGE_BYTES; b++) {
                    plain &= data.get(JAVA_BYTE, e * EDGE_BYTES + b) == 0;
                }
                if (!plain || !isKernel(d, up, type) || !isKernel(d, down, type)) {
                    continue;
                }
                String downName = kernelName(d, down, params, name);
                if (downName == null || !WAITING_KERNELS.contains(downName)
                        || !mayStartEarly(kernelName(d, up, params, name), downName)) {
                    continue;
                }
                MemorySegment f = arena.allocate(ADDRESS), t = arena.allocate(ADDRESS);
                f.set(ADDRESS, 0, up);
                t.set(ADDRESS, 0, down);
                Cuda.check((int) d.removeDependencies.invokeExact(g, f, t, MemorySegment.NULL, 1L),
                        "cuGraphRemoveDependencies_v2");
                MemorySegment edge = arena.allocate(EDGE_BYTES, 8);
                edge.set(JAVA_BYTE, 0, PORT_PROGRAMMATIC);          // from_port
                edge.set(JAVA_BYTE, 2, DEPENDENCY_PROGRAMMATIC);    // type
                Cuda.check((int) d.addDependencies.invokeExact(g, f, t, edge, 1L), "cuGraphAddDependencies_v2");
                rewritten++;
            }
            return rewritten;
        } catch (CudaException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("dependent launch: a driver call failed: " + e, e);
        }
    }

    /** The name of a kernel node's function (null when the node holds none, as a library kernel node may). */
    private static String kernelName(Driver d, MemorySegment node, MemorySegment params, MemorySegment name)
            throws Throwable {
        Cuda.check((int) d.kernelParams.invokeExact(node, params), "cuGraphKernelNodeGetParams_v2");
        MemorySegment func = params.get(ADDRESS, 0);
        if (func.address() == 0) {
            return null;
        }
        Cuda.check((int) d.funcName.invokeExact(name, func), "cuFuncGetName");
        return name.get(ADDRESS, 0).reinterpret(4096).getString(0);
    }

    private static boolean isKernel(Driver d, MemorySegment node, MemorySegment type) throws Throwable {
        Cuda.check((int) d.nodeType.invokeExact(node, type), "cuGraphNodeGetType");
        return type.get(JAVA_INT, 0) == NODE_TYPE_KERNEL;
    }

    private static Driver driver() {
        Driver d = driver;
        if (d == null && unavailable == null) {
            synchronized (DependentLaunch.class) {
                if (driver == null && unavailable == null) {
                    try {
                        driver = new Driver();
                    } catch (Throwable e) {  // no driver library, an older driver, native access refused
                        unavailable = e.getClass().getSimpleName() + ": " + e.getMessage();
                    }
                }
                d = driver;
            }
        }
        return d;
    }

    /** The driver entry points, looked up once in the driver library JCuda has loaded. */
    private static final class Driver {
        final MethodHandle getEdges, nodeType, kernelParams, funcName, removeDependencies, addDependencies;

        Driver() {
            Linker linker = Linker.nativeLinker();
            FunctionDescriptor edges = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
            FunctionDescriptor deps = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);
            FunctionDescriptor two = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
            getEdges = linker.downcallHandle(DriverLibrary.find("cuGraphGetEdges_v2", "12.3"), edges);
            removeDependencies = linker.downcallHandle(DriverLibrary.find("cuGraphRemoveDependencies_v2", "12.3"), deps);
            addDependencies = linker.downcallHandle(DriverLibrary.find("cuGraphAddDependencies_v2", "12.3"), deps);
            nodeType = linker.downcallHandle(DriverLibrary.find("cuGraphNodeGetType", "12.3"), two);
            kernelParams = linker.downcallHandle(DriverLibrary.find("cuGraphKernelNodeGetParams_v2", "12.3"), two);
            funcName = linker.downcallHandle(DriverLibrary.find("cuFuncGetName", "12.3"), two);
        }
    }
}
