package dev.sparsa.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.Patterns;
import dev.sparsa.tools.MaskRenderer;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Decorated mask pictures: the mask itself unchanged inside, text above, beside and below it. */
class MaskFigureTest {
    @TempDir
    Path dir;

    @Test
    void keepsTheMaskAndAddsTitleAxesAndLegend() {
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, 64, 64, 32),
                Options.causalMask().withGeometry(new TileGeometry(16, 16)));
        SparsePlan plan = Patterns.aShape(40, 4).plan(ctx);
        BufferedImage raw = MaskRenderer.tokens(plan);
        BufferedImage fig = MaskFigure.tokens(plan, "aShape(40, 4)", Integer.MAX_VALUE);
        assertTrue(fig.getWidth() > raw.getWidth() && fig.getHeight() > raw.getHeight() + 40);
        // the mask sits unscaled at (46, 24): every pixel as the renderer drew it
        for (int y = 0; y < raw.getHeight(); y++) {
            for (int x = 0; x < raw.getWidth(); x++) {
                assertEquals(raw.getRGB(x, y), fig.getRGB(46 + x, 24 + y), "pixel " + x + "," + y);
            }
        }
        assertTrue(inked(fig, 0, 0, fig.getWidth(), 22), "title");
        assertTrue(inked(fig, 0, 24, 44, 24 + raw.getHeight()), "query axis");
        assertTrue(inked(fig, 46, 24 + raw.getHeight() + 2, fig.getWidth(), 24 + raw.getHeight() + 32), "key axis");
        assertTrue(inked(fig, 0, 24 + raw.getHeight() + 34, fig.getWidth(), fig.getHeight()), "legend");
        assertTrue(has(fig, MaskRenderer.FULL) && has(fig, MaskRenderer.PARTIAL) && has(fig, MaskRenderer.GREY));
    }

    @Test
    void rendersTheCatalogueWithDecorations() throws Exception {
        List<Path> files = MaskFigure.renderCatalogue(dir);
        assertEquals(2 * MaskRenderer.examples().size(), files.size());
        BufferedImage first = ImageIO.read(files.get(0).toFile());
        assertTrue(first.getHeight() > 256 * MaskRenderer.PIXELS);
    }

    private static boolean inked(BufferedImage img, int x0, int y0, int x1, int y1) {
        for (int y = y0; y < Math.min(y1, img.getHeight()); y++) {
            for (int x = x0; x < Math.min(x1, img.getWidth()); x++) {
                int c = img.getRGB(x, y) & 0xFFFFFF;
                if (((c >> 16) & 0xFF) < 0x80 && ((c >> 8) & 0xFF) < 0x80 && (c & 0xFF) < 0x80) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean has(BufferedImage img, int rgb) {
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                if ((img.getRGB(x, y) & 0xFFFFFF) == rgb) {
                    return true;
                }
            }
        }
        return false;
    }
}
