package dev.sparsa.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The documentation describes this repository and the product only: every file it names in
 * backticks exists, it names no file outside the repository, and neither the documents nor the data
 * file names speak of how the code was written. Also: the BOM's version is the build's.
 */
class DocsTest {
    static final Path ROOT = Path.of("").toAbsolutePath().getParent();
    private static final Pattern INLINE = Pattern.compile("`([^`\\n]+)`");
    private static final Pattern FENCED = Pattern.compile("```.*?```", Pattern.DOTALL);
    private static final Pattern PATHLIKE = Pattern.compile("[A-Za-z0-9_.\\-/]+");
    private static final Set<String> EXTENSIONS = Set.of("md", "java", "json", "sh", "cu", "cuh", "py", "xml", "png",
            "fatbin", "manifest", "txt");
    /** Wording that speaks of how the code was written, or of files outside the repository. */
    private static final List<Pattern> FORBIDDEN = List.of(
            Pattern.compile("\\bsessions?\\b", Pattern.CASE_INSENSITIVE),
            Pattern.compile("\\bhelpers?'s?\\b", Pattern.CASE_INSENSITIVE),
            Pattern.compile("\\(lead\\b|\\blead,", Pattern.CASE_INSENSITIVE),
            Pattern.compile("\\bissue (#|\\d)", Pattern.CASE_INSENSITIVE),
            Pattern.compile("DESIGN(\\.md| §)|§"),
            Pattern.compile("gpu-stage|\\.gpu[/-]|KINDS\\.md|\\.\\./shared"),
            Pattern.compile("\\bstage \\d", Pattern.CASE_INSENSITIVE));

    /** Every Markdown file of the repository (outside build output and version control). */
    static List<Path> documents() throws IOException {
        try (Stream<Path> s = Files.walk(ROOT)) {
            return s.filter(p -> p.toString().endsWith(".md")).filter(DocsTest::inRepository).sorted().toList();
        }
    }

    private static boolean inRepository(Path p) {
        String r = ROOT.relativize(p).toString().replace('\\', '/');
        return !(r.startsWith(".") || r.contains("/target/") || r.startsWith("target/") || r.contains("/."));
    }

    /** Every file name of the repository (for bare names in the docs). */
    static Set<String> fileNames() throws IOException {
        try (Stream<Path> s = Files.walk(ROOT)) {
            return s.filter(DocsTest::inRepository).map(p -> p.getFileName().toString())
                    .collect(java.util.stream.Collectors.toSet());
        }
    }

    /** A backticked token that names a repository file or folder, else null. */
    static String pathIn(String token) {
        String t = token.replaceAll("[.,;:]+$", "");
        if (!PATHLIKE.matcher(t).matches() || t.startsWith("-") || t.startsWith("/") || t.contains("..")
                || t.contains("/target/") || t.startsWith("target/") || t.startsWith("dev.sparsa")) {
            return null;
        }
        int dot = t.lastIndexOf('.');
        String ext = dot < 0 ? "" : t.substring(dot + 1).toLowerCase(Locale.ROOT);
        if (t.contains("/") || EXTENSIONS.contains(ext)) {
            return t;
        }
        return null;
    }

    @Test
    void everyFileTheDocsNameExists() throws IOException {
        Set<String> names = fileNames();
        List<String> missing = new ArrayList<>();
        int checked = 0;
        for (Path doc : documents()) {
            String text = FENCED.matcher(Files.readString(doc)).replaceAll("");
            Matcher m = INLINE.matcher(text);
            while (m.find()) {
                String p = pathIn(m.group(1));
                if (p == null) {
                    continue;
                }
                checked++;
                boolean found;
                if (p.contains("/")) {
                    String first = p.substring(0, p.indexOf('/'));
                    boolean repoPath = Files.exists(ROOT.resolve(first)) || Files.exists(doc.getParent().resolve(first));
                    found = !repoPath || Files.exists(ROOT.resolve(p)) || Files.exists(doc.getParent().resolve(p));
                } else {
                    found = names.contains(p);
                }
                if (!found) {
                    missing.add(ROOT.relativize(doc) + ": `" + m.group(1) + "`");
                }
            }
        }
        assertTrue(checked > 40, "paths checked: " + checked);
        assertEquals(List.of(), missing, "files the docs name that the repository does not hold");
    }

    @Test
    void docsAndDataNamesSpeakOfTheProductOnly() throws IOException {
        List<String> found = new ArrayList<>();
        for (Path doc : documents()) {
            List<String> lines = Files.readAllLines(doc);
            for (int i = 0; i < lines.size(); i++) {
                for (Pattern f : FORBIDDEN) {
                    if (f.matcher(lines.get(i)).find()) {
                        found.add(ROOT.relativize(doc) + ":" + (i + 1) + ": " + lines.get(i).trim());
                    }
                }
            }
        }
        try (Stream<Path> s = Files.walk(ROOT.resolve("docs"))) {
            s.map(p -> p.getFileName().toString())
                    .filter(n -> n.matches("(?i).*(session|stage|issue|helper|final|lead).*"))
                    .forEach(n -> found.add("docs file name: " + n));
        }
        assertEquals(List.of(), found);
    }

    @Test
    void theBomHasTheBuildsVersion() throws IOException {
        Pattern version = Pattern.compile("<artifactId>([^<]+)</artifactId>\\s*(?:<!--[^>]*-->\\s*)?<version>([^<]+)</version>");
        Matcher parent = version.matcher(Files.readString(ROOT.resolve("pom.xml")));
        assertTrue(parent.find() && parent.group(1).equals("sparsa-parent"), "the parent's own coordinates first");
        Matcher bom = version.matcher(Files.readString(ROOT.resolve("src/bom/pom.xml")));
        assertTrue(bom.find() && bom.group(1).equals("sparsa-bom"));
        assertEquals(parent.group(2), bom.group(2), "src/bom/pom.xml has its own version (no parent): keep it equal");
    }
}
