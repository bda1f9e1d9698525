package dev.sparsa.audit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The audit as one self-contained HTML page: the summary, the real model's embedding check, the
 * chosen pattern of every head, recall-versus-density plots per layer (inline SVG), the chosen masks
 * (inline PNG with title, axes and legend) and every candidate's numbers per head. Nothing is
 * fetched: the page reads offline.
 */
public final class HtmlReport {
    /** A colour per family, shared by the tables and the plots. */
    static final Map<String, String> COLOURS = Map.of("dense", "#555555", "sliding-window", "#1f77b4", "block-sparse",
            "#2ca02c", "vertical-slash", "#d62728", "top-k", "#9467bd", "strided", "#ff7f0e", "lsh", "#8c564b");

    private HtmlReport() {
    }

    /** Writes the page. */
    public static void write(AuditReport r, Path file) throws IOException {
        Files.writeString(file, html(r));
    }

    static String html(AuditReport r) {
        StringBuilder b = new StringBuilder(1 << 20);
        b.append("<!doctype html><html lang=en><head><meta charset=utf-8><title>Sparsa attention audit</title><style>")
                .append("body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}")
                .append("h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}")
                .append("table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}")
                .append("th{background:#f4f4f4}td.l,th.l{text-align:left}.fam{display:inline-block;width:10px;height:10px;margin-right:5px}")
                .append(".grid td{font-size:12px;text-align:left}.ret{color:#b00;font-weight:bold}.muted{color:#777}")
                .append(".masks{display:flex;flex-wrap:wrap;gap:10px}.masks figure{margin:0}svg text{font:11px sans-serif}")
                .append("details{margin:4px 0}summary{cursor:pointer}</style></head><body>");
        b.append("<h1>Sparsa attention audit</h1>");
        b.append("<p>");
        r.source().forEach((k, v) -> b.append("<b>").append(esc(k)).append("</b>: ").append(esc(v)).append(" &nbsp; "));
        b.append("<br><b>shape</b>: ").append(r.layers()).append(" layer(s) × ").append(r.heads()).append(" heads (")
                .append(r.kvHeads()).append(" key/value) × ").append(r.tokens()).append(" tokens × head dim ").append(r.headDim())
                .append(", ").append(r.dtype()).append(r.causal() ? ", causal" : ", bidirectional").append("</p>");
        b.append("<table><tr><th class=l>recall target</th><td>").append(f(r.recallTarget(), 2))
                .append("</td></tr><tr><th class=l>heads meeting it with a sparse or dense choice</th><td>")
                .append(r.headsMeetingTarget()).append(" / ").append(r.results().size())
                .append("</td></tr><tr><th class=l>mean density of the chosen patterns</th><td>").append(f(r.chosenDensity(), 3))
                .append("</td></tr><tr><th class=l>retrieval heads</th><td>").append(r.retrievalHeads()).append(" / ")
                .append(r.results().size()).append("</td></tr><tr><th class=l>candidates per head</th><td>")
                .append(r.candidates().size()).append("</td></tr><tr><th class=l>audit time</th><td>").append(f(r.seconds(), 1))
                .append(" s</td></tr></table>");
        b.append("<p class=muted>Recall: the share of each query's dense softmax mass that the pattern keeps, averaged over ")
                .append("the queries. A head's choice is the candidate computing the fewest pairs whose recall meets the target ")
                .append("(dense when none does). ").append(esc(AuditReport.RETRIEVAL_DEFINITION)).append(" Probe: <code>")
                .append(esc(r.probe())).append("</code>.</p>");
        legend(b);
        if (r.model() != null) {
            model(b, r);
        }
        b.append("<h2 id=choices>Chosen pattern per head</h2><div style='overflow-x:auto'><table class=grid><tr><th>layer</th>");
        for (int h = 0; h < r.heads(); h++) {
            b.append("<th>head ").append(h).append("</th>");
        }
        b.append("</tr>");
        for (int l = 0; l < r.layers(); l++) {
            b.append("<tr><th>").append(l).append("</th>");
            for (HeadResult h : r.layer(l)) {
                CandidateResult c = h.choice();
                b.append("<td title='").append(esc(c.spec())).append("'>").append(swatch(c.family())).append(esc(shortName(c.spec())))
                        .append("<br>d ").append(f(c.density(), 2)).append(" · r ").append(f(c.recall(), 3))
                        .append(h.retrieval() ? " <span class=ret title='retrieval head'>R</span>" : "").append("</td>");
            }
            b.append("</tr>");
        }
        b.append("</table></div><p class=muted>d: density, r: recall; <span class=ret>R</span>: retrieval head (the probe keeps "
                + "less than the target).</p>");
        b.append("<h2 id=plots>Recall versus density</h2><p class=muted>Every candidate on every head of the layer; the chosen ones ringed; ")
                .append("the dashed line is the recall target.</p><div class=masks>");
        for (int l = 0; l < r.layers(); l++) {
            scatter(b, r, l);
        }
        b.append("</div><h2 id=masks>Chosen masks</h2><p class=muted>Each head's chosen pattern as planned on its own Q and K ")
                .append("(rows: queries, columns: keys).</p>");
        for (int l = 0; l < r.layers(); l++) {
            b.append("<div class=masks>");
            for (int i = 0; i < r.results().size(); i++) {
                HeadResult h = r.results().get(i);
                if (h.layer() != l) {
                    continue;
                }
                String title = "L" + l + " H" + h.head() + ": " + h.choice().spec();
                byte[] png = MaskFigure.png(MaskFigure.tokens(r.chosenPlans().get(i), title, 200));
                b.append("<figure><img alt='").append(esc(title)).append("' src='data:image/png;base64,")
                        .append(Base64.getEncoder().encodeToString(png)).append("'></figure>");
            }
            b.append("</div>");
        }
        b.append("<h2 id=candidates>Every candidate, per head</h2>");
        for (HeadResult h : r.results()) {
            b.append("<details><summary>layer ").append(h.layer()).append(", head ").append(h.head()).append(": ")
                    .append(esc(h.choice().spec())).append(h.retrieval() ? " (retrieval head)" : "").append("</summary><table><tr>")
                    .append("<th class=l>pattern</th><th>density</th><th>pairs computed</th><th>recall</th><th>min row recall</th>")
                    .append("<th>error vs dense</th><th>plan ms</th><th>kernel ms</th><th>dense ms</th><th>kernel speed-up</th>")
                    .append("<th>end-to-end speed-up</th></tr>");
            for (int c = 0; c < h.candidates().size(); c++) {
                CandidateResult x = h.candidates().get(c);
                row(b, x, c == h.chosen(), r.recallTarget());
            }
            row(b, h.probe(), false, r.recallTarget());
            b.append("</table></details>");
        }
        b.append("<p class=muted>Times are medians of ").append(HeadAuditor.REPS)
                .append(" runs on one head at a time, on this machine, in the same run as the dense kernel they are compared with; ")
                .append("the end-to-end speed-up counts planning too. The first layer's times include the JIT's compilation of the ")
                .append("kernels and estimators (compare the later layers). The last row of each table is the retrieval probe.</p>");
        b.append("</body></html>\n");
        return b.toString();
    }

    private static void model(StringBuilder b, AuditReport r) {
        ModelResult m = r.model();
        b.append("<h2 id=model>The real model: ").append(esc(m.name())).append(", ").append(m.tokens()).append(" tokens</h2>");
        b.append("<table><tr><th class=l>dense attention in Java vs ONNX Runtime, embedding cosine</th><td>")
                .append(f(m.denseCosine(), 6)).append("</td></tr><tr><th class=l>per-head choice (config.json), embedding cosine to dense</th><td>")
                .append(f(m.configCosine(), 5)).append("</td></tr><tr><th class=l>per-head choice, mean density</th><td>")
                .append(f(m.configDensity(), 3)).append("</td></tr></table>");
        b.append("<p class=muted>Each pattern applied to every head of every layer: the sentence embedding's cosine to the ")
                .append("dense embedding, next to the pattern's recall and density averaged over the heads.</p>");
        b.append("<div class=masks><table><tr><th class=l>pattern</th><th>density</th><th>recall</th><th>embedding cosine</th></tr>");
        for (ModelResult.PatternCosine p : m.patterns()) {
            b.append("<tr><td class=l>").append(swatch(p.family())).append(esc(p.spec())).append("</td><td>").append(f(p.meanDensity(), 3))
                    .append("</td><td>").append(f(p.meanRecall(), 4)).append("</td><td>").append(f(p.cosine(), 5)).append("</td></tr>");
        }
        b.append("</table>");
        // cosine and recall against density
        int w = 420;
        int h = 300;
        Plot p = new Plot(w, h, 0, 1, Math.min(0.5, m.patterns().stream().mapToDouble(ModelResult.PatternCosine::cosine).min().orElse(0)), 1);
        b.append(p.open("Embedding cosine to dense versus density", "mean density", "embedding cosine"));
        for (ModelResult.PatternCosine c : m.patterns()) {
            b.append(p.dot(c.meanDensity(), c.cosine(), COLOURS.get(c.family()), 4, false, c.spec() + ": cosine " + f(c.cosine(), 5)));
        }
        b.append(p.dot(m.configDensity(), m.configCosine(), "#000", 6, true, "per-head choice: cosine " + f(m.configCosine(), 5)));
        boolean right = m.configDensity() > 0.6;
        b.append("<text x='").append(p.x(m.configDensity()) + (right ? -8 : 8)).append("' y='").append(p.y(m.configCosine()) + 16)
                .append("' text-anchor='").append(right ? "end" : "start").append("'>per-head choice</text>");
        b.append("</svg></div>");
    }

    private static void scatter(StringBuilder b, AuditReport r, int layer) {
        Plot p = new Plot(380, 280, 0, 1, 0, 1);
        b.append(p.open("Layer " + layer + ": recall versus density", "density", "recall"));
        b.append("<line x1='").append(p.x(0)).append("' x2='").append(p.x(1)).append("' y1='").append(p.y(r.recallTarget()))
                .append("' y2='").append(p.y(r.recallTarget())).append("' stroke='#b00' stroke-dasharray='4 3'/>");
        for (HeadResult h : r.layer(layer)) {
            for (int c = 0; c < h.candidates().size(); c++) {
                CandidateResult x = h.candidates().get(c);
                b.append(p.dot(x.density(), Math.min(1, x.recall()), COLOURS.get(x.family()), 3, c == h.chosen(),
                        "head " + h.head() + ", " + x.spec() + ": density " + f(x.density(), 3) + ", recall " + f(x.recall(), 4)));
            }
        }
        b.append("</svg>");
    }

    private static void row(StringBuilder b, CandidateResult x, boolean chosen, double target) {
        b.append("<tr").append(chosen ? " style='background:#eef6ee;font-weight:bold'" : "").append("><td class=l>")
                .append(swatch(x.family())).append(esc(x.spec())).append("</td><td>").append(f(x.density(), 3)).append("</td><td>")
                .append(x.pairsVisited()).append("</td><td").append(x.recall() < target ? " class=muted" : "").append(">")
                .append(f(x.recall(), 4)).append("</td><td>").append(f(x.minRecall(), 4)).append("</td><td>")
                .append(String.format(Locale.ROOT, "%.2e", x.relErrVsDense())).append("</td><td>").append(f(x.planMillis(), 3))
                .append("</td><td>").append(f(x.kernelMillis(), 3)).append("</td><td>").append(f(x.denseMillis(), 3))
                .append("</td><td>").append(f(x.kernelSpeedup(), 2)).append("×</td><td>").append(f(x.endToEndSpeedup(), 2))
                .append("×</td></tr>");
    }

    private static void legend(StringBuilder b) {
        b.append("<p>");
        for (String fam : List.of("dense", "sliding-window", "block-sparse", "vertical-slash", "top-k", "strided", "lsh")) {
            b.append(swatch(fam)).append(fam).append(" &nbsp; ");
        }
        b.append("</p>");
    }

    private static String swatch(String family) {
        return "<span class=fam style='background:" + COLOURS.getOrDefault(family, "#999") + "'></span>";
    }

    /** A spec without its parameter names, for the narrow grid cells. */
    private static String shortName(String spec) {
        return spec.replaceAll("[a-zA-Z]+=", "");
    }

    static String f(double v, int digits) {
        return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%." + digits + "f", v);
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;").replace("\"", "&quot;");
    }

    /** An SVG scatter plot with axes, ticks and labels. */
    private record Plot(int w, int h, double x0, double x1, double y0, double y1) {
        static final int L = 48;
        static final int B = 40;
        static final int T = 24;
        static final int R = 12;

        double x(double v) {
            return L + (v - x0) / (x1 - x0) * (w - L - R);
        }

        double y(double v) {
            return h - B - (v - y0) / (y1 - y0) * (h - B - T);
        }

        String open(String title, String xLabel, String yLabel) {
            StringBuilder s = new StringBuilder();
            s.append("<svg xmlns='http://www.w3.org/2000/svg' width='").append(w).append("' height='").append(h)
                    .append("' role='img' aria-label='").append(esc(title)).append("'><rect width='100%' height='100%' fill='#fff'/>")
                    .append("<text x='").append(L).append("' y='15' style='font-weight:bold'>").append(esc(title)).append("</text>");
            for (int i = 0; i <= 5; i++) {
                double vx = x0 + (x1 - x0) * i / 5;
                double vy = y0 + (y1 - y0) * i / 5;
                s.append("<line x1='").append(x(vx)).append("' x2='").append(x(vx)).append("' y1='").append(T).append("' y2='")
                        .append(h - B).append("' stroke='#eee'/>");
                s.append("<line y1='").append(y(vy)).append("' y2='").append(y(vy)).append("' x1='").append(L).append("' x2='")
                        .append(w - R).append("' stroke='#eee'/>");
                s.append("<text x='").append(x(vx)).append("' y='").append(h - B + 14).append("' text-anchor='middle'>")
                        .append(f(vx, 1)).append("</text>");
                s.append("<text x='").append(L - 4).append("' y='").append(y(vy) + 4).append("' text-anchor='end'>")
                        .append(f(vy, 2)).append("</text>");
            }
            s.append("<rect x='").append(L).append("' y='").append(T).append("' width='").append(w - L - R).append("' height='")
                    .append(h - B - T).append("' fill='none' stroke='#888'/>");
            s.append("<text x='").append(L + (w - L - R) / 2).append("' y='").append(h - 8).append("' text-anchor='middle'>")
                    .append(esc(xLabel)).append("</text>");
            s.append("<text transform='rotate(-90)' x='").append(-(T + (h - B - T) / 2)).append("' y='12' text-anchor='middle'>")
                    .append(esc(yLabel)).append("</text>");
            return s.toString();
        }

        String dot(double vx, double vy, String colour, int radius, boolean ring, String tip) {
            return "<circle cx='" + f(x(vx), 1) + "' cy='" + f(y(vy), 1) + "' r='" + radius + "' fill='" + colour + "' fill-opacity='0.75'"
                    + (ring ? " stroke='#000' stroke-width='1.5'" : "") + "><title>" + esc(tip) + "</title></circle>";
        }
    }
}
