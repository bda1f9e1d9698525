package dev.sparsa.attention;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The drop-in call's memory of static plans: a plan per (pattern, context), the dispatch decision
 * per (backend, dtype, mode), and the prepared form of each plan that ran per (backend, device), so
 * that a loop calling {@link Attention#forward} with the same pattern and shape plans, decides and
 * uploads once. Least recently used entries beyond {@link #CAPACITY} are dropped (their prepared
 * plans are freed by the garbage collector once no call uses them). Patterns are matched by {@code
 * equals}: record patterns match by value, others by identity. Thread-safe.
 */
final class PlanCache {
    /** Plans kept. */
    static final int CAPACITY = 64;

    private record Key(Pattern pattern, PlanContext context) {
    }

    /** A prepared plan's target; plans compare by identity (the entry's plan or its block-expanded form). */
    private record Target(String backend, Device device, SparsePlan plan) {
    }

    private record Decided(String backend, DType dtype, Dispatch mode) {
    }

    private static final class Cached {
        final SparsePlan plan;
        final Map<Target, PreparedPlan> prepared = new LinkedHashMap<>();
        final Map<Decided, DispatchDecision> decisions = new LinkedHashMap<>();

        Cached(SparsePlan plan) {
            this.plan = plan;
        }
    }

    private final Map<Key, Cached> entries = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Cached> eldest) {
            return size() > CAPACITY;
        }
    };

    /** The plan of a static pattern in this context, planned on first use. */
    SparsePlan plan(Pattern pattern, PlanContext context) {
        return entry(pattern, context).plan;
    }

    /** The pattern's plan prepared on this backend and device, prepared on first use. */
    PreparedPlan prepared(Pattern pattern, PlanContext context, AttentionBackend backend, Device device) {
        Cached e = entry(pattern, context);
        return prepared(e, e.plan, backend, device);
    }

    /**
     * The prepared form of {@code plan}, which must be the pattern's plan or a plan derived from it
     * (its block-expanded form), kept with the pattern's entry.
     */
    PreparedPlan prepared(Pattern pattern, PlanContext context, SparsePlan plan, AttentionBackend backend, Device device) {
        return prepared(entry(pattern, context), plan, backend, device);
    }

    /** The dispatch decision for the pattern's plan, made on first use by {@code decide}. */
    DispatchDecision decision(Pattern pattern, PlanContext context, String backend, DType dtype, Dispatch mode,
                              Function<SparsePlan, DispatchDecision> decide) {
        Cached e = entry(pattern, context);
        Decided key = new Decided(backend, dtype, mode);
        synchronized (e) {
            DispatchDecision d = e.decisions.get(key);
            if (d != null) {
                return d;
            }
        }
        DispatchDecision fresh = decide.apply(e.plan);
        synchronized (e) {
            return e.decisions.computeIfAbsent(key, k -> fresh);
        }
    }

    private static PreparedPlan prepared(Cached e, SparsePlan plan, AttentionBackend backend, Device device) {
        Target t = new Target(backend.name(), device, plan);
        synchronized (e) {
            PreparedPlan p = e.prepared.get(t);
            if (p == null || !p.isOpen()) {
                p = backend.prepare(plan, device);
                e.prepared.put(t, p);
            }
            return p;
        }
    }

    /** Number of plans held (for tests). */
    synchronized int size() {
        return entries.size();
    }

    /** Drops every entry (for tests and for callers that change patterns for good). */
    synchronized void clear() {
        entries.clear();
    }

    private Cached entry(Pattern pattern, PlanContext context) {
        Key key = new Key(pattern, context);
        synchronized (this) {
            Cached e = entries.get(key);
            if (e != null) {
                return e;
            }
        }
        // plan outside the lock: planning a long sequence takes a while and other keys need not wait
        Cached fresh = new Cached(pattern.plan(context));
        synchronized (this) {
            return entries.computeIfAbsent(key, k -> fresh);
        }
    }
}
