package dev.sparsa.cli.fuzz;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.cpu.CpuBackend;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.opentest4j.AssertionFailedError;

/**
 * The decode fuzz checks ({@link DecodeFuzzRunner}) as a jqwik property, short enough for every
 * build: cases drawn by {@link DecodeFuzzCase#random} (ragged lengths from 0, contiguous and paged
 * caches with NaN past every length, every decode pattern, split rules, soft-cap, scales, non-finite
 * inputs) on the CPU backend. Long runs: {@code ./sparsa fuzz --decode --cases N}.
 */
class DecodeFuzzProperties {
    private static final CpuBackend[] CPU = {null, new CpuBackend(1), new CpuBackend(2), new CpuBackend(3)};
    private static final DecodeFuzzRunner RUNNER = new DecodeFuzzRunner(t -> (AttentionBackend) CPU[t], true);

    @Property(tries = 300, seed = "20261205")
    void everyDecodeCaseMeetsTheContract(@ForAll long seed) {
        DecodeFuzzCase c = DecodeFuzzCase.random(new SplittableRandom(seed), 120, 256, false);
        FuzzRunner.Outcome o = RUNNER.run(c);
        if (o.verdict() == FuzzRunner.Verdict.FAILED) {
            throw new AssertionFailedError(c + ": " + o.detail());
        }
    }
}
