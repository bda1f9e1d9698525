package dev.sparsa.audit;

import dev.sparsa.tools.MaskRenderer;
import dev.sparsa.plan.SparsePlan;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * A mask picture made readable: {@link MaskRenderer}'s picture of a plan with a title, the axes
 * (query position down, key position across, with their ends marked) and a legend of the colours
 * that appear in it.
 */
public final class MaskFigure {
    private static final int TITLE = 24;
    private static final int LEFT = 46;
    private static final int RIGHT = 12;
    private static final int AXIS = 34;
    private static final int LEGEND_ROW = 18;
    private static final int GAP = 8;

    private record Entry(int rgb, String label) {
    }

    private static final List<Entry> TOKEN_LEGEND = List.of(
            new Entry(MaskRenderer.FULL, "full block"),
            new Entry(MaskRenderer.PARTIAL, "admitted (partial block)"),
            new Entry(MaskRenderer.GATHER, "gathered key"),
            new Entry(MaskRenderer.WEIGHTED, "gathered key with a log-weight"),
            new Entry(MaskRenderer.UNCOND, "unconditional key"),
            new Entry(MaskRenderer.GREY, "computed, masked out"),
            new Entry(MaskRenderer.WHITE, "skipped"));

    private MaskFigure() {
    }

    /**
     * The token-level picture of a plan (one panel per shown head), scaled so that a panel is at most
     * {@code maxPanel} pixels on a side (never enlarged), with title, axes and legend.
     */
    public static BufferedImage tokens(SparsePlan plan, String title, int maxPanel) {
        BufferedImage raw = MaskRenderer.tokens(plan);
        List<Entry> present = new ArrayList<>();
        for (Entry e : TOKEN_LEGEND) {
            if (contains(raw, e.rgb)) {
                present.add(e);
            }
        }
        return decorate(raw, panels(plan), plan.context().queryLength(), plan.context().keyLength(), title, present, maxPanel);
    }

    /** The block picture of a plan (16×16-token cells shaded by the share admitted), with title, axes and legend. */
    public static BufferedImage blocks(SparsePlan plan, String title) {
        BufferedImage raw = MaskRenderer.blocks(plan);
        List<Entry> legend = List.of(new Entry(0xC6DBEF, "few pairs of the cell admitted"), new Entry(0x08306B, "all admitted"),
                new Entry(MaskRenderer.GREY, "computed, none admitted"), new Entry(MaskRenderer.WHITE, "skipped"));
        return decorate(raw, panels(plan), plan.context().queryLength(), plan.context().keyLength(), title, legend,
                Integer.MAX_VALUE);
    }

    /** Every example of {@link MaskRenderer#examples()} as two decorated PNG files in {@code dir}. */
    public static List<Path> renderCatalogue(Path dir) {
        try {
            Files.createDirectories(dir);
            List<Path> out = new ArrayList<>();
            for (MaskRenderer.Example e : MaskRenderer.examples()) {
                SparsePlan plan = MaskRenderer.planOf(e);
                String what = e.pattern().name() + (e.context().causal() ? ", causal" : "") + ", N = "
                        + e.context().queryLength();
                Path tokens = dir.resolve(e.stem() + "-tokens.png");
                Path blocks = dir.resolve(e.stem() + "-blocks.png");
                ImageIO.write(tokens(plan, what, Integer.MAX_VALUE), "png", tokens.toFile());
                ImageIO.write(blocks(plan, what + " (16x16 cells)"), "png", blocks.toFile());
                out.add(tokens);
                out.add(blocks);
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** PNG bytes of an image. */
    public static byte[] png(BufferedImage img) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", b);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return b.toByteArray();
    }

    /** Heads side by side in {@link MaskRenderer}'s pictures: one for a shared layout, else up to four. */
    private static int panels(SparsePlan plan) {
        return plan.layouts().size() == 1 ? 1 : Math.min(4, plan.shape().qHeads());
    }

    private static boolean contains(BufferedImage img, int rgb) {
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                if ((img.getRGB(x, y) & 0xFFFFFF) == rgb) {
                    return true;
                }
            }
        }
        return false;
    }

    private static BufferedImage decorate(BufferedImage raw, int panels, int nq, int nk, String title, List<Entry> legend,
                                          int maxPanel) {
        int rawPanel = (raw.getWidth() - (panels - 1) * GAP) / panels;
        double scale = Math.min(1.0, (double) maxPanel / Math.max(rawPanel, raw.getHeight()));
        int pw = Math.max(1, (int) Math.round(rawPanel * scale));
        int ph = Math.max(1, (int) Math.round(raw.getHeight() * scale));
        int plotW = panels * pw + (panels - 1) * GAP;
        int width = Math.max(LEFT + plotW + RIGHT, 300);
        Font font = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
        Font bold = new Font(Font.SANS_SERIF, Font.BOLD, 12);
        // legend rows: entries packed left to right
        BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D pg = probe.createGraphics();
        FontMetrics fm = pg.getFontMetrics(font);
        List<List<Entry>> rows = new ArrayList<>();
        List<Entry> row = new ArrayList<>();
        int x = LEFT;
        for (Entry e : legend) {
            int w = 14 + fm.stringWidth(e.label) + 14;
            if (x + w > width - RIGHT && !row.isEmpty()) {
                rows.add(row);
                row = new ArrayList<>();
                x = LEFT;
            }
            row.add(e);
            x += w;
        }
        if (!row.isEmpty()) {
            rows.add(row);
        }
        pg.dispose();
        int height = TITLE + ph + AXIS + rows.size() * LEGEND_ROW + 6;
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, scale < 1 ? RenderingHints.VALUE_INTERPOLATION_BILINEAR
                : RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setColor(new Color(0x222222));
        g.setFont(bold);
        g.drawString(fit(title, g.getFontMetrics(), width - 12), 6, 16);
        g.setFont(font);
        FontMetrics m = g.getFontMetrics();
        for (int p = 0; p < panels; p++) {
            int sx = p * (rawPanel + GAP);
            int dx = LEFT + p * (pw + GAP);
            if (scale < 1) {
                g.drawImage(raw.getSubimage(sx, 0, rawPanel, raw.getHeight()).getScaledInstance(pw, ph, java.awt.Image.SCALE_AREA_AVERAGING),
                        dx, TITLE, null);
            } else {
                g.drawImage(raw, dx, TITLE, dx + pw, TITLE + ph, sx, 0, sx + rawPanel, raw.getHeight(), null);
            }
            g.setColor(new Color(0x888888));
            g.setStroke(new BasicStroke(1));
            g.drawRect(dx - 1, TITLE - 1, pw + 1, ph + 1);
            g.setColor(new Color(0x222222));
            String last = String.valueOf(nk - 1);
            g.drawString("0", dx, TITLE + ph + 12);
            g.drawString(last, dx + pw - m.stringWidth(last), TITLE + ph + 12);
            if (panels > 1) {
                String head = "head " + p;
                g.drawString(head, dx + (pw - m.stringWidth(head)) / 2, TITLE + ph + 12);
            }
        }
        String xLabel = "key position \u2192";
        g.drawString(xLabel, LEFT + (plotW - m.stringWidth(xLabel)) / 2, TITLE + ph + 27);
        String top = "0";
        String bottom = String.valueOf(nq - 1);
        g.drawString(top, LEFT - 4 - m.stringWidth(top), TITLE + 10);
        g.drawString(bottom, LEFT - 4 - m.stringWidth(bottom), TITLE + ph);
        AffineTransform saved = g.getTransform();
        String yLabel = "query position \u2192";
        g.rotate(Math.PI / 2);
        g.drawString(yLabel, TITLE + (ph - m.stringWidth(yLabel)) / 2, -(LEFT - 30));
        g.setTransform(saved);
        int y = TITLE + ph + AXIS;
        for (List<Entry> r : rows) {
            int lx = LEFT;
            for (Entry e : r) {
                g.setColor(new Color(e.rgb));
                g.fillRect(lx, y + 2, 10, 10);
                g.setColor(new Color(0x888888));
                g.drawRect(lx, y + 2, 10, 10);
                g.setColor(new Color(0x222222));
                g.drawString(e.label, lx + 14, y + 11);
                lx += 14 + m.stringWidth(e.label) + 14;
            }
            y += LEGEND_ROW;
        }
        g.dispose();
        return img;
    }

    private static String fit(String s, FontMetrics m, int width) {
        if (m.stringWidth(s) <= width) {
            return s;
        }
        String t = s;
        while (t.length() > 1 && m.stringWidth(t + "\u2026") > width) {
            t = t.substring(0, t.length() - 1);
        }
        return t + "\u2026";
    }
}
