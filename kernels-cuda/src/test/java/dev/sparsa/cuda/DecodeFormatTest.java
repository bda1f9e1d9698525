package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormatTest.cudaEnum;
import static dev.sparsa.cuda.DevicePlanFormatTest.javaConstants;
import static dev.sparsa.cuda.DevicePlanFormatTest.structFields;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The decode kernels' metadata format is written once in Java ({@link DecodeFormat}) and once in
 * CUDA ({@code sparsa_decode.cuh}): this test parses the header and requires the same work-item and
 * merge-tile indices and the {@code DecodeScalars} fields in the order the host fills them. No GPU
 * needed.
 */
class DecodeFormatTest {
    private static final Path CUH = Path.of("src", "main", "cuda", "sparsa_decode.cuh");

    @Test
    void enumsMatchTheHeader() throws IOException, IllegalAccessException {
        String h = Files.readString(CUH);
        assertEquals(cudaEnum(h, "DecodeItem"), javaConstants(DecodeFormat.class, "DI_"));
        assertEquals(cudaEnum(h, "DecodeMerge"), javaConstants(DecodeFormat.class, "DM_"));
    }

    @Test
    void scalarsFollowTheStructOrder() throws IOException {
        assertEquals(structFields(Files.readString(CUH), "DecodeScalars"), DecodeFormat.SCALARS);
    }

    @Test
    void theKernelsReadTheirItemsAtTheseStrides() throws IOException {
        String h = Files.readString(CUH);
        Matcher item = Pattern.compile("meta \\+ S\\.oItems \\+ \\(long long\\)blockIdx\\.x \\* (\\w+);").matcher(h);
        assertTrue(item.find(), "the decode kernel's item address");
        assertEquals("DI_STRIDE", item.group(1));
        // the merge tile's fields, read by the merge in the decode kernels and by the merge kernel
        Matcher merge = Pattern.compile("S\\.oMerges \\+ \\(long long\\)tile(?:Idx)? \\* (\\w+)").matcher(h);
        int tileReads = 0;
        while (merge.find()) {
            assertEquals("DM_STRIDE", merge.group(1));
            tileReads++;
        }
        assertTrue(tileReads >= 3, "the merge tile's address, read " + tileReads + " times");
    }

    @Test
    void scalarsAreFilledByName() {
        Tensor q = Tensor.allocate(DType.BF16, Layout.BSHD, 2, 8, 3, 64);
        Tensor k = Tensor.allocate(DType.BF16, Layout.BHSD, 5, 2, 16, 64);
        Tensor v = Tensor.allocate(DType.BF16, Layout.BSHD, 5, 2, 16, 64);
        Tensor out = Tensor.allocate(DType.F16, Layout.BHSD, 2, 8, 3, 64);
        long[] offsets = {2, 10, 11, 12, 13, 14, 15, 16};
        long[] a = CudaDecode.scalars(q, k, v, out, null, 4, 3, true, 4, 7, 1, 2, 2, offsets, 9, 0.125, 30);
        assertEquals(DecodeFormat.SCALARS.size(), a.length);
        assertEquals(q.stride(0), a[DecodeFormat.scalar("qsb")]);
        assertEquals(q.stride(2), a[DecodeFormat.scalar("qss")]);
        assertEquals(k.stride(1), a[DecodeFormat.scalar("ksh")]);
        assertEquals(v.stride(2), a[DecodeFormat.scalar("vss")]);
        assertEquals(out.stride(1), a[DecodeFormat.scalar("osh")]);
        assertEquals(0, a[DecodeFormat.scalar("lsb")]);
        assertEquals(4, a[DecodeFormat.scalar("group")]);
        assertEquals(3, a[DecodeFormat.scalar("rows")]);
        assertEquals(DevicePlanFormat.OUT_F16, a[DecodeFormat.scalar("outKind")]);
        assertEquals(1, a[DecodeFormat.scalar("paged")]);
        assertEquals(4, a[DecodeFormat.scalar("pageShift")]);
        assertEquals(7, a[DecodeFormat.scalar("tableWidth")]);
        assertEquals(1, a[DecodeFormat.scalar("sparse")]);
        assertEquals(2, a[DecodeFormat.scalar("kvHeads")]);
        assertEquals(2, a[DecodeFormat.scalar("batch")]);
        assertEquals(2, a[DecodeFormat.scalar("oTables")]);
        assertEquals(10, a[DecodeFormat.scalar("oSpanOffsets")]);
        assertEquals(16, a[DecodeFormat.scalar("oLists")]);
        assertEquals(9, a[DecodeFormat.scalar("listWidth")]);
        assertEquals(0.125, Double.longBitsToDouble(a[DecodeFormat.scalar("scale")]));
        assertEquals(30.0, Double.longBitsToDouble(a[DecodeFormat.scalar("softCap")]));
        // Quest's page choice alone has no output: its kind reads as f32 and its strides as 0
        long[] choice = CudaDecode.scalars(q, k, v, null, null, 4, 3, true, 4, 7, 2, 2, 2, offsets, 9, 0.125, 0);
        assertEquals(DevicePlanFormat.OUT_F32, choice[DecodeFormat.scalar("outKind")]);
        assertEquals(0, choice[DecodeFormat.scalar("oss")]);
    }
}
