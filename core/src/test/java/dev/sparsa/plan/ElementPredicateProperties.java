package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class ElementPredicateProperties {

    /** One of eight predicate shapes (0: causal or all only; 1–7: bands, strides, neighbourhoods, sinks). */
    private static ElementPredicate predicate(boolean causal, int kind, int a, int width, int sinks, int m) {
        ElementPredicate p = causal ? ElementPredicate.causalOnly() : ElementPredicate.all();
        return switch (kind) {
            case 1 -> p.withBand(a, a + width);
            case 2 -> p.withBand(a, a + width).withSinks(sinks);
            case 3 -> p.withStride(m, Math.floorMod(a, m), false);
            case 4 -> p.withStride(m, Math.floorMod(a, m), true).withSinks(sinks);
            case 5 -> p.withNeighbourhood(width + 1);
            case 6 -> p.withNeighbourhood(width + 1).withBand(a, a + 2 * width).withSinks(sinks);
            case 7 -> p.withBand(a, ElementPredicate.NO_UPPER).withStride(m, Math.floorMod(a, m), false).withSinks(sinks);
            default -> p;
        };
    }

    /** FULL and EMPTY are exact claims about every pair in the rectangle. */
    @Property(tries = 400)
    void classifyAgreesWithAdmits(@ForAll boolean causal, @ForAll @IntRange(min = 0, max = 7) int kind,
                                  @ForAll @IntRange(min = -40, max = 40) int a, @ForAll @IntRange(min = 0, max = 40) int width,
                                  @ForAll @IntRange(min = 0, max = 9) int sinks, @ForAll @IntRange(min = 1, max = 7) int m,
                                  @ForAll @IntRange(min = 0, max = 100) int qLo, @ForAll @IntRange(min = 1, max = 24) int qn,
                                  @ForAll @IntRange(min = 0, max = 100) int kLo, @ForAll @IntRange(min = 1, max = 24) int kn,
                                  @ForAll @IntRange(min = 1, max = 140) int keyLength) {
        ElementPredicate p = predicate(causal, kind, a, width, sinks, m);
        int kHi = Math.min(kLo + kn, keyLength) - 1;
        if (kHi < kLo) {
            return;
        }
        BlockClass c = p.classify(qLo, qLo + qn - 1, kLo, kHi, keyLength);
        int admitted = 0;
        int total = 0;
        for (int q = qLo; q < qLo + qn; q++) {
            for (int k = kLo; k <= kHi; k++) {
                total++;
                if (p.admits(q, k, keyLength)) {
                    admitted++;
                }
            }
        }
        if (c == BlockClass.FULL) {
            assertEquals(total, admitted, p + " claimed FULL");
        }
        if (c == BlockClass.EMPTY) {
            assertEquals(0, admitted, p + " claimed EMPTY");
        }
    }

    /** The O(1) counters equal a count of {@code admits} over the same keys or queries. */
    @Property(tries = 600)
    void countersAgreeWithAdmits(@ForAll boolean causal, @ForAll @IntRange(min = 0, max = 7) int kind,
                                 @ForAll @IntRange(min = -40, max = 40) int a, @ForAll @IntRange(min = 0, max = 40) int width,
                                 @ForAll @IntRange(min = 0, max = 9) int sinks, @ForAll @IntRange(min = 1, max = 7) int m,
                                 @ForAll @IntRange(min = -20, max = 100) int q, @ForAll @IntRange(min = -10, max = 100) int k,
                                 @ForAll @IntRange(min = 1, max = 70) int n, @ForAll @IntRange(min = 1, max = 140) int keyLength) {
        ElementPredicate p = predicate(causal, kind, a, width, sinks, m);
        long keys = 0;
        for (int kk = k; kk < k + n; kk++) {
            keys += kk >= 0 && kk < keyLength && p.admits(q, kk, keyLength) ? 1 : 0;
        }
        assertEquals(keys, p.countAdmittedKeys(q, k, k + n - 1, keyLength), p + " keys of query " + q);
        if (k >= 0 && k < keyLength) {
            long queries = 0;
            for (int qq = q; qq < q + n; qq++) {
                queries += p.admits(qq, k, keyLength) ? 1 : 0;
            }
            assertEquals(queries, p.countAdmittedQueries(q, q + n - 1, k, keyLength), p + " queries of key " + k);
        }
    }

    @Test
    void neighbourhoodSeesExactlyItsSizeAtEveryEdge() {
        ElementPredicate p = ElementPredicate.all().withNeighbourhood(5);
        for (int q = 0; q < 20; q++) {
            int n = 0;
            for (int k = 0; k < 20; k++) {
                n += p.admits(q, k, 20) ? 1 : 0;
            }
            assertEquals(5, n, "query " + q);
        }
        assertTrue(p.admits(0, 4, 20));
        assertFalse(p.admits(19, 14, 20));
    }

    @Test
    void sinksNeverBreakCausality() {
        ElementPredicate p = ElementPredicate.causalOnly().withBand(0, 0).withSinks(4);
        assertTrue(p.admits(3, 0, 10));
        assertFalse(p.admits(1, 3, 10));
        assertTrue(p.admits(7, 7, 10));
        assertFalse(p.admits(7, 5, 10));
    }

    @Test
    void badParametersNameThemselves() {
        assertThrows(IllegalArgumentException.class, () -> ElementPredicate.all().withBand(3, 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ElementPredicate.all().withStride(4, 4, false));
        assertTrue(e.getMessage().startsWith("stride"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ElementPredicate.all().withSinks(-1));
        assertTrue(e.getMessage().startsWith("sinks"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ElementPredicate.all().withNeighbourhood(-2));
        assertTrue(e.getMessage().startsWith("neighbourhood"), e.getMessage());
    }
}
