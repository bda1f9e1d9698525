package dev.sparsa.attention;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.PlanShards;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.LseMerge;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * One attention over several devices: the plan split by {@link PlanShards}, each shard prepared and
 * run on its device's backend, the results put together (head shards written into their rows; key
 * shards merged through the LSE on the host, in shard order, so the result is reproducible).
 * Inputs that live on another device than a shard's are staged through the host.
 */
final class ShardedRun {
    private ShardedRun() {
    }

    /** One shard: its plan, where it runs, and the views it reads and writes. */
    private record Shard(SparsePlan plan, Device device, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
    }

    static AttentionResult run(SparsePlan plan, Tensor q, Tensor k, Tensor v, RunOptions options, Sharding sharding,
                               boolean withLse) {
        AttentionShape s = plan.shape();
        Device home = ForwardArguments.device(q, k, v, null, null);
        AttentionBackend homeBackend = Backends.preferred(home.isHost() ? null : home, s, q.dtype(), k.dtype(),
                plan.geometry());
        DType outType = options.outputTypeFor(q.dtype());
        Tensor out = homeBackend.allocate(home, outType, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim());
        Tensor lse = withLse || sharding.mode() == Sharding.Mode.KEYS
                ? homeBackend.allocate(home, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1) : null;
        try {
            if (sharding.mode() == Sharding.Mode.HEADS) {
                runHeads(plan, q, k, v, out, lse, options, sharding.devices(), home);
            } else {
                runKeys(plan, q, k, v, out, lse, options, sharding.devices(), home);
            }
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
        if (!withLse && lse != null) {
            lse.close();
            lse = null;
        }
        return new AttentionResult(out, lse, java.util.List.of(DispatchDecision.given(plan)));
    }

    private static void runHeads(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options,
                                 List<Device> devices, Device home) {
        AttentionShape s = plan.shape();
        int n = Math.min(devices.size(), s.kvHeads());
        int group = s.groupSize();
        List<Shard> shards = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int g0 = (int) ((long) i * s.kvHeads() / n);
            int g1 = (int) ((long) (i + 1) * s.kvHeads() / n);
            int h0 = g0 * group;
            int h1 = g1 * group;
            shards.add(new Shard(PlanShards.heads(plan, h0, h1), devices.get(i), q.narrowHeads(h0, h1 - h0),
                    k.narrowHeads(g0, g1 - g0), v.narrowHeads(g0, g1 - g0), out.narrowHeads(h0, h1 - h0),
                    lse == null ? null : lse.narrowHeads(h0, h1 - h0)));
        }
        execute(shards, options, home);
    }

    private static void runKeys(SparsePlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options,
                                List<Device> devices, Device home) {
        AttentionShape s = plan.shape();
        List<SparsePlan> plans = PlanShards.balancedKeys(plan, devices.size());
        List<Shard> shards = new ArrayList<>();
        RunOptions partialOptions = options.withOutputDType(DType.F32);
        try {
            for (int i = 0; i < plans.size(); i++) {
                // partials in f32 on the host: the merge reads them there
                shards.add(new Shard(plans.get(i), devices.get(i), q, k, v,
                        Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), s.valueDim()),
                        Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1)));
            }
            execute(shards, partialOptions, Device.CPU);
            Tensor accOut = shards.get(0).out();
            Tensor accLse = shards.get(0).lse();
            for (int i = 1; i < shards.size(); i++) {
                LseMerge.merge(accOut, accLse, shards.get(i).out(), shards.get(i).lse(), accOut, accLse);
            }
            Tensor.copy(out.dtype() == DType.F32 ? accOut : accOut.to(out.dtype(), Layout.BHSD), out);
            Tensor.copy(accLse, lse);
        } finally {
            for (Shard sh : shards) {
                sh.out().close();
                sh.lse().close();
            }
        }
    }

    /** Runs every shard, concurrently when any runs on an accelerator; the first failure is rethrown. */
    private static void execute(List<Shard> shards, RunOptions options, Device outputs) {
        boolean accelerated = shards.stream().anyMatch(sh -> !sh.device().isHost());
        if (!accelerated || shards.size() == 1) {
            for (Shard sh : shards) {
                runShard(sh, options, outputs);
            }
            return;
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(shards.size(), r -> {
            Thread t = new Thread(r, "sparsa-shard");
            t.setDaemon(true);
            return t;
        })) {
            List<Future<?>> running = new ArrayList<>();
            for (Shard sh : shards) {
                running.add(pool.submit(() -> runShard(sh, options, outputs)));
            }
            RuntimeException failure = null;
            for (Future<?> f : running) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = e.getCause() instanceof RuntimeException re ? re
                                : new IllegalStateException("shard failed", e.getCause());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failure = new IllegalStateException("interrupted while shards ran", e);
                }
            }
            if (failure != null) {
                throw failure;
            }
        }
    }

    /**
     * Prepares and runs one shard on its device. Inputs on the host, or on the shard's device, are
     * passed as they are (a backend stages host tensors itself); inputs on another device, and the
     * outputs when they live elsewhere, travel through the host.
     */
    private static void runShard(Shard sh, RunOptions options, Device outputs) {
        AttentionShape s = sh.plan().shape();
        AttentionBackend backend = Backends.preferred(sh.device(), s, sh.q().dtype(), sh.plan().geometry());
        Device inputs = sh.q().device();
        boolean direct = inputs.isHost() || inputs.equals(sh.device());
        boolean directOut = outputs.equals(inputs) && direct;
        List<Tensor> staged = new ArrayList<>();
        try (PreparedPlan prepared = backend.prepare(sh.plan(), sh.device())) {
            Tensor q = direct ? sh.q() : stage(backend, sh.device(), sh.q(), staged);
            Tensor k = direct ? sh.k() : stage(backend, sh.device(), sh.k(), staged);
            Tensor v = direct ? sh.v() : stage(backend, sh.device(), sh.v(), staged);
            Tensor out = directOut ? sh.out() : empty(backend, inputs.isHost() ? Device.CPU : sh.device(), sh.out(), staged);
            Tensor lse = sh.lse() == null ? null
                    : directOut ? sh.lse() : empty(backend, inputs.isHost() ? Device.CPU : sh.device(), sh.lse(), staged);
            backend.forward(prepared, q, k, v, out, lse, options);
            if (!directOut) {
                Tensor.copy(out, sh.out());
                if (lse != null) {
                    Tensor.copy(lse, sh.lse());
                }
            }
        } finally {
            staged.forEach(Tensor::close);
        }
    }

    private static Tensor stage(AttentionBackend backend, Device device, Tensor t, List<Tensor> staged) {
        Tensor d = backend.allocate(device, t.dtype(), Layout.BHSD, t.batch(), t.heads(), t.seqLen(), t.dim());
        staged.add(d);
        Tensor.copy(t, d);
        return d;
    }

    private static Tensor empty(AttentionBackend backend, Device device, Tensor like, List<Tensor> staged) {
        Tensor d = backend.allocate(device, like.dtype(), Layout.BHSD, like.batch(), like.heads(), like.seqLen(), like.dim());
        staged.add(d);
        return d;
    }
}
