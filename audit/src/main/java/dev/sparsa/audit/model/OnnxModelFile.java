package dev.sparsa.audit.model;

import com.google.protobuf.CodedInputStream;
import dev.sparsa.audit.onnx.OnnxIr.AttributeProto;
import dev.sparsa.audit.onnx.OnnxIr.GraphProto;
import dev.sparsa.audit.onnx.OnnxIr.ModelProto;
import dev.sparsa.audit.onnx.OnnxIr.NodeProto;
import dev.sparsa.audit.onnx.OnnxIr.TensorProto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * An ONNX model read with protobuf-java (the classes protoc generates from {@code onnx_ir.proto}):
 * its f32 initializers by name, the weight operand of a {@code MatMul} found by the node's output
 * name, and scalar {@code Constant}s. Weights live inside the model file (no external data).
 */
public final class OnnxModelFile {
    private final ModelProto model;
    private final Map<String, TensorProto> initializers = new HashMap<>();
    private final Map<String, NodeProto> producers = new HashMap<>();

    private OnnxModelFile(ModelProto model) {
        this.model = model;
        GraphProto g = model.getGraph();
        for (TensorProto t : g.getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        for (NodeProto n : g.getNodeList()) {
            for (String out : n.getOutputList()) {
                producers.put(out, n);
            }
        }
    }

    /** Parses a model from a stream (read to its end). @throws IOException for unreadable or malformed bytes */
    public static OnnxModelFile read(InputStream in) throws IOException {
        Objects.requireNonNull(in, "in");
        CodedInputStream coded = CodedInputStream.newInstance(in);
        coded.setSizeLimit(Integer.MAX_VALUE);
        return new OnnxModelFile(ModelProto.parseFrom(coded));
    }

    /** The parsed model. */
    public ModelProto model() {
        return model;
    }

    /** An f32 initializer's values (row-major) and shape. @throws IllegalArgumentException if missing or not f32 */
    public float[] floats(String name, long... expectedShape) {
        TensorProto t = initializers.get(name);
        if (t == null) {
            throw new IllegalArgumentException("model: no initializer named '" + name + "'");
        }
        return floats(t, expectedShape);
    }

    static float[] floats(TensorProto t, long... expectedShape) {
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            throw new IllegalArgumentException("model: initializer '" + t.getName() + "' has data type " + t.getDataType()
                    + ", expected FLOAT (1)");
        }
        List<Long> dims = t.getDimsList();
        if (expectedShape.length > 0 && !dims.equals(java.util.Arrays.stream(expectedShape).boxed().toList())) {
            throw new IllegalArgumentException("model: initializer '" + t.getName() + "' has shape " + dims + ", expected "
                    + java.util.Arrays.toString(expectedShape));
        }
        long n = dims.stream().mapToLong(Long::longValue).reduce(1, Math::multiplyExact);
        float[] out = new float[Math.toIntExact(n)];
        if (t.hasRawData()) {
            ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() != out.length * 4L) {
                throw new IllegalArgumentException("model: initializer '" + t.getName() + "' holds " + b.remaining()
                        + " bytes for " + out.length + " floats");
            }
            b.asFloatBuffer().get(out);
        } else {
            if (t.getFloatDataCount() != out.length) {
                throw new IllegalArgumentException("model: initializer '" + t.getName() + "' holds " + t.getFloatDataCount()
                        + " floats for shape " + dims);
            }
            for (int i = 0; i < out.length; i++) {
                out[i] = t.getFloatData(i);
            }
        }
        return out;
    }

    /**
     * The weight ({@code [in, out]}, row-major) of the {@code MatMul} node whose output is named
     * {@code output}: torch's exporter names nodes by module path and gives the transposed weights
     * generated names, so the graph, not the initializer name, says which weight is which.
     */
    public float[] matMulWeight(String output, long in, long out) {
        NodeProto n = producers.get(output);
        if (n == null || !n.getOpType().equals("MatMul") || n.getInputCount() != 2) {
            throw new IllegalArgumentException("model: no MatMul node produces '" + output + "'");
        }
        return floats(n.getInput(1), in, out);
    }

    /** The single f32 value of the {@code Constant} node producing {@code output}, or {@code fallback} if none. */
    public float constant(String output, float fallback) {
        NodeProto n = producers.get(output);
        if (n == null || !n.getOpType().equals("Constant")) {
            return fallback;
        }
        for (AttributeProto a : n.getAttributeList()) {
            if (a.getName().equals("value") && a.hasT()) {
                float[] v = floats(a.getT());
                if (v.length == 1) {
                    return v[0];
                }
            }
        }
        return fallback;
    }
}
