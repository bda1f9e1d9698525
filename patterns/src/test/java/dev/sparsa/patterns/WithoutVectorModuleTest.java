package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.internal.VectorModule;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.ScoringProvider;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import org.junit.jupiter.api.Test;

/**
 * In a JVM started without {@code --add-modules jdk.incubator.vector} (the module pom's {@code
 * no-vector-module} execution, which runs this module's whole suite) the estimators run their
 * plain-Java loops, the library warned once naming the flag and the cost, and every data-dependent
 * pattern of the catalogue plans, deterministically. Skipped in JVMs that have the module.
 */
class WithoutVectorModuleTest {

    @Test
    void estimatorsRunInPlainJavaAfterOneWarning() {
        assumeTrue(!VectorModule.present(), "this JVM has jdk.incubator.vector; the no-vector-module execution covers it");
        assertEquals("plain Java", ScoringProvider.get().description());
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, ScoringProvider::vector);
        assertTrue(e.getMessage().contains(VectorModule.FLAG), e.getMessage());
        assertFalse(VectorModule.warnOnce("a second fallback"), "the provider's lookup already warned; only once per JVM");
        String w = VectorModule.warning("the estimators");
        assertTrue(w.contains("--add-modules jdk.incubator.vector") && w.contains("slower"), w);

        int planned = 0;
        for (CatalogueEntry c : PatternCatalogue.examples()) {
            Pattern p = c.pattern();
            if (!p.dataDependent()) {
                continue;
            }
            for (PlanContext ctx : CatalogueTest.contexts()) {
                SparsePlan a = CatalogueTest.planOn(p, ctx, 5);
                SparsePlan b = CatalogueTest.planOn(p, ctx, 5);
                assertEquals(a.pairsAdmitted(), b.pairsAdmitted(), c.description());
                assertEquals(a.layouts().size(), b.layouts().size(), c.description());
            }
            planned++;
        }
        assertTrue(planned >= 6, "data-dependent catalogue entries: " + planned);
    }
}
