package dev.sparsa.tools;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.compose.CompensationToken;
import dev.sparsa.patterns.compose.PerHead;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * Renders plans as PNG pictures (java.awt.image and javax.imageio only). Two pictures per example:
 * <ul>
 *   <li>{@code NAME-tokens.png}: one square of {@link #PIXELS} pixels per (query row, key), query rows
 *       downwards, keys rightwards: dark blue = admitted in a full block, mid blue = admitted by the
 *       predicate in a partial block, orange = gathered key, purple = gathered key with a log-weight,
 *       red = unconditional key, light grey = computed by the kernel but masked, white = skipped;
 *       key-block boundaries are drawn as faint lines;
 *   <li>{@code NAME-blocks.png}: one 16-pixel cell per (16-row, 16-key) block, shaded by the
 *       fraction of its pairs admitted (white none, light grey visited only, light to dark blue).
 * </ul>
 * Patterns with different layouts per head show the first four heads side by side.
 */
public final class MaskRenderer {
    /** Pixels per token in the token pictures. */
    public static final int PIXELS = 2;
    private static final int CELL = 16;
    private static final int GAP = 8;

    // the pictures' colours, public so that figures can draw a legend for them
    public static final int WHITE = 0xFFFFFF;
    public static final int GREY = 0xDDDDDD;
    public static final int FULL = 0x1F4E9C;
    public static final int PARTIAL = 0x4F8FE0;
    public static final int GATHER = 0xF08C1E;
    public static final int WEIGHTED = 0x8E44AD;
    public static final int UNCOND = 0xC62828;

    private MaskRenderer() {
    }

    /** One picture's subject: a file stem, a pattern and the context it is planned in. */
    public record Example(String stem, Pattern pattern, PlanContext context) {
    }

    /** The small examples (N = 256, 16×16 blocks, 4 heads, head dim 32; causal unless the family is two-sided). */
    public static List<Example> examples() {
        PlanContext causal = context(256, 256, true);
        PlanContext open = context(256, 256, false);
        List<Example> l = new ArrayList<>();
        boolean[][] mask = new boolean[8][8];
        for (int i = 0; i < 8; i++) {
            for (int j = 0; j <= i; j++) {
                mask[i][j] = j == i || j == 0 || (i + j) % 3 == 0;
            }
        }
        l.add(new Example("block-sparse-explicit", Patterns.blockSparse(mask, 32), causal));
        l.add(new Example("block-sparse-random", Patterns.randomBlockSparse(0.3, 7), causal));
        l.add(new Example("block-sparse-minference-estimate", Patterns.meanPoolBlockTopK(3, 16, true), causal));
        l.add(new Example("block-sparse-bilevel-routing", Patterns.biLevelRouting(3, 32), causal));
        float[][][] gate = new float[1][16][16];
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 16; j++) {
                gate[0][i][j] = (float) (Math.abs(Math.sin(i * 1.7 + j * 0.9)) + (j == 0 || j == i ? 1 : 0));
            }
        }
        l.add(new Example("block-sparse-gate-threshold", Patterns.gateByThreshold(gate, 0.8), causal));
        l.add(new Example("window-sliding", Patterns.slidingWindow(48), causal));
        l.add(new Example("window-a-shape", Patterns.aShape(48, 8), causal));
        l.add(new Example("window-tri-shape", Patterns.triShape(48, 8, 24), causal));
        l.add(new Example("window-symmetric", Patterns.symmetricWindow(24), open));
        l.add(new Example("window-neighbourhood", Patterns.neighbourhood(40), open));
        l.add(new Example("window-moa-elastic", Patterns.elasticWindows(new double[] {8, 16, 4, 32},
                new double[] {0.0, 0.06, 0.12, 0.2}, 4), causal));
        l.add(new Example("strided-s2", Patterns.s2Strided(4, 2).withBlockSize(16), causal));
        l.add(new Example("strided-s2-sliding", Patterns.s2Strided(4, 1, 1, 1, false).withBlockSize(16), causal));
        l.add(new Example("strided-sparse-transformer", Patterns.sparseTransformerStrided(16), causal));
        l.add(new Example("strided-sparse-transformer-fixed", Patterns.sparseTransformerFixed(32, 4), causal));
        l.add(new Example("strided-dilated", Patterns.dilatedWindow(24, 3), causal));
        l.add(new Example("lsh-sortlsh", Patterns.sortLsh(3, 16, 8, 5), causal));
        l.add(new Example("lsh-reformer", Patterns.reformerLsh(2, 3, 16, 5), causal));
        l.add(new Example("topk-per-query", Patterns.topK(16).withSinks(4).withWindow(8), causal));
        l.add(new Example("topk-per-query-block", Patterns.topKPerQueryBlock(24, 4, 8), causal));
        l.add(new Example("topk-quest", Patterns.quest(8, 24, 4, 8), causal));
        l.add(new Example("topk-double-sparsity", Patterns.doubleSparsity(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 16, 4, 8), causal));
        l.add(new Example("topk-tokenselect", Patterns.tokenSelect(16, 4, 8), causal));
        int[] cols = {0, 1, 2, 3, 60, 130};
        int[] diags = {0, 1, 2, 3, 64, 128};
        l.add(new Example("vertical-slash-exact", Patterns.verticalSlash(cols, diags, VsSemantics.EXACT), causal));
        l.add(new Example("vertical-slash-block-expanded", Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED), causal));
        l.add(new Example("vertical-slash-estimate-exact", Patterns.verticalSlashEstimate(30, 50, VsSemantics.EXACT), causal));
        l.add(new Example("vertical-slash-estimate-block-expanded",
                Patterns.verticalSlashEstimate(30, 50, VsSemantics.BLOCK_EXPANDED), causal));
        l.add(new Example("moba", Patterns.moba(32, 3), causal));
        l.add(new Example("nsa-selection", Patterns.nsaSelection(16, 4), causal));
        l.add(new Example("dsa-indexer", Patterns.lightningIndexerProjected(24, 2, 8, 5), causal));
        l.add(new Example("xattention", Patterns.xAttention(16, 4, 0.9), causal));
        l.add(new Example("routing-kmeans", Patterns.routing(8, 32, 3, 9), causal));
        l.add(new Example("block-sparse-top-p", Patterns.meanPoolBlockTopP(0.9, 16), causal));
        l.add(new Example("vertical-slash-estimate-top-p",
                Patterns.verticalSlashEstimateTopP(0.9, 8, 64, VsSemantics.BLOCK_EXPANDED), causal));
        int[][] supplied = new int[256][];
        for (int r = 0; r < 256; r++) {
            supplied[r] = new int[] {0, r / 2, (r * 7) % (r + 1), Math.max(0, r - 3), r}; // a caller's lists
        }
        l.add(new Example("selection-token-lists", Patterns.tokenLists(supplied), causal));
        l.add(new Example("composed-union", Patterns.union(Patterns.aShape(32, 4), Patterns.meanPoolBlockTopK(2, 16, false)), causal));
        l.add(new Example("composed-longformer", Patterns.union(Patterns.slidingWindow(32),
                Patterns.globalTokens(new int[] {0, 100, 200}, new int[] {0, 100, 200})), causal));
        l.add(new Example("composed-per-head", PerHead.cycling(List.of(Patterns.aShape(32, 4),
                Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED), Patterns.s2Strided(2, 1).withBlockSize(16),
                Patterns.dilatedWindow(16, 4))), causal));
        l.add(new Example("composed-razor-compensation", CompensationToken.pattern(Patterns.aShape(32, 4), 4, 32),
                new PlanContext(AttentionShape.of(1, 4, 256, 257, 32), new TileGeometry(16, 16), true, 1)));
        return l;
    }

    private static PlanContext context(int nq, int nk, boolean causal) {
        return PlanContext.of(AttentionShape.of(1, 4, nq, nk, 32),
                Options.defaults().withCausal(causal).withGeometry(new TileGeometry(16, 16)));
    }

    /**
     * Renders every example into {@code dir} (created if needed).
     *
     * @return the written files, two per example
     * @throws UncheckedIOException if a file cannot be written
     */
    public static List<Path> renderCatalogue(Path dir) {
        try {
            Files.createDirectories(dir);
            List<Path> out = new ArrayList<>();
            for (Example e : examples()) {
                SparsePlan plan = planOf(e);
                Path tokens = dir.resolve(e.stem() + "-tokens.png");
                Path blocks = dir.resolve(e.stem() + "-blocks.png");
                ImageIO.write(tokens(plan), "png", tokens.toFile());
                ImageIO.write(blocks(plan), "png", blocks.toFile());
                out.add(tokens);
                out.add(blocks);
            }
            return out;
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** Plans an example, on the structured problem when the pattern reads Q and K. */
    public static SparsePlan planOf(Example e) {
        if (!e.pattern().dataDependent()) {
            return e.pattern().plan(e.context());
        }
        StructuredProblem.Generated g = StructuredProblem.generate(e.context().shape(), 1234);
        return e.pattern().plan(e.context(), g.q(), g.k());
    }

    /** Category of every (row, key) of one layout, row-major {@code [queryLength · keyLength]}. */
    static int[] categories(HeadLayout l) {
        int nq = l.queryLength();
        int nk = l.keyLength();
        int[] c = new int[nq * nk];
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int r = l.row(t, i);
                long p = (long) r + l.queryOffset();
                for (int j = l.fullStart(t); j < l.fullEnd(t); j++) {
                    int k0 = l.blockStartKey(l.fullBlock(j));
                    for (int k = k0; k < k0 + l.blockWidth(l.fullBlock(j)); k++) {
                        c[r * nk + k] = FULL;
                    }
                }
                for (int j = l.partialStart(t); j < l.partialEnd(t); j++) {
                    int k0 = l.blockStartKey(l.partialBlock(j));
                    for (int k = k0; k < k0 + l.blockWidth(l.partialBlock(j)); k++) {
                        mark(c, r * nk + k, l.predicate().admits(p, k, nk) ? PARTIAL : GREY);
                    }
                }
                for (int j = l.gatherStart(t); j < l.gatherEnd(t); j++) {
                    int k = l.gatherKey(j);
                    mark(c, r * nk + k, !l.predicate().admits(p, k, nk) ? GREY : l.gatherLogWeight(j) != 0f ? WEIGHTED : GATHER);
                }
                for (int j = l.unconditionalStart(t); j < l.unconditionalEnd(t); j++) {
                    c[r * nk + l.unconditionalKey(j)] = UNCOND;
                }
            }
        }
        return c;
    }

    private static void mark(int[] c, int i, int colour) {
        if (c[i] == 0 || c[i] == GREY) {
            c[i] = colour;
        }
    }

    private static List<HeadLayout> shown(SparsePlan plan) {
        List<HeadLayout> l = new ArrayList<>();
        int heads = plan.shape().qHeads();
        if (plan.layouts().size() == 1) {
            l.add(plan.layout(0, 0));
        } else {
            for (int h = 0; h < Math.min(4, heads); h++) {
                l.add(plan.layout(0, h));
            }
        }
        return l;
    }

    /** The token picture of a plan. */
    public static BufferedImage tokens(SparsePlan plan) {
        List<HeadLayout> heads = shown(plan);
        int nq = plan.context().queryLength();
        int nk = plan.context().keyLength();
        int w = nk * PIXELS;
        int h = nq * PIXELS;
        BufferedImage img = new BufferedImage(heads.size() * w + (heads.size() - 1) * GAP, h, BufferedImage.TYPE_INT_RGB);
        fill(img, WHITE);
        int cols = plan.geometry().blockCols();
        for (int x = 0; x < heads.size(); x++) {
            int[] c = categories(heads.get(x));
            for (int r = 0; r < nq; r++) {
                for (int k = 0; k < nk; k++) {
                    int colour = c[r * nk + k] == 0 ? WHITE : c[r * nk + k];
                    for (int dy = 0; dy < PIXELS; dy++) {
                        for (int dx = 0; dx < PIXELS; dx++) {
                            boolean line = dx == 0 && k % cols == 0 && k > 0;
                            img.setRGB(x * (w + GAP) + k * PIXELS + dx, r * PIXELS + dy, line ? darken(colour) : colour);
                        }
                    }
                }
            }
        }
        return img;
    }

    /** The block picture of a plan (16×16-token cells). */
    public static BufferedImage blocks(SparsePlan plan) {
        List<HeadLayout> heads = shown(plan);
        int nq = plan.context().queryLength();
        int nk = plan.context().keyLength();
        int bq = (nq + CELL - 1) / CELL;
        int bk = (nk + CELL - 1) / CELL;
        int w = bk * CELL;
        BufferedImage img = new BufferedImage(heads.size() * w + (heads.size() - 1) * GAP, bq * CELL, BufferedImage.TYPE_INT_RGB);
        fill(img, WHITE);
        for (int x = 0; x < heads.size(); x++) {
            int[] c = categories(heads.get(x));
            for (int i = 0; i < bq; i++) {
                for (int j = 0; j < bk; j++) {
                    int admitted = 0;
                    int visited = 0;
                    int area = 0;
                    for (int r = i * CELL; r < Math.min(nq, (i + 1) * CELL); r++) {
                        for (int k = j * CELL; k < Math.min(nk, (j + 1) * CELL); k++) {
                            int v = c[r * nk + k];
                            area++;
                            if (v != 0) {
                                visited++;
                                if (v != GREY) {
                                    admitted++;
                                }
                            }
                        }
                    }
                    int colour = admitted > 0 ? shade((double) admitted / area) : visited > 0 ? GREY : WHITE;
                    for (int dy = 0; dy < CELL; dy++) {
                        for (int dx = 0; dx < CELL; dx++) {
                            boolean edge = dx == CELL - 1 || dy == CELL - 1;
                            img.setRGB(x * (w + GAP) + j * CELL + dx, i * CELL + dy, edge ? 0xF4F4F4 : colour);
                        }
                    }
                }
            }
        }
        return img;
    }

    private static int shade(double f) {
        // from light blue (fraction ~0) to dark blue (fraction 1)
        int r0 = 0xC6, g0 = 0xDB, b0 = 0xEF;
        int r1 = 0x08, g1 = 0x30, b1 = 0x6B;
        int r = (int) Math.round(r0 + (r1 - r0) * f);
        int g = (int) Math.round(g0 + (g1 - g0) * f);
        int b = (int) Math.round(b0 + (b1 - b0) * f);
        return (r << 16) | (g << 8) | b;
    }

    private static int darken(int rgb) {
        int r = (rgb >> 16) & 0xFF;
        int g = (rgb >> 8) & 0xFF;
        int b = rgb & 0xFF;
        return ((r * 85 / 100) << 16) | ((g * 85 / 100) << 8) | (b * 85 / 100);
    }

    private static void fill(BufferedImage img, int rgb) {
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                img.setRGB(x, y, rgb);
            }
        }
    }
}
