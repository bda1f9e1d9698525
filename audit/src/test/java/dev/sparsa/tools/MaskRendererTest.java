package dev.sparsa.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The renderer writes two readable PNGs per example, sized from the example's context. */
class MaskRendererTest {
    @TempDir
    Path dir;

    @Test
    void rendersEveryExample() throws Exception {
        Path out = Boolean.getBoolean("sparsa.masks.keep") ? Path.of("target", "masks") : dir;
        List<Path> files = MaskRenderer.renderCatalogue(out);
        assertEquals(2 * MaskRenderer.examples().size(), files.size());
        for (Path f : files) {
            assertTrue(Files.size(f) > 0, f.toString());
            BufferedImage img = ImageIO.read(f.toFile());
            assertTrue(img.getWidth() >= 256 && img.getHeight() >= 256, f + " is " + img.getWidth() + "x" + img.getHeight());
        }
    }
}
