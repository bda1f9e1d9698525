package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The kernel table {@code src/main/cuda/sparsa_kernels.def} is the one list of the fatbin's kernels:
 * this test requires {@link KernelTable} (generated from it by build-fatbin.sh) to list the same names
 * in the same order, every row's name to follow its family's naming rule from its template arguments,
 * every kernel without template arguments to be defined in the header its row names (and no other
 * entry point to exist outside the table), and every name the Java side launches to be in the table.
 * No GPU needed.
 */
class KernelTableTest {
    private static final Path CUDA = Path.of("src", "main", "cuda");
    private static final Path TABLE = CUDA.resolve("sparsa_kernels.def");
    private static final Pattern ROW = Pattern.compile("^SPARSA_KERNEL_([A-Z0-9_]+)\\(([^)]*)\\)\\s*$", Pattern.MULTILINE);
    private static final Map<String, String> TYPE_NAMES = Map.of("float", "f32", "__half", "f16", "__nv_bfloat16", "bf16");

    record Row(String family, List<String> args) {
        String name() {
            return args.get(0);
        }
    }

    static List<Row> rows() throws IOException {
        List<Row> rows = new ArrayList<>();
        Matcher m = ROW.matcher(Files.readString(TABLE));
        while (m.find()) {
            rows.add(new Row(m.group(1), Arrays.stream(m.group(2).split(",")).map(String::trim).toList()));
        }
        return rows;
    }

    @Test
    void generatedListMatchesTheTable() throws IOException {
        assertEquals(rows().stream().map(Row::name).toList(), KernelTable.NAMES,
                "KernelTable.java is stale: run kernels-cuda/build-fatbin.sh (it regenerates the list) and commit it");
        assertEquals(KernelTable.NAMES.size(), new HashSet<>(KernelTable.NAMES).size(), "names are unique");
    }

    private static String dims(String d, String dv) {
        return d.equals(dv) ? "_d" + d : "_d" + d + "v" + dv;
    }

    @Test
    void everyNameFollowsItsFamilysRule() throws IOException {
        for (Row r : rows()) {
            List<String> a = r.args();
            String expected = switch (r.family()) {
                case "TC" -> "sparsa_tc_" + TYPE_NAMES.get(a.get(1)) + dims(a.get(2), a.get(3)) + "_r" + a.get(4);
                case "TCG" -> "sparsa_tcg_" + TYPE_NAMES.get(a.get(1)) + dims(a.get(2), a.get(3)) + "_r64";
                case "WG" -> "sparsa_wg_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2) + "_r128";
                case "F32" -> "sparsa_f32" + dims(a.get(1), a.get(2));
                case "DECODE" -> "sparsa_decode_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2);
                case "DECODE_MMA" -> "sparsa_decode_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2) + "_mma";
                case "QUEST" -> "sparsa_quest_bounds_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2);
                case "ONE" -> r.name();
                default -> throw new AssertionError("unknown family " + r.family() + " in " + TABLE);
            };
            assertEquals(expected, r.name(), r.toString());
        }
    }

    @Test
    void entryPointsOutsideTheTemplatedFamiliesAreTheOneRows() throws IOException {
        Pattern entry = Pattern.compile("extern \"C\" __global__ void __launch_bounds__\\([^)]*\\) (\\w+)\\(");
        Set<String> defined = new TreeSet<>();
        try (Stream<Path> files = Files.list(CUDA)) {
            for (Path p : files.sorted().toList()) {
                Matcher m = entry.matcher(Files.readString(p));
                while (m.find()) {
                    if (!m.group(1).equals("NAME")) {
                        defined.add(p.getFileName() + ":" + m.group(1));
                    }
                }
            }
        }
        Set<String> ones = new TreeSet<>();
        for (Row r : rows()) {
            if (r.family().equals("ONE")) {
                ones.add(r.args().get(1) + ":" + r.name());
            }
        }
        assertEquals(ones, defined, "kernels defined in full, by header");
    }

    @Test
    void everyKernelTheJavaSideNamesIsInTheTable() {
        Set<String> table = new HashSet<>(KernelTable.NAMES);
        List<String> named = new ArrayList<>(List.of("sparsa_merge", "sparsa_decode_merge", "sparsa_quest_topk",
                "sparsa_gather_pages", "sparsa_est_pool", "sparsa_est_select", "sparsa_est_emit"));
        List<List<Integer>> pairs = new ArrayList<>();
        KernelChoice.HEAD_DIMS.forEach(d -> pairs.add(List.of(d, d)));
        pairs.addAll(KernelChoice.MIXED_DIMS);
        for (DType t : List.of(DType.F32, DType.F16, DType.BF16)) {
            for (List<Integer> p : pairs) {
                AttentionShape s = new AttentionShape(1, 2, 2, 100, 100, p.get(0), p.get(1));
                for (TileGeometry g : KernelChoice.GEOMETRIES) {
                    for (int cc : new int[] {80, 86, KernelChoice.HOPPER}) {
                        named.add(KernelChoice.of(s, t, g, 0, cc).name());
                    }
                }
                if (t != DType.F32) {
                    named.add(KernelChoice.packed(s, t, 0).name());
                }
            }
            for (int d : CudaDecode.DIMS) {
                named.add(CudaDecode.kernelName(t, d));
                named.add("sparsa_quest_bounds_" + CudaDecode.typeName(t) + "_d" + d);
            }
        }
        for (String n : named) {
            assertTrue(table.contains(n), n + " is not in " + TABLE);
        }
    }
}
