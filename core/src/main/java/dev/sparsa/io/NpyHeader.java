package dev.sparsa.io;

import dev.sparsa.tensor.DType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The header of a {@code .npy} file: the Python dictionary literal {@code {'descr': '<f4',
 * 'fortran_order': False, 'shape': (2, 3), }} that NumPy's {@code numpy.lib.format} writes after the
 * magic string, version and header length. Parses exactly that grammar (keys in any order, single or
 * double quotes, optional trailing commas) and formats it the way NumPy does.
 */
record NpyHeader(String descr, boolean fortranOrder, long[] shape) {

    /**
     * The descriptor Sparsa writes for each type; bf16 goes out as its bit patterns in {@code uint16},
     * e4m3 as its codes in {@code uint8} (NumPy has neither type).
     */
    static String descrOf(DType t) {
        return switch (t) {
            case F32 -> "<f4";
            case F16 -> "<f2";
            case BF16 -> "<u2";
            case E4M3 -> "|u1";
        };
    }

    /**
     * The type a descriptor holds: {@code <f4} f32, {@code <f2} f16, {@code <u2} (and {@code <V2},
     * the untyped two-byte form some bf16 libraries write) bf16 bit patterns, {@code |u1} (and {@code
     * |V1}, what {@code ml_dtypes.float8_e4m3fn} saves) e4m3 codes. {@code |} and {@code =} byte orders
     * are little-endian on every platform Sparsa runs on.
     */
    static DType dtypeOf(Path file, String descr) {
        String d = descr.length() == 3 && (descr.charAt(0) == '|' || descr.charAt(0) == '=') ? "<" + descr.substring(1) : descr;
        return switch (d) {
            case "<f4" -> DType.F32;
            case "<f2" -> DType.F16;
            case "<u2", "<V2" -> DType.BF16;
            case "<u1", "<V1" -> DType.E4M3;
            default -> throw new TensorFileException(file, "unsupported dtype '" + descr + "' (Sparsa reads float32 '<f4', "
                    + "float16 '<f2', bfloat16 stored as uint16 '<u2', and e4m3 codes stored as uint8 '|u1'"
                    + (descr.startsWith(">") ? "; this array is big-endian: save it with a.astype(a.dtype.newbyteorder('<'))"
                            : descr.endsWith("f8") ? "; convert with a.astype(numpy.float32)" : "") + ")");
        };
    }

    /** NumPy's formatting: keys sorted, a one-axis shape written {@code (n,)}. */
    String format() {
        StringBuilder s = new StringBuilder("{'descr': '").append(descr).append("', 'fortran_order': ")
                .append(fortranOrder ? "True" : "False").append(", 'shape': (");
        for (int i = 0; i < shape.length; i++) {
            s.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return s.append(shape.length == 1 ? ",), }" : "), }").toString();
    }

    /** Parses the dictionary text. @throws TensorFileException naming the first thing that is wrong */
    static NpyHeader parse(Path file, String text) {
        Parser p = new Parser(file, text);
        String descr = null;
        Boolean fortran = null;
        long[] shape = null;
        p.expect('{');
        while (!p.peek('}')) {
            String key = p.string();
            p.expect(':');
            switch (key) {
                case "descr" -> descr = p.string();
                case "fortran_order" -> fortran = p.bool();
                case "shape" -> shape = p.tuple();
                default -> throw p.error("unexpected key '" + key + "'");
            }
            if (!p.peek('}')) {
                p.expect(',');
            }
        }
        p.expect('}');
        p.end();
        if (descr == null || fortran == null || shape == null) {
            throw p.error("missing " + (descr == null ? "'descr'" : fortran == null ? "'fortran_order'" : "'shape'"));
        }
        return new NpyHeader(descr, fortran, shape);
    }

    /** A recursive-descent reader of the header's literal. */
    private static final class Parser {
        private final Path file;
        private final String s;
        private int i;

        Parser(Path file, String s) {
            this.file = file;
            this.s = s;
        }

        TensorFileException error(String what) {
            return new TensorFileException(file, "bad .npy header (" + what + " at character " + i + "): "
                    + s.strip());
        }

        private void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        boolean peek(char c) {
            ws();
            return i < s.length() && s.charAt(i) == c;
        }

        void expect(char c) {
            if (!peek(c)) {
                throw error("expected '" + c + "'");
            }
            i++;
        }

        void end() {
            ws();
            if (i != s.length()) {
                throw error("trailing characters");
            }
        }

        String string() {
            ws();
            if (i >= s.length() || (s.charAt(i) != '\'' && s.charAt(i) != '"')) {
                throw error("expected a quoted string");
            }
            char q = s.charAt(i++);
            int start = i;
            while (i < s.length() && s.charAt(i) != q) {
                i++;
            }
            if (i >= s.length()) {
                throw error("unterminated string");
            }
            return s.substring(start, i++);
        }

        boolean bool() {
            ws();
            if (s.startsWith("True", i)) {
                i += 4;
                return true;
            }
            if (s.startsWith("False", i)) {
                i += 5;
                return false;
            }
            throw error("expected True or False");
        }

        long[] tuple() {
            expect('(');
            List<Long> dims = new ArrayList<>();
            while (!peek(')')) {
                ws();
                int start = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) {
                    i++;
                }
                if (i == start) {
                    throw error("expected a non-negative integer axis length");
                }
                String digits = s.substring(start, i);
                if (i < s.length() && s.charAt(i) == 'L') {
                    i++; // Python 2's long suffix, as old files carry it
                }
                try {
                    dims.add(Long.parseLong(digits));
                } catch (NumberFormatException e) {
                    throw error("axis length " + digits + " overflows 64 bits");
                }
                if (!peek(')')) {
                    expect(',');
                }
            }
            expect(')');
            long[] out = new long[dims.size()];
            for (int k = 0; k < out.length; k++) {
                out[k] = dims.get(k);
            }
            return out;
        }
    }

    /** The header's bytes as stored: ASCII for versions 1 and 2, UTF-8 for version 3. */
    static String decode(byte[] bytes, int major) {
        return new String(bytes, major >= 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
    }
}
