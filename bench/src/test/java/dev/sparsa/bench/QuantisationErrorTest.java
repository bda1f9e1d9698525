package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The quantisation table: its rows, and errors that order as the types' precision does. */
class QuantisationErrorTest {

    @Test
    void narrowerStorageCostsMoreAndF32CostsNothing() {
        List<QuantisationError.Row> rows = QuantisationError.measure(96);
        assertEquals(6, rows.size(), "two problems × three storages");
        for (int p = 0; p < 2; p++) {
            QuantisationError.Row bf16 = rows.get(3 * p);
            QuantisationError.Row fp8Cache = rows.get(3 * p + 1);
            QuantisationError.Row fp8All = rows.get(3 * p + 2);
            // bf16 keeps 8 mantissa bits, e4m3 4: errors of the order of 2^-9 and 2^-4 relative to the inputs
            assertTrue(bf16.relErr() > 0 && bf16.relErr() < 2e-2, bf16.toString());
            assertTrue(fp8Cache.relErr() > 2 * bf16.relErr() && fp8Cache.relErr() < 0.3, fp8Cache.toString());
            assertTrue(fp8All.relErr() > bf16.relErr() && fp8All.relErr() < 0.4, fp8All.toString());
            assertTrue(fp8All.lseErr() > 0, fp8All.toString());
        }
        assertThrows(IllegalArgumentException.class, () -> QuantisationError.measure(1));
    }
}
