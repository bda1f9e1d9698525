package dev.sparsa.testing;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A backend for core's tests that computes with the fp64 oracle (rounded to the output type) and
 * counts its prepares and runs, so that the SPI's generic code (ragged batches, the facade) can be
 * tested without a kernel module. Shipped in sparsa-core's test-jar.
 */
public final class OracleBackend implements AttentionBackend {
    /** Plans prepared. */
    public final AtomicInteger prepares = new AtomicInteger();
    /** Forward calls on prepared plans. */
    public final AtomicInteger runs = new AtomicInteger();

    @Override
    public String name() {
        return "oracle";
    }

    @Override
    public Availability availability() {
        return Availability.yes("fp64 oracle");
    }

    @Override
    public boolean supports(TileGeometry geometry) {
        return geometry != null;
    }

    @Override
    public String supportedGeometries() {
        return "any";
    }

    @Override
    public boolean runsOn(Device device) {
        return device != null && device.isHost();
    }

    @Override
    public Device defaultDevice() {
        return Device.CPU;
    }

    @Override
    public PreparedPlan prepare(SparsePlan plan, Device device) {
        prepares.incrementAndGet();
        return new PreparedPlan(plan, this, device) {
            @Override
            public long preparedBytes() {
                return 0;
            }

            @Override
            protected void release() {
            }
        };
    }

    @Override
    public void forward(PreparedPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        PreparedPlan p = ForwardArguments.prepared(plan, name(), PreparedPlan.class, Device.CPU);
        AttentionShape s = ForwardArguments.validate(p.plan(), q, k, v, out, lse, options);
        runs.incrementAndGet();
        Options o = Options.defaults().withCausal(p.plan().context().causal()).withRun(options);
        ReferenceResult r = ReferenceAttention.plan(p.plan(), q, k, v, o);
        float[] row = new float[s.valueDim()];
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                for (int i = 0; i < s.queryLength(); i++) {
                    for (int d = 0; d < row.length; d++) {
                        row[d] = (float) r.out(b, h, i, d);
                    }
                    out.writeRow(b, h, i, row, 0);
                    if (lse != null) {
                        lse.set(b, h, i, 0, (float) r.lse(b, h, i));
                    }
                }
            }
        }
    }
}
