package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What makes a programmatic edge safe, checked without a device: every kernel the graphs may start early
 * waits for the kernel before it before touching its outputs (as its first statement, or after staging only its
 * work item and Q), in the CUDA sources the image is built from; and the mode's property is read strictly. The
 * graphs themselves run in CudaDecodeStepGpuTest.
 */
class DependentLaunchTest {
    private static final Path SOURCES = Path.of("src/main/cuda");
    /** The headers that define the kernels of the image sparsa_decode_quest (its unit includes them). */
    private static final List<String> DECODE_UNIT = List.of("sparsa_decode.cuh", "sparsa_quest.cuh",
            "sparsa_decode_scores.cuh");

    @Test
    void theWaitingKernelsAreTheDecodeImagesKernels() throws IOException {
        assertFalse(DependentLaunch.WAITING_KERNELS.isEmpty());
        for (KernelTable.Kernel k : KernelTable.KERNELS) {
            assertEquals(k.image().equals("sparsa_decode_quest"), DependentLaunch.WAITING_KERNELS.contains(k.name()),
                    k.name());
        }
        String unit = Files.readString(SOURCES.resolve("sparsa_decode_quest.cu"));
        for (String header : DECODE_UNIT) {
            assertTrue(unit.contains("#include \"" + header + "\""), "the decode unit includes " + header);
        }
    }

    @Test
    void aDecodeKernelThatReadsQBeforeWaitingStartsEarlyOnlyAfterAChoice() {
        String decode = "sparsa_decode_bf16_d128_mma", e4m3 = "sparsa_decode_e4m3_bf16_d128_mma";
        for (String choice : DependentLaunch.CHOICE_KERNELS) {
            assertTrue(DependentLaunch.WAITING_KERNELS.contains(choice), choice + " is a kernel of the decode image");
            assertTrue(DependentLaunch.mayStartEarly(choice, decode), choice);
            assertTrue(DependentLaunch.mayStartEarly(choice, e4m3), choice);
        }
        // a kernel that may write Q (a projection captured in the same graph, or a merge whose output is the
        // next layer's query) keeps the decode kernel behind it until it has ended
        for (String up : List.of("a_projection_kernel", "sparsa_decode_merge", "sparsa_quest_bounds_bf16_d128",
                "sparsa_decode_bf16_d128_mma")) {
            assertFalse(DependentLaunch.mayStartEarly(up, decode), up);
        }
        assertFalse(DependentLaunch.mayStartEarly(null, decode));
        // kernels that wait first may start early after any kernel
        for (String down : List.of("sparsa_decode_merge", "sparsa_quest_topk_c8", "sparsa_decode_f32_d64",
                "sparsa_quest_bounds_bf16_d128", "sparsa_decode_key_scores_bf16_d128")) {
            assertTrue(DependentLaunch.mayStartEarly("a_projection_kernel", down), down);
            assertTrue(DependentLaunch.mayStartEarly(null, down), down);
        }
        // nothing outside the decode image does
        assertFalse(DependentLaunch.mayStartEarly("sparsa_quest_topk", "sparsa_wg_bf16_d128_r128"));
        assertFalse(DependentLaunch.mayStartEarly("sparsa_quest_topk", "a_projection_kernel"));
    }

    @Test
    void theKernelsThatReadBeforeWaitingAreTheTensorCoreDecodeRows() throws IOException {
        // the table's DECODE_MMA and DECODE_MMA8 rows (the entry points that call decodeMmaKernel) and only those
        Pattern row = Pattern.compile("^SPARSA_KERNEL_(\\w+)\\((\\w+),", Pattern.MULTILINE);
        Matcher m = row.matcher(Files.readString(SOURCES.resolve("sparsa_kernels.def")));
        int mma = 0;
        while (m.find()) {
            boolean tensorCoreDecode = m.group(1).equals("DECODE_MMA") || m.group(1).equals("DECODE_MMA8");
            assertEquals(tensorCoreDecode, DependentLaunch.readsBeforeWaiting(m.group(2)), m.group(0));
            mma += tensorCoreDecode ? 1 : 0;
        }
        assertTrue(mma >= 4, "found " + mma + " tensor-core decode rows");
    }

    @Test
    void everyKernelOfTheDecodeImageWaitsBeforeAnythingElse() throws IOException {
        // the body of each entry point, line continuations of the macros removed; a body may declare its dynamic
        // shared memory, open the namespace and hold comments before the wait, which touch no memory
        Pattern global = Pattern.compile("extern \"C\" __global__");
        Pattern harmless = Pattern.compile("\\s*(extern __shared__[^;]*;|using namespace sparsa;|//[^\\n]*)");
        int kernels = 0, mma = 0;
        for (String header : DECODE_UNIT) {
            String src = Files.readString(SOURCES.resolve(header)).replace("\\\n", "\n");
            Matcher m = global.matcher(src);
            while (m.find()) {
                int open = src.indexOf('{', m.end());
                String signature = src.substring(m.start(), open).replaceAll("\\s+", " ");
                String body = src.substring(open + 1);
                Matcher h;
                while ((h = harmless.matcher(body)).lookingAt()) {
                    body = body.substring(h.end());
                }
                String first = body.strip();
                first = first.substring(0, first.indexOf(';') + 1);
                if (first.startsWith("sparsa::decodeMmaKernel<")) {
                    mma++;
                } else {
                    assertTrue(first.equals("sparsa::gridDependencyWait();") || first.equals("gridDependencyWait();")
                                    || first.equals("__trap();"),
                            header + ": " + signature + " starts with '" + first + "', not the wait");
                }
                kernels++;
            }
        }
        assertTrue(kernels >= 10, "found " + kernels + " entry points");
        assertTrue(mma >= 2, "found " + mma + " tensor-core decode entry points");
        // the tensor-core decode kernels stage their work item and Q first (written before the graph runs), then
        // wait; before the wait, no key is read or copied and nothing but shared memory is written
        String src = Files.readString(SOURCES.resolve("sparsa_decode.cuh"));
        int start = src.indexOf("__device__ void decodeMmaKernel(");
        int wait = src.indexOf("gridDependencyWait();", start);
        assertTrue(start >= 0 && wait > start, "decodeMmaKernel waits");
        String before = src.substring(start, wait);
        for (String touch : List.of("decMmaIssue", "cpAsync", "atomic", "oLists", "kBase[", "vBase[", "out[", "lse[",
                "scratchO[", "scratchLse[", "mergeCounts[", "decMergeIfLast")) {
            assertFalse(before.contains(touch), "decodeMmaKernel uses " + touch + " before the wait");
        }
    }

    @Test
    void theModeIsReadStrictly() {
        String before = System.getProperty(DependentLaunch.PROPERTY);
        try {
            System.clearProperty(DependentLaunch.PROPERTY);
            assertEquals(DependentLaunch.Mode.ON, DependentLaunch.mode());
            List<DependentLaunch.Mode> modes = new ArrayList<>();
            for (String v : List.of(" On ", "OFF")) {
                System.setProperty(DependentLaunch.PROPERTY, v);
                modes.add(DependentLaunch.mode());
            }
            assertEquals(List.of(DependentLaunch.Mode.ON, DependentLaunch.Mode.OFF), modes);
            assertEquals("off", DependentLaunch.status());
            System.setProperty(DependentLaunch.PROPERTY, "started");
            assertEquals("sparsa.cuda.dependentLaunch: wants on or off, got 'started'",
                    assertThrows(IllegalArgumentException.class, DependentLaunch::mode).getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(DependentLaunch.PROPERTY);
            } else {
                System.setProperty(DependentLaunch.PROPERTY, before);
            }
        }
    }
}
