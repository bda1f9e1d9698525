package dev.sparsa.cli.fuzz;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.cpu.CpuBackend;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import org.opentest4j.AssertionFailedError;

/**
 * The fuzz checks ({@link FuzzRunner}) as a jqwik property, short enough for every build: random
 * shapes (edge lengths included: 0, 1, one tile), dtypes, layouts, options, patterns and
 * parameters, and non-finite inputs, on the CPU backend. Long runs: {@code ./sparsa fuzz --cases N}.
 */
class FuzzProperties {
    private static final CpuBackend[] CPU = {null, new CpuBackend(1), new CpuBackend(2), new CpuBackend(3)};
    private static final FuzzRunner RUNNER = new FuzzRunner(t -> (AttentionBackend) CPU[t], true);

    @Property(tries = 100, seed = "20260101")
    void everyCaseMeetsTheContract(@ForAll("cases") FuzzCase c) {
        FuzzRunner.Outcome o = RUNNER.run(c);
        if (o.verdict() == FuzzRunner.Verdict.FAILED) {
            throw new AssertionFailedError(c + ": " + o.detail());
        }
    }

    @Provide
    Arbitrary<FuzzCase> cases() {
        Arbitrary<Integer> tile = Arbitraries.of(8, 16, 24, 32, 64);
        Arbitrary<Integer> length = Arbitraries.integers().between(0, 90).edgeCases(e -> e.includeOnly(0, 1, 8, 64, 65));
        Arbitrary<Integer> dim = Arbitraries.integers().between(1, 12).map(x -> 8 * x);
        var shape = Combinators.combine(Arbitraries.integers().between(1, 2), Arbitraries.integers().between(1, 3),
                Arbitraries.integers().between(1, 3), length, length, dim, dim).as(Tuple::of);
        var types = Combinators.combine(Arbitraries.of(DType.class), Arbitraries.of(Layout.BHSD, Layout.BSHD),
                Arbitraries.of(true, false), Arbitraries.of(true, false), tile, tile).as(Tuple::of);
        var offsets = Arbitraries.integers().between(-100, 100).injectNull(0.6);
        var numerics = Combinators.combine(Arbitraries.of(0f, 0f, 0f, 0.7f, 5f, 30f), Arbitraries.of(0.0, 0.0, 0.3, 1.0, 1e-3),
                Arbitraries.of(true, false), Arbitraries.integers().between(0, PatternSpecs.KINDS.size() - 1),
                Arbitraries.longs(), Arbitraries.longs(), Arbitraries.frequency(Tuple.of(12, 0), Tuple.of(1, 1), Tuple.of(1, 2), Tuple.of(1, 3), Tuple.of(1, 4)),
                Arbitraries.integers().between(1, 3)).as(Tuple::of);
        return Combinators.combine(shape, types, offsets, numerics).as((s, t, off, n) -> new FuzzCase(s.get1(), s.get2(),
                s.get3(), s.get4(), s.get5(), s.get6(), s.get7(), t.get1(), t.get2(), t.get3(), t.get4(), off, t.get5(),
                t.get6(), n.get1(), n.get2(), n.get3(), n.get4(), n.get5(), n.get6(), n.get7(), n.get8()));
    }
}
