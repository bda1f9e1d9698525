package dev.sparsa.backend;

import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * The checks every backend runs before a kernel: shapes against the plan, dtypes, devices, output
 * and LSE tensors, read-only outputs, unit last-axis strides, outputs that overlap inputs and (when
 * asked) finiteness. One place, for host and device tensors alike, so that every backend refuses the same
 * inputs with the same messages.
 */
public final class ForwardArguments {
    private ForwardArguments() {
    }

    /**
     * The prepared plan as the backend's own type, open, and for the tensors' device (or the host).
     *
     * @param backend the name of the backend checking
     * @param type    the backend's prepared-plan class
     * @throws IllegalArgumentException if the plan is null, was prepared by another backend, or is
     *     for another device than the tensors'
     * @throws IllegalStateException if it is closed
     */
    public static <P extends PreparedPlan> P prepared(PreparedPlan plan, String backend, Class<P> type, Device tensors) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        if (!type.isInstance(plan) || !plan.backend().name().equals(backend)) {
            throw new IllegalArgumentException("plan: prepared by " + plan.backend().name() + ", not by " + backend
                    + "; prepare it with this backend");
        }
        plan.requireOpen();
        if (!tensors.isHost() && !tensors.equals(plan.device())) {
            throw new IllegalArgumentException("plan: prepared for " + plan.device() + " but the tensors are on " + tensors);
        }
        return type.cast(plan);
    }

    /**
     * @return the shape of the call
     * @throws IllegalArgumentException naming the first argument that does not fit
     */
    public static AttentionShape validate(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                          RunOptions options) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        return validate(plan.shape(), q, k, v, out, lse, options);
    }

    /**
     * {@link #validate(SparsePlan, Tensor, Tensor, Tensor, Tensor, Tensor, RunOptions)} for a plan of
     * shape {@code planShape} whose lists are not on the host (a backend that estimates them on its
     * device).
     */
    public static AttentionShape validate(AttentionShape planShape, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                          RunOptions options) {
        if (planShape == null) {
            throw new IllegalArgumentException("planShape: must not be null");
        }
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        if (!s.equals(planShape)) {
            throw new IllegalArgumentException("plan: built for " + planShape + " but the tensors have " + s);
        }
        checkDtypesAndOutputs(s, q, k, v, out, lse, "");
        device(q, k, v, out, lse);
        for (Tensor t : new Tensor[] {out, lse}) {
            if (t != null && t.isHost() && t.segment().isReadOnly()) {
                throw new IllegalArgumentException((t == out ? "out" : "lse") + ": read-only memory; the kernel writes"
                        + " its results there");
            }
        }
        checkRowsAndAliasing(q, k, v, out, lse);
        if (options.validateFinite()) {
            if (!q.isHost()) {
                throw new IllegalArgumentException("options: validateFinite scans host tensors; these are on " + q.device());
            }
            q.requireFinite("q");
            k.requireFinite("k");
            v.requireFinite("v");
        }
        return s;
    }

    /**
     * The dtype a call on Q of {@code q} and K/V of {@code kv} runs in, which backends are chosen by:
     * e4m3 when K and V are (Q may then be in any dtype: the model's bf16 query against an FP8 cache),
     * else Q's (which K and V share).
     */
    public static DType inputType(DType q, DType kv) {
        return kv.isScaled() ? kv : q;
    }

    /**
     * Refuses inputs of mixed dtypes (but Q of any dtype with e4m3 K and V) and outputs that do not fit
     * shape {@code s}: {@code out} must be {@code [batch, qHeads, queryLength, valueDim]} in f32 or Q's
     * {@link DType#defaultOutput()} (Q's dtype; bf16 for e4m3), {@code lse} (when
     * given) f32 {@code [batch, qHeads, queryLength, 1]}. {@code outShapeNote} follows the expected
     * shape of {@code out} in its message.
     */
    static void checkDtypesAndOutputs(AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                      String outShapeNote) {
        if (v.dtype() != k.dtype() || k.dtype() != q.dtype() && !k.dtype().isScaled()) {
            // where only Q differs (a chunk against a cache, say), name the rounding that makes it fit
            String fix = v.dtype() == k.dtype() ? roundingHint(q, k.dtype()) : "";
            throw new IllegalArgumentException("dtype: q, k and v must share one dtype (q may differ from e4m3 k and v), got "
                    + q.dtype() + ", " + k.dtype() + ", " + v.dtype() + fix);
        }
        if (out == null) {
            throw new IllegalArgumentException("out: must not be null");
        }
        if (out.batch() != s.batch() || out.heads() != s.qHeads() || out.seqLen() != s.queryLength()
                || out.dim() != s.valueDim()) {
            throw new IllegalArgumentException("out: expected shape [" + s.batch() + ", " + s.qHeads() + ", "
                    + s.queryLength() + ", " + s.valueDim() + "]" + outShapeNote + ", got " + Arrays.toString(out.shape()));
        }
        if (out.dtype() != DType.F32 && out.dtype() != q.dtype().defaultOutput()) {
            throw new IllegalArgumentException("out: dtype must be f32 or " + q.dtype().defaultOutput() + " for "
                    + q.dtype() + " inputs, got " + out.dtype());
        }
        if (lse != null && (lse.dtype() != DType.F32 || lse.batch() != s.batch() || lse.heads() != s.qHeads()
                || lse.seqLen() != s.queryLength() || lse.dim() != 1)) {
            throw new IllegalArgumentException("lse: expected f32 [" + s.batch() + ", " + s.qHeads() + ", "
                    + s.queryLength() + ", 1], got " + lse.dtype() + " " + Arrays.toString(lse.shape()));
        }
    }

    /**
     * Refuses {@code q}, {@code k}, {@code v} or {@code out} whose last axis is not unit-stride, and
     * outputs whose memory overlaps an input's or each other's.
     */
    static void checkRowsAndAliasing(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        String[] names = {"q", "k", "v", "out"};
        Tensor[] tensors = {q, k, v, out};
        for (int i = 0; i < tensors.length; i++) {
            if (!tensors[i].isRowContiguous()) {
                throw new IllegalArgumentException(names[i] + ": the last axis must have stride 1, got strides "
                        + Arrays.toString(tensors[i].strides()));
            }
        }
        for (int i = 0; i < 3; i++) {
            if (overlap(out, tensors[i]) || (lse != null && overlap(lse, tensors[i]))) {
                throw new IllegalArgumentException((overlap(out, tensors[i]) ? "out" : "lse") + ": overlaps " + names[i]
                        + "'s memory; outputs must not alias inputs");
            }
        }
        if (lse != null && overlap(lse, out)) {
            throw new IllegalArgumentException("lse: overlaps out's memory");
        }
    }

    /**
     * The one device every given tensor lives on (nulls are skipped).
     *
     * @throws IllegalArgumentException naming two tensors on different devices
     */
    public static Device device(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        String[] names = {"q", "k", "v", "out", "lse"};
        Tensor[] tensors = {q, k, v, out, lse};
        Device d = null;
        String first = null;
        for (int i = 0; i < tensors.length; i++) {
            if (tensors[i] == null) {
                continue;
            }
            if (d == null) {
                d = tensors[i].device();
                first = names[i];
            } else if (!d.equals(tensors[i].device())) {
                throw new IllegalArgumentException("device: " + first + " is on " + d + " but " + names[i] + " is on "
                        + tensors[i].device() + "; a call's tensors live on one device");
            }
        }
        return d == null ? Device.CPU : d;
    }

    /** True when the byte ranges the two views reach in the same memory intersect. */
    static boolean overlap(Tensor a, Tensor b) {
        if (a.elementCount() == 0 || b.elementCount() == 0 || a.isHost() != b.isHost()) {
            return false;
        }
        long aStart;
        long bStart;
        if (a.isHost()) {
            var sa = a.segment();
            var sb = b.segment();
            if (sa.heapBase().isPresent() != sb.heapBase().isPresent()
                    || (sa.heapBase().isPresent() && sa.heapBase().get() != sb.heapBase().get())) {
                return false;
            }
            aStart = sa.address() + a.byteOffset();
            bStart = sb.address() + b.byteOffset();
        } else {
            if (a.deviceMemory() != b.deviceMemory() && a.deviceMemory().address() != b.deviceMemory().address()
                    && !ranges(a.deviceMemory().address(), a.deviceMemory().byteSize(), b.deviceMemory().address(),
                    b.deviceMemory().byteSize())) {
                return false;
            }
            aStart = a.deviceMemory().address() + a.byteOffset();
            bStart = b.deviceMemory().address() + b.byteOffset();
        }
        return ranges(aStart, a.spanBytes(), bStart, b.spanBytes());
    }

    private static boolean ranges(long aStart, long aBytes, long bStart, long bBytes) {
        return aStart < bStart + bBytes && bStart < aStart + aBytes;
    }

    /**
     * The part of a dtype message that names the rounding which makes a host query fit {@code target}:
     * {@code " (round q first: q.to(DType.X, Layout.BHSD))"}, or {@code ""} for a device query (which
     * the caller rounds on its device).
     */
    static String roundingHint(Tensor q, DType target) {
        return q.device().isHost() ? " (round q first: q.to(DType." + target.name() + ", Layout.BHSD))" : "";
    }
}
