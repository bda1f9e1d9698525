package dev.sparsa.attention;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Device;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The drop-in call's memory of static plans: a plan per (pattern, context), prepared once per
 * (backend, device), so that a loop calling {@link Attention#forward} with the same pattern and
 * shape plans and uploads once. Least recently used entries beyond {@link #CAPACITY} are dropped
 * (their prepared plans are freed by the garbage collector once no call uses them). Patterns are
 * matched by {@code equals}: record patterns match by value, others by identity. Thread-safe.
 */
final class PlanCache {
    /** Plans kept. */
    static final int CAPACITY = 64;

    private record Key(Pattern pattern, PlanContext context) {
    }

    private record Target(String backend, Device device) {
    }

    private static final class Cached {
        final SparsePlan plan;
        final Map<Target, PreparedPlan> prepared = new LinkedHashMap<>();

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

    /** The plan prepared on this backend and device, prepared on first use. */
    PreparedPlan prepared(Pattern pattern, PlanContext context, AttentionBackend backend, Device device) {
        Cached e = entry(pattern, context);
        Target t = new Target(backend.name(), device);
        synchronized (e) {
            PreparedPlan p = e.prepared.get(t);
            if (p == null || !p.isOpen()) {
                p = backend.prepare(e.plan, device);
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
