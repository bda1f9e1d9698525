package dev.sparsa.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** docs/cli.md documents every command, every option and every field of the demo's JSON. */
class CliDocsTest {
    static final Path CLI_MD = Path.of("").toAbsolutePath().getParent().resolve("docs/cli.md");

    @Test
    void everyCommandAndOptionIsDocumented() throws Exception {
        String doc = Files.readString(CLI_MD);
        CommandLine root = SparsaCli.commandLine(System.out, System.err);
        List<String> missing = new ArrayList<>();
        for (var e : root.getSubcommands().entrySet()) {
            if (!doc.contains("./sparsa " + e.getKey())) {
                missing.add("command " + e.getKey());
            }
            for (OptionSpec o : e.getValue().getCommandSpec().options()) {
                if (o.usageHelp() || o.versionHelp()) {
                    continue;
                }
                if (!doc.contains("`" + o.longestName())) {
                    missing.add(e.getKey() + " " + o.longestName());
                }
            }
        }
        for (String launcher : List.of("./sparsa test", "./sparsa bench", "./sparsa run", "./sparsa build", "--gpu")) {
            if (!doc.contains(launcher)) {
                missing.add(launcher);
            }
        }
        assertEquals(List.of(), missing, "undocumented in docs/cli.md");
    }

    @Test
    void everyJsonFieldIsDocumented() throws Exception {
        String[] r = CliRun.run("demo", "--json", "-H", "1", "-n", "64", "-d", "16",
                "--dtypes", "f32", "--densities", "0.5", "--no-families", "--sample-rows", "4", "--warmup-ms", "0");
        assertEquals("0", r[0], r[2]);
        TreeSet<String> fields = new TreeSet<>();
        try (JsonParser p = new JsonFactory().createParser(r[1])) {
            for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
                if (t == JsonToken.FIELD_NAME) {
                    fields.add(p.currentName()); // the backends' names (cpu, cuda) included
                }
            }
        }
        String doc = Files.readString(CLI_MD);
        List<String> missing = fields.stream().filter(f -> !doc.contains("`" + f + "`")).toList();
        assertTrue(fields.size() > 30, "fields seen: " + fields);
        assertEquals(List.of(), missing, "JSON fields undocumented in docs/cli.md");
    }
}
