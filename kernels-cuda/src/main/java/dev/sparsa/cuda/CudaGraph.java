package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;

import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;

/**
 * A CUDA graph of the work that some calls queue on one stream, captured once and launched again
 * and again on that stream (as {@code torch.cuda.graph} does): every launch replays the captured
 * kernels and copies with the arguments they had at capture — the same tensors, the same device
 * addresses — at the cost of one launch. The calls captured must queue work without waiting
 * for it ({@link CudaDecodeStep#run} does; a decode call on a caller's stream does once it has run
 * before, so that its buffers have grown); a call that synchronizes the stream during the capture
 * fails it.
 *
 * <pre>{@code
 * try (CudaGraph graph = CudaGraph.capture(stream, () -> step.run(q, out, lse))) {
 *     for (...) {
 *         step.refresh();
 *         graph.launch();
 *     }
 * }
 * }</pre>
 *
 * Not thread-safe; close it (idempotent) to free the graph once no launch is needed.
 */
public final class CudaGraph implements AutoCloseable {
    private final CudaStream stream;
    private final CUgraph graph;
    private final CUgraphExec exec;
    private final int dependentEdges;
    private boolean closed;

    private CudaGraph(CudaStream stream, CUgraph graph, CUgraphExec exec, int dependentEdges) {
        this.stream = stream;
        this.graph = graph;
        this.exec = exec;
        this.dependentEdges = dependentEdges;
    }

    /**
     * Captures what {@code work} queues on {@code stream} (relaxed capture mode) and instantiates it;
     * nothing runs until {@link #launch()}.
     *
     * @throws IllegalArgumentException if an argument is null
     * @throws CudaException if the capture or the instantiation fails (the stream is left out of
     *     capture mode)
     * @throws IllegalArgumentException if the system property {@code sparsa.cuda.dependentLaunch} holds
     *     anything but {@code on} or {@code off}
     */
    public static CudaGraph capture(CudaStream stream, Runnable work) {
        if (stream == null || work == null) {
            throw new IllegalArgumentException("stream and work: must not be null");
        }
        DependentLaunch.mode();  // a bad property fails here, before anything is captured
        stream.device().makeCurrent();
        Cuda.check(cuStreamBeginCapture(stream.handle(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture");
        CUgraph graph = new CUgraph();
        try {
            work.run();
        } catch (RuntimeException | Error e) {
            // end the capture so that the stream can be used again; the partial graph is dropped
            if (cuStreamEndCapture(stream.handle(), graph) == 0) {
                cuGraphDestroy(graph);
            }
            throw e;
        }
        stream.device().makeCurrent();
        Cuda.check(cuStreamEndCapture(stream.handle(), graph), "cuStreamEndCapture");
        int dependent;
        try {
            dependent = DependentLaunch.rewrite(graph, stream.device().computeCapability());
        } catch (RuntimeException e) {
            cuGraphDestroy(graph);
            throw e;
        }
        CUgraphExec exec = new CUgraphExec();
        int r = cuGraphInstantiate(exec, graph, 0);
        if (r != 0) {
            cuGraphDestroy(graph);
            Cuda.check(r, "cuGraphInstantiate");
        }
        return new CudaGraph(stream, graph, exec, dependent);
    }

    /**
     * How many of the graph's kernel-to-kernel edges are programmatic: the next kernel starts while the one
     * before still runs and waits for it inside (0 when the system property {@code sparsa.cuda.dependentLaunch}
     * is {@code off}, before Hopper, when the driver cannot, or when no captured kernel waits so; see "Dependent
     * launches in graphs" in docs/decode.md).
     */
    public int dependentEdges() {
        return dependentEdges;
    }

    /** The stream the graph was captured on and launches on. */
    public CudaStream stream() {
        return stream;
    }

    /**
     * Queues one replay of the graph on its stream, without waiting.
     *
     * @throws IllegalStateException if the graph is closed
     */
    public void launch() {
        if (closed) {
            throw new IllegalStateException("graph: already closed");
        }
        stream.device().makeCurrent();
        Cuda.check(cuGraphLaunch(exec, stream.handle()), "cuGraphLaunch");
    }

    /** Frees the graph after the stream's queued launches have finished (idempotent). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        stream.device().makeCurrent();
        try {
            stream.synchronize();
        } finally {
            cuGraphExecDestroy(exec);
            cuGraphDestroy(graph);
        }
    }
}
