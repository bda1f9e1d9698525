package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The device plan format is written once in Java ({@link DevicePlanFormat}) and once in CUDA
 * ({@code sparsa_plan.cuh}): this test parses the header and requires the same names with the same
 * values, and the {@code Scalars} struct's fields in the order the host fills them. No GPU needed.
 */
class DevicePlanFormatTest {
    private static final Path CUH = Path.of("src", "main", "cuda", "sparsa_plan.cuh");
    private static final Path CU = Path.of("src", "main", "cuda", "sparsa_prefill_merge.cuh");

    /** {@code NAME = value} pairs of the enum {@code name} in the header. */
    static Map<String, Integer> cudaEnum(String header, String name) {
        Matcher m = Pattern.compile("enum\\s+" + name + "\\s*\\{([^}]*)\\}").matcher(header);
        assertTrue(m.find(), "enum " + name + " in the header");
        Map<String, Integer> values = new TreeMap<>();
        for (String item : m.group(1).split(",")) {
            String[] kv = item.trim().split("\\s*=\\s*");
            if (kv.length == 2) {
                values.put(kv[0].trim(), Integer.parseInt(kv[1].trim()));
            }
        }
        return values;
    }

    /** The Java constants of {@code format} whose names start with {@code prefix}. */
    static Map<String, Integer> javaConstants(Class<?> format, String prefix) throws IllegalAccessException {
        Map<String, Integer> values = new TreeMap<>();
        for (Field f : format.getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == int.class && f.getName().startsWith(prefix)) {
                f.setAccessible(true);
                values.put(f.getName(), f.getInt(null));
            }
        }
        return values;
    }

    @Test
    void enumsMatchTheHeader() throws IOException, IllegalAccessException {
        String h = Files.readString(CUH);
        assertEquals(cudaEnum(h, "LayoutInfoIndex"), javaConstants(DevicePlanFormat.class, "LI_"));
        assertEquals(cudaEnum(h, "WorkIndex"), javaConstants(DevicePlanFormat.class, "W_"));
        assertEquals(cudaEnum(h, "OutKind"), javaConstants(DevicePlanFormat.class, "OUT_"));
    }

    @Test
    void scalarsFollowTheStructOrder() throws IOException {
        assertEquals(structFields(Files.readString(CUH), "Scalars"), DevicePlanFormat.SCALARS);
    }

    /** The field names of the struct {@code name} in the header, in order; every field 8 bytes wide. */
    static List<String> structFields(String header, String name) {
        Matcher m = Pattern.compile("struct\\s+" + name + "\\s*\\{([^}]*)\\}").matcher(header);
        assertTrue(m.find(), "struct " + name + " in the header");
        List<String> fields = new ArrayList<>();
        for (String decl : m.group(1).replaceAll("//[^\\n]*", "").split(";")) {
            String d = decl.trim();
            if (d.isEmpty()) {
                continue;
            }
            assertTrue(d.startsWith("long long ") || d.startsWith("double "), "8-byte fields only: " + d);
            String names = d.startsWith("double ") ? d.substring(7) : d.substring(10);
            Arrays.stream(names.split(",")).map(String::trim).forEach(fields::add);
        }
        return fields;
    }

    @Test
    void mergeItemsMatchTheMergeKernel() throws IOException {
        String cu = Files.readString(CU);
        Matcher stride = Pattern.compile("mergeWork \\+ blockIdx\\.y \\* (\\d+)").matcher(cu);
        assertTrue(stride.find(), "the merge kernel's item stride in " + CU);
        assertEquals(DevicePlanFormat.M_STRIDE, Integer.parseInt(stride.group(1)));
        assertTrue(cu.contains("const int slice = MW[" + DevicePlanFormat.M_SLICE + "];"), "slice index");
        assertTrue(cu.contains("L = ints + (size_t)MW[" + DevicePlanFormat.M_LAYOUT + "] * LI_STRIDE;"), "layout index");
        assertTrue(cu.contains("const long long base = MW[" + DevicePlanFormat.M_SCRATCH_BASE + "];"), "scratch base index");
    }

    @Test
    void scalarsAreFilledByName() {
        Tensor q = Tensor.allocate(DType.BF16, Layout.BSHD, 2, 4, 10, 64);
        Tensor out = Tensor.allocate(DType.F16, Layout.BHSD, 2, 4, 10, 32);
        long[] a = DevicePlanFormat.scalars(q, q, q, out, null, new AttentionShape(2, 4, 2, 10, 10, 64, 32), 128, 0.125, 30);
        assertEquals(DevicePlanFormat.SCALARS.size(), a.length);
        assertEquals(q.stride(0), a[DevicePlanFormat.scalar("qsb")]);
        assertEquals(q.stride(2), a[DevicePlanFormat.scalar("kss")]);
        assertEquals(out.stride(1), a[DevicePlanFormat.scalar("osh")]);
        assertEquals(0, a[DevicePlanFormat.scalar("lss")]);
        assertEquals(2, a[DevicePlanFormat.scalar("group")]);
        assertEquals(128, a[DevicePlanFormat.scalar("blockCols")]);
        assertEquals(DevicePlanFormat.OUT_F16, a[DevicePlanFormat.scalar("outKind")]);
        assertEquals(32, a[DevicePlanFormat.scalar("valueDim")]);
        assertEquals(0.125, Double.longBitsToDouble(a[DevicePlanFormat.scalar("scale")]));
        assertEquals(30.0, Double.longBitsToDouble(a[DevicePlanFormat.scalar("softCap")]));
    }
}
