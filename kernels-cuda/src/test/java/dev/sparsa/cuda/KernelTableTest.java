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
 * The kernel table {@code src/main/cuda/sparsa_kernels.def} is the one list of the kernels: this test
 * requires {@link KernelTable} (generated from it by build-fatbin.sh) to list the same names in the same
 * order, each with the image of the one translation unit (a {@code .cu} file of that folder) that
 * compiles its row, every row's name to follow its family's naming rule from its template arguments,
 * every kernel without template arguments to be defined in the header its row names (and no other
 * entry point to exist outside the table), and every name the Java side launches to be in the table.
 * No GPU needed.
 */
class KernelTableTest {
    private static final Path CUDA = Path.of("src", "main", "cuda");
    private static final Path TABLE = CUDA.resolve("sparsa_kernels.def");
    private static final Pattern ROW = Pattern.compile("^SPARSA_KERNEL_([A-Z0-9_]+)\\(([^)]*)\\)\\s*$", Pattern.MULTILINE);
    private static final Map<String, String> TYPE_NAMES = Map.of("float", "f32", "__half", "f16", "__nv_bfloat16", "bf16");

    record Row(String family, List<String> args, String text) {
        String name() {
            return args.get(0);
        }
    }

    static List<Row> rows() throws IOException {
        List<Row> rows = new ArrayList<>();
        Matcher m = ROW.matcher(Files.readString(TABLE));
        while (m.find()) {
            rows.add(new Row(m.group(1), Arrays.stream(m.group(2).split(",")).map(String::trim).toList(), m.group().strip()));
        }
        return rows;
    }

    @Test
    void generatedListMatchesTheTable() throws IOException {
        assertEquals(rows().stream().map(Row::name).toList(), KernelTable.NAMES,
                "KernelTable.java is stale: run kernels-cuda/build-fatbin.sh (it regenerates the list) and commit it");
        assertEquals(KernelTable.NAMES.size(), new HashSet<>(KernelTable.NAMES).size(), "names are unique");
    }

    /**
     * A translation unit: its image's name, the families whose macros it defines, the element types it
     * selects (empty: all), and the files it includes.
     */
    record Unit(String image, Set<String> families, Set<String> types, Set<String> includes) {
        /** Whether this unit compiles {@code row}: its family's macro, or for a ONE row its header. */
        boolean compiles(Row row) {
            if (row.family().equals("ONE")) {
                return includes.contains(row.args().get(1));
            }
            return families.contains(row.family()) && (types.isEmpty() || types.contains(row.args().get(1)));
        }
    }

    private static final Pattern DEFINES = Pattern.compile("^#define SPARSA_KERNEL_([A-Z0-9_]+)\\(", Pattern.MULTILINE);
    private static final Pattern SELECTS = Pattern.compile("^#define SPARSA_ROWS_OF_(\\w+)\\(ROW\\) ROW\\s*$", Pattern.MULTILINE);
    private static final Pattern INCLUDE = Pattern.compile("^\\s*#include \"([^\"]+)\"", Pattern.MULTILINE);

    /** The translation units (the .cu files of src/main/cuda), by image name. */
    static List<Unit> units() throws IOException {
        List<Unit> units = new ArrayList<>();
        try (Stream<Path> files = Files.list(CUDA)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".cu")).sorted().toList()) {
                String text = Files.readString(p);
                Set<String> families = new TreeSet<>();
                DEFINES.matcher(text).results().map(r -> r.group(1)).filter(f -> !f.equals("ONE")).forEach(families::add);
                Set<String> types = new TreeSet<>();
                SELECTS.matcher(text).results().map(r -> r.group(1)).forEach(types::add);
                String file = p.getFileName().toString();
                units.add(new Unit(file.substring(0, file.length() - 3), families, types, includes(file)));
            }
        }
        return units;
    }

    /** {@code file} and every file of src/main/cuda it includes, directly or through other files. */
    static Set<String> includes(String file) throws IOException {
        Set<String> seen = new TreeSet<>();
        List<String> todo = new ArrayList<>(List.of(file));
        while (!todo.isEmpty()) {
            String f = todo.removeLast();
            if (seen.add(f)) {
                INCLUDE.matcher(Files.readString(CUDA.resolve(f))).results().map(r -> r.group(1))
                        .filter(i -> Files.exists(CUDA.resolve(i))).forEach(todo::add);
            }
        }
        return seen;
    }

    @Test
    void theImagesAreTheTranslationUnits() throws IOException {
        assertEquals(units().stream().map(Unit::image).toList(), KernelTable.IMAGES,
                "KernelTable.java is stale: run kernels-cuda/build-fatbin.sh and commit it");
    }

    @Test
    void everyRowIsCompiledByExactlyOneUnitWhoseImageTheTableNames() throws IOException {
        List<Unit> units = units();
        Map<String, String> imageOf = new java.util.HashMap<>();
        KernelTable.KERNELS.forEach(k -> imageOf.put(k.name(), k.image()));
        Map<String, Integer> rowsPerUnit = new java.util.TreeMap<>();
        for (Row r : rows()) {
            List<String> compiling = units.stream().filter(u -> u.compiles(r)).map(Unit::image).toList();
            assertEquals(1, compiling.size(), r.name() + " is compiled by " + compiling);
            assertEquals(compiling.get(0), imageOf.get(r.name()), r.name() + ": image in KernelTable.java (stale? run "
                    + "kernels-cuda/build-fatbin.sh)");
            rowsPerUnit.merge(compiling.get(0), 1, Integer::sum);
        }
        for (Unit u : units) {
            assertTrue(rowsPerUnit.getOrDefault(u.image(), 0) > 0, u.image() + " compiles no row of the table");
            assertTrue(u.includes().contains("sparsa_kernel_rows.cuh"), u.image() + " does not expand the table");
        }
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
                case "WG8" -> "sparsa_wg_e4m3_d" + a.get(1) + "_r128";
                case "F32" -> "sparsa_f32" + dims(a.get(1), a.get(2));
                case "DECODE" -> "sparsa_decode_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2);
                case "DECODE_MMA" -> "sparsa_decode_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2) + "_mma";
                case "DECODE_MMA8" -> "sparsa_decode_e4m3_" + (a.get(1).equals("uint8_t") ? "e4m3" : TYPE_NAMES.get(a.get(1)))
                        + "_d" + a.get(3) + "_mma";
                case "QUEST" -> "sparsa_quest_bounds_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2);
                case "DECODE_SCORES" -> "sparsa_decode_key_scores_" + TYPE_NAMES.get(a.get(1)) + "_d" + a.get(2);
                case "DECODE_SCORES8" -> "sparsa_decode_key_scores_e4m3_"
                        + (a.get(1).equals("uint8_t") ? "e4m3" : TYPE_NAMES.get(a.get(1))) + "_d" + a.get(2);
                case "QUEST8" -> "sparsa_quest_bounds_e4m3_" + (a.get(1).equals("uint8_t") ? "e4m3" : TYPE_NAMES.get(a.get(1)))
                        + "_d" + a.get(2);
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
                "sparsa_quest_topk_c8", "sparsa_decode_topk_choose", "sparsa_decode_topk_choose_c8",
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
                named.add(CudaDecode.questBoundsName(t, t, d));
                named.add(CudaDecodeTopK.keyScoresName(t, t, d));
            }
        }
        for (DType qt : List.of(DType.F16, DType.BF16, DType.E4M3)) {
            for (int d : CudaDecode.E4M3_DIMS) {
                named.add(CudaDecode.kernelName(DType.E4M3, qt, d));
                named.add(CudaDecode.questBoundsName(DType.E4M3, qt, d));
                named.add(CudaDecodeTopK.keyScoresName(DType.E4M3, qt, d));
            }
        }
        KernelChoiceTest.withE4m3(() -> named.add(KernelChoice.of(AttentionShape.of(1, 2, 100, 100, KernelChoice.E4M3_DIM),
                DType.E4M3, KernelChoice.GEOMETRIES.get(1), 0, KernelChoice.HOPPER).name()));
        for (String n : named) {
            assertTrue(table.contains(n), n + " is not in " + TABLE);
        }
    }
}
