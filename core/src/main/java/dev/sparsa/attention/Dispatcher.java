package dev.sparsa.attention;

import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.pattern.PlanningCost;
import dev.sparsa.plan.BlockExpansion;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.tensor.DType;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The drop-in call's choice between a pattern's plan, its block-expanded form ({@link
 * BlockExpansion}) and dense attention ({@link Dispatch}). Deterministic: it reads only the plan,
 * the context, the dtype and the backend's {@link KernelCostModel}, never a clock, so the same call
 * on the same configuration always runs the same plan.
 *
 * <p>In {@link Dispatch#AUTO}:
 * <ol>
 *   <li>before planning a data-dependent pattern that reports its {@link PlanningCost}: when the
 *       scoring's multiply-adds, weighted by its cost per multiply-add, at {@link
 *       #planNanosPerMac()} would take at least as long as the model's dense kernel, dense attention
 *       runs and the pattern is not planned;
 *   <li>after planning: a plan that is not replaceable ({@link BlockExpansion#whyNotReplaceable})
 *       runs as it is; otherwise the model estimates the plan, its block-expanded form (built only
 *       for plans with listed or short tiles, gathered keys or element tests beyond the causal
 *       diagonal, where it can be cheaper) and dense attention, and a substitute runs when its
 *       estimate is below {@link #SUBSTITUTE_BELOW} times the plan's, the cheaper substitute first
 *       (dense attention on a tie).
 * </ol>
 * Each distinct decision (pattern, shape, backend, dtype, outcome) is logged once at {@code FINE}
 * on this class's logger.
 */
public final class Dispatcher {
    private static final Logger LOG = Logger.getLogger(Dispatcher.class.getName());

    /** A substitute runs only when the model puts it below this fraction of the plan's estimate. */
    public static final double SUBSTITUTE_BELOW = 0.9;

    /** System property: host nanoseconds per scoring multiply-add of an estimator. */
    public static final String PLAN_NANOS_PROPERTY = "sparsa.dispatch.planNanosPerMac";

    /**
     * Host nanoseconds per scoring multiply-add of exact per-query top-k when the property is not
     * set: its steady-state rate on the 2-vCPU AMD EPYC (Zen 5) machine of docs/PERFORMANCE.md (top-k
     * per query and per query block: 0.81–0.84 ns); other estimators scale it by their {@link
     * PlanningCost#costPerMac()}.
     */
    public static final double DEFAULT_PLAN_NANOS_PER_MAC = 0.8;

    private static final int LOGGED_MAX = 4096;
    private static final Set<String> LOGGED = ConcurrentHashMap.newKeySet();

    private Dispatcher() {
    }

    /**
     * Host nanoseconds per scoring multiply-add: {@value #PLAN_NANOS_PROPERTY} when set to a finite
     * positive number, else {@link #DEFAULT_PLAN_NANOS_PER_MAC}.
     */
    public static double planNanosPerMac() {
        String p = System.getProperty(PLAN_NANOS_PROPERTY);
        if (p != null) {
            try {
                double v = Double.parseDouble(p.trim());
                if (v > 0 && Double.isFinite(v)) {
                    return v;
                }
            } catch (NumberFormatException e) {
                // fall through to the default
            }
            LOG.warning(PLAN_NANOS_PROPERTY + "=" + p + " is not a positive number; using " + DEFAULT_PLAN_NANOS_PER_MAC);
        }
        return DEFAULT_PLAN_NANOS_PER_MAC;
    }

    /** Estimated host milliseconds of planning {@code pattern} in {@code ctx}: 0 for static or unreporting patterns. */
    public static double planningMillis(Pattern pattern, PlanContext ctx) {
        if (!pattern.dataDependent() || !(pattern instanceof PlanningCost c)) {
            return 0;
        }
        return c.scoringMacs(ctx) * c.costPerMac() * planNanosPerMac() * 1e-6;
    }

    /**
     * The decision to make before planning: dense attention when the mode asks for it, or, in AUTO,
     * when planning a data-dependent pattern alone is estimated to cost at least the dense kernel;
     * null when the pattern should be planned.
     *
     * @param dense supplies the dense plan of {@code ctx} (called only when dense runs)
     */
    public static DispatchDecision beforePlanning(Dispatch mode, Pattern pattern, PlanContext ctx, KernelCostModel model,
                                                  DType dtype, Supplier<SparsePlan> dense) {
        if (mode == Dispatch.DENSE) {
            return new DispatchDecision(mode, Ran.DENSE, dense.get(), Double.NaN, Double.NaN, Double.NaN, 0, "",
                    "dense attention was asked for");
        }
        if (mode == Dispatch.SPARSE || !pattern.dataDependent()) {
            return null;
        }
        double planning = planningMillis(pattern, ctx);
        if (planning == 0) {
            return null;
        }
        double d = model.denseMillis(ctx, dtype);
        if (planning < d) {
            return null;
        }
        return new DispatchDecision(mode, Ran.DENSE, dense.get(), Double.NaN, Double.NaN, d, planning,
                model.description(), String.format("planning %s alone (est. %.3g ms) costs more than the dense kernel "
                        + "(est. %.3g ms)", pattern.name(), planning, d));
    }

    /**
     * The decision for a plan just made (or taken from the cache).
     *
     * @param planning the estimated planning time it cost (for the record)
     * @param dense    supplies the dense plan of the plan's context (called only when dense runs)
     */
    public static DispatchDecision afterPlanning(Dispatch mode, SparsePlan plan, double planning, KernelCostModel model,
                                                 DType dtype, Supplier<SparsePlan> dense) {
        if (mode == Dispatch.DENSE) {
            return new DispatchDecision(mode, Ran.DENSE, dense.get(), Double.NaN, Double.NaN, Double.NaN, planning, "",
                    "dense attention was asked for");
        }
        if (mode == Dispatch.SPARSE) {
            return new DispatchDecision(mode, Ran.SPARSE, plan, Double.NaN, Double.NaN, Double.NaN, planning, "",
                    "the pattern's plan was asked for");
        }
        String why = BlockExpansion.whyNotReplaceable(plan);
        if (why != null) {
            return new DispatchDecision(mode, Ran.SPARSE, plan, Double.NaN, Double.NaN, Double.NaN, planning, "",
                    "no substitute keeps the plan's meaning: " + why);
        }
        double s = model.millis(plan, dtype);
        double d = model.denseMillis(plan.context(), dtype);
        SparsePlan expanded = worthExpanding(plan) ? BlockExpansion.expand(plan) : null;
        double e = expanded == null ? Double.NaN : model.millis(expanded, dtype);
        Ran ran = choose(s, e, d);
        SparsePlan runs = switch (ran) {
            case SPARSE -> plan;
            case BLOCK_EXPANDED -> expanded;
            case DENSE -> dense.get();
            case DEVICE_ESTIMATED -> throw new AssertionError("choose never picks " + ran);
        };
        String reason = switch (ran) {
            case SPARSE -> "the plan is estimated fastest";
            case BLOCK_EXPANDED -> "its block-expanded form is estimated faster than the plan";
            case DENSE -> "dense attention is estimated faster than the plan";
            case DEVICE_ESTIMATED -> throw new AssertionError("choose never picks " + ran);
        };
        return new DispatchDecision(mode, ran, runs, s, e, d, planning, model.description(), reason);
    }

    /**
     * The choice among kernel estimates (NaN: not a candidate): the plan, unless a substitute is
     * below {@link #SUBSTITUTE_BELOW} times its estimate; then the cheaper substitute, dense
     * attention on a tie (its plan is shared and cached).
     */
    static Ran choose(double sparse, double expanded, double dense) {
        double bar = sparse * SUBSTITUTE_BELOW;
        boolean e = expanded < bar;
        boolean d = dense < bar;
        if (e && d) {
            return dense <= expanded ? Ran.DENSE : Ran.BLOCK_EXPANDED;
        }
        return e ? Ran.BLOCK_EXPANDED : d ? Ran.DENSE : Ran.SPARSE;
    }

    /**
     * Whether the block-expanded form can differ in cost from the plan: it has listed rows, tiles
     * shorter than the tiling (other than the last), gathered or unconditional keys, or partial
     * blocks under a predicate beyond the causal diagonal.
     */
    static boolean worthExpanding(SparsePlan plan) {
        int rows = plan.geometry().tileRows();
        int nq = plan.shape().queryLength();
        for (HeadLayout lay : plan.layouts()) {
            ElementPredicate p = lay.predicate();
            boolean plainMask = p.onlyCausal() && p.sinks() == 0;
            for (int t = 0; t < lay.tileCount(); t++) {
                if (lay.isListed(t) || lay.gatherEnd(t) > lay.gatherStart(t)
                        || lay.unconditionalEnd(t) > lay.unconditionalStart(t)
                        || (!plainMask && lay.partialEnd(t) > lay.partialStart(t))
                        || (lay.rowCount(t) < rows && lay.rowStart(t) + lay.rowCount(t) < nq)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Logs a decision at FINE the first time its (pattern, context, backend, dtype, outcome) is seen. */
    static void logOnce(DispatchDecision d, String pattern, PlanContext ctx, String backend, DType dtype) {
        if (!LOG.isLoggable(Level.FINE) || LOGGED.size() >= LOGGED_MAX) {
            return;
        }
        String key = pattern + "|" + ctx + "|" + backend + "|" + dtype + "|" + d.mode() + "|" + d.ran();
        if (LOGGED.add(key)) {
            LOG.fine("sparsa " + backend + " " + dtype + " " + pattern + " at " + ctx.shape() + ": " + d);
        }
    }
}
