package dev.sparsa.cli.fuzz;

import dev.sparsa.tensor.Device;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.opentest4j.AssertionFailedError;

/**
 * The ragged-batch fuzz checks ({@link RaggedFuzzRunner}) as a jqwik property, short enough for every
 * build: packed and padded batches with empty sequences, static and data-dependent patterns, on the
 * CPU. Long runs: {@code ./sparsa fuzz --ragged --cases N}.
 */
class RaggedFuzzProperties {
    private static final RaggedFuzzRunner RUNNER = new RaggedFuzzRunner(Device.CPU);

    @Property(tries = 200, seed = "20261205")
    void everyRaggedCaseMeetsTheContract(@ForAll long seed) {
        RaggedFuzzCase c = RaggedFuzzCase.random(new SplittableRandom(seed), 100, 256, false);
        FuzzRunner.Outcome o = RUNNER.run(c);
        if (o.verdict() == FuzzRunner.Verdict.FAILED) {
            throw new AssertionFailedError(c + ": " + o.detail());
        }
    }
}
