package dev.sparsa.audit.model;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.sparsa.audit.onnx.OnnxIr.AttributeProto;
import dev.sparsa.audit.onnx.OnnxIr.GraphProto;
import dev.sparsa.audit.onnx.OnnxIr.ModelProto;
import dev.sparsa.audit.onnx.OnnxIr.NodeProto;
import dev.sparsa.audit.onnx.OnnxIr.OperatorSetIdProto;
import dev.sparsa.audit.onnx.OnnxIr.TensorProto;
import dev.sparsa.audit.onnx.OnnxIr.TensorShapeProto;
import dev.sparsa.audit.onnx.OnnxIr.TypeProto;
import dev.sparsa.audit.onnx.OnnxIr.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * ONNX Runtime's attention, as a JVM user would call it: a one-node graph with ONNX's standard
 * {@code Attention} operator (opset 23), Q, K, V of shape {@code [B, H, N, D]} in f32, optionally
 * causal ({@code is_causal}) and with a boolean mask {@code [N, N]} (true: the pair takes part).
 * The graph is written with the same protobuf classes that read the MiniLM model. AutoCloseable: it
 * owns a session and its input tensors.
 */
public final class OrtAttention implements AutoCloseable {
    private final OrtSession session;
    private final Map<String, OnnxTensor> inputs = new HashMap<>();

    /**
     * A session for {@code [batch, heads, n, dim]} attention on {@code threads} intra-op threads.
     *
     * @param mask {@code mask[i][j]} true where query i may attend key j, or null for none
     */
    public OrtAttention(int batch, int heads, int n, int dim, boolean causal, boolean[][] mask, int threads)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(threads);
            opts.setInterOpNumThreads(1);
            opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(model(batch, heads, n, dim, causal, mask != null).toByteArray(), opts);
        }
        if (mask != null) {
            ByteBuffer m = ByteBuffer.allocateDirect(n * n);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    m.put((byte) (mask[i][j] ? 1 : 0));
                }
            }
            m.flip();
            inputs.put("mask", OnnxTensor.createTensor(env, m, new long[] {n, n}, ai.onnxruntime.OnnxJavaType.BOOL));
        }
    }

    /** The one-node model. */
    static ModelProto model(int batch, int heads, int n, int dim, boolean causal, boolean masked) {
        long[] shape = {batch, heads, n, dim};
        NodeProto.Builder node = NodeProto.newBuilder().setOpType("Attention").setName("attention")
                .addInput("q").addInput("k").addInput("v").addOutput("y")
                .addAttribute(AttributeProto.newBuilder().setName("is_causal").setType(AttributeProto.AttributeType.INT)
                        .setI(causal ? 1 : 0));
        GraphProto.Builder g = GraphProto.newBuilder().setName("attention")
                .addInput(value("q", TensorProto.DataType.FLOAT, shape))
                .addInput(value("k", TensorProto.DataType.FLOAT, shape))
                .addInput(value("v", TensorProto.DataType.FLOAT, shape))
                .addOutput(value("y", TensorProto.DataType.FLOAT, shape));
        if (masked) {
            node.addInput("mask");
            g.addInput(value("mask", TensorProto.DataType.BOOL, new long[] {n, n}));
        }
        g.addNode(node);
        return ModelProto.newBuilder().setIrVersion(10).setProducerName("sparsa")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(23)).setGraph(g).build();
    }

    private static ValueInfoProto value(String name, TensorProto.DataType type, long[] dims) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        for (long d : dims) {
            s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(s))).build();
    }

    /** Sets Q, K, V (row-major {@code [B, H, N, D]} f32 in direct buffers the session reads without copying). */
    public void setInputs(FloatBuffer q, FloatBuffer k, FloatBuffer v, long[] shape) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        for (String name : new String[] {"q", "k", "v"}) {
            OnnxTensor old = inputs.remove(name);
            if (old != null) {
                old.close();
            }
        }
        inputs.put("q", OnnxTensor.createTensor(env, q, shape));
        inputs.put("k", OnnxTensor.createTensor(env, k, shape));
        inputs.put("v", OnnxTensor.createTensor(env, v, shape));
    }

    /** Runs the graph; the result owns the output ({@code y}), close it. */
    public OrtSession.Result run() throws OrtException {
        return session.run(inputs);
    }

    /** Runs the graph and copies the output. */
    public float[] runToArray() throws OrtException {
        try (OrtSession.Result r = run()) {
            FloatBuffer y = ((OnnxTensor) r.get(0)).getFloatBuffer();
            float[] out = new float[y.remaining()];
            y.get(out);
            return out;
        }
    }

    /** A direct native-order buffer holding {@code values}. */
    public static FloatBuffer direct(float[] values) {
        FloatBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        b.put(values).flip();
        return b;
    }

    @Override
    public void close() throws OrtException {
        for (OnnxTensor t : inputs.values()) {
            t.close();
        }
        session.close();
    }
}
