package dev.sparsa.backend;

import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Device;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link RaggedPlan} in one backend's form on one device: a {@link PreparedPlan} per distinct
 * sequence plan (sequences of equal lengths that share a plan share its prepared form; sequences
 * without queries or keys need none). Made by {@link AttentionBackend#prepare(RaggedPlan, Device)},
 * which owns the prepared plans and releases them on {@link #close()}, or assembled by {@link
 * #borrowing} from prepared plans someone else owns (the drop-in call's cache), which {@link
 * #close()} leaves open.
 *
 * <p>Thread-safe as {@link PreparedPlan} is: concurrent runs may share it; {@link #close()} must not
 * race with them.
 */
public final class PreparedRaggedPlan implements AutoCloseable {
    private final RaggedPlan plan;
    private final AttentionBackend backend;
    private final Device device;
    private final Map<SparsePlan, PreparedPlan> prepared;
    private final boolean owner;
    private volatile boolean closed;

    private PreparedRaggedPlan(RaggedPlan plan, AttentionBackend backend, Device device,
                               Map<SparsePlan, PreparedPlan> prepared, boolean owner) {
        this.plan = plan;
        this.backend = backend;
        this.device = device;
        this.prepared = prepared;
        this.owner = owner;
    }

    /**
     * Prepares every distinct plan of {@code plan} that has queries and keys on {@code backend};
     * the result owns them.
     *
     * @throws IllegalArgumentException as {@link AttentionBackend#prepare(SparsePlan, Device)}
     */
    static PreparedRaggedPlan prepare(AttentionBackend backend, RaggedPlan plan, Device device) {
        if (backend == null || plan == null || device == null) {
            throw new IllegalArgumentException("backend, plan and device: must not be null");
        }
        Map<SparsePlan, PreparedPlan> map = new IdentityHashMap<>();
        try {
            for (SparsePlan p : plan.distinctPlans()) {
                if (runs(p)) {
                    map.put(p, backend.prepare(p, device));
                }
            }
        } catch (RuntimeException | Error e) {
            map.values().forEach(PreparedPlan::close);
            throw e;
        }
        return new PreparedRaggedPlan(plan, backend, device, map, true);
    }

    /**
     * A prepared ragged plan over prepared plans the caller keeps owning ({@link #close()} does not
     * close them): {@code prepared} must hold, for every distinct sequence plan with queries and
     * keys, an open prepared plan of that plan from {@code backend} on {@code device}.
     *
     * @throws IllegalArgumentException naming the sequence whose plan has no fitting prepared form
     */
    public static PreparedRaggedPlan borrowing(RaggedPlan plan, AttentionBackend backend, Device device,
                                               Map<SparsePlan, PreparedPlan> prepared) {
        if (plan == null || backend == null || device == null || prepared == null) {
            throw new IllegalArgumentException("plan, backend, device and prepared: must not be null");
        }
        Map<SparsePlan, PreparedPlan> map = new IdentityHashMap<>();
        for (int i = 0; i < plan.sequences(); i++) {
            SparsePlan p = plan.plan(i);
            if (!runs(p)) {
                continue;
            }
            PreparedPlan pp = prepared.get(p);
            if (pp == null || pp.plan() != p || !pp.backend().name().equals(backend.name()) || !pp.device().equals(device)) {
                throw new IllegalArgumentException("prepared: sequence " + i + "'s plan has no prepared form of "
                        + backend.name() + " on " + device + " (got " + pp + ")");
            }
            map.put(p, pp);
        }
        return new PreparedRaggedPlan(plan, backend, device, map, false);
    }

    /** True when a sequence's plan has rows and keys, so that a kernel runs it. */
    static boolean runs(SparsePlan p) {
        return p.shape().queryLength() > 0 && p.shape().keyLength() > 0;
    }

    /** The ragged plan this was prepared from. */
    public RaggedPlan plan() {
        return plan;
    }

    /** The backend that runs it. */
    public AttentionBackend backend() {
        return backend;
    }

    /** The device it runs on. */
    public Device device() {
        return device;
    }

    /**
     * Sequence {@code i}'s prepared plan, or null when the sequence has no queries or no keys (no
     * kernel runs for it).
     */
    public PreparedPlan prepared(int i) {
        requireOpen();
        return prepared.get(plan.plan(i));
    }

    /** The distinct prepared plans. */
    public List<PreparedPlan> preparedPlans() {
        return new ArrayList<>(prepared.values());
    }

    /** Bytes the backend holds for the distinct plans. */
    public long preparedBytes() {
        long b = 0;
        for (PreparedPlan p : prepared.values()) {
            b += p.preparedBytes();
        }
        return b;
    }

    /** False once closed. */
    public boolean isOpen() {
        return !closed;
    }

    /** @throws IllegalStateException once closed */
    public void requireOpen() {
        if (closed) {
            throw new IllegalStateException("prepared ragged plan: " + this + " is closed");
        }
    }

    /** Releases the prepared plans it owns (idempotent); borrowed ones stay open. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (owner) {
                prepared.values().forEach(PreparedPlan::close);
            }
        }
    }

    @Override
    public String toString() {
        return "PreparedRaggedPlan[" + plan.description() + " on " + backend.name() + " " + device + ", "
                + prepared.size() + " prepared plan(s)]";
    }
}
