package dev.sparsa.bench;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.cpu.KernelFlavour;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;

/**
 * What every attention benchmark holds: the CPU backend on its own pool, the problem, the plan and
 * the flops of one call. Built in {@code @Setup}; the measured method only calls {@code forward}.
 */
final class AttentionBenchState {
    final CpuBackend backend;
    final BenchProblem problem;
    final SparsePlan plan;
    final PreparedPlan prepared;
    final Options options;
    final double gflopPerCall;

    AttentionBenchState(AttentionShape shape, DType dtype, Options options, int threads,
                        java.util.function.Function<dev.sparsa.plan.PlanContext, SparsePlan> planner) {
        this.backend = new CpuBackend(threads);
        this.problem = new BenchProblem(shape, dtype, 42);
        this.options = options;
        this.plan = planner.apply(dev.sparsa.plan.PlanContext.of(shape, options));
        this.prepared = backend.prepare(plan);
        this.gflopPerCall = plan.flopsVisited() * 1e-9;
        // say which kernel runs, so that a silent scalar fallback cannot pass for a result
        System.out.println("attention bench: backend " + backend.name() + ", kernel " + backend.kernelDescription()
                + ", " + backend.parallelism() + " thread(s), " + dtype + ", " + shape + ", plan " + plan
                + String.format(", %.3f GFLOP per call", gflopPerCall));
        if (backend.flavour() != KernelFlavour.VECTOR) {
            System.out.println("attention bench: WARNING the scalar kernel runs; add --add-modules jdk.incubator.vector");
        }
    }

    void forward(GigaFlops counter) {
        backend.forward(prepared, problem.q, problem.k, problem.v, problem.out, null, options.run());
        counter.gflops += gflopPerCall;
    }
}
