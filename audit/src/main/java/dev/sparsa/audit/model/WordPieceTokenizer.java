package dev.sparsa.audit.model;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.InputStream;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * BERT's uncased tokenizer as a Hugging Face {@code tokenizer.json} of type WordPiece describes it:
 * clean the text (drop control characters, map whitespace to spaces), put spaces around CJK
 * ideographs, lower-case and strip accents, split on whitespace and around every punctuation
 * character, then split each word greedily into the longest vocabulary pieces ({@code ##} marks a
 * piece inside a word; a word that cannot be split, or is longer than 100 characters, becomes
 * {@code [UNK]}), and wrap the ids in {@code [CLS] … [SEP]}.
 */
public final class WordPieceTokenizer {
    private final Map<String, Integer> vocab;
    private final int unk;
    private final int cls;
    private final int sep;
    private final String prefix;
    private final int maxWordChars;

    private WordPieceTokenizer(Map<String, Integer> vocab, String unkToken, String prefix, int maxWordChars) {
        this.vocab = vocab;
        this.prefix = prefix;
        this.maxWordChars = maxWordChars;
        this.unk = id(unkToken);
        this.cls = id("[CLS]");
        this.sep = id("[SEP]");
    }

    private int id(String token) {
        Integer i = vocab.get(token);
        if (i == null) {
            throw new IllegalArgumentException("tokenizer: the vocabulary has no " + token);
        }
        return i;
    }

    /**
     * Reads a {@code tokenizer.json} whose model is WordPiece.
     *
     * @throws IllegalArgumentException if the model is of another type or has no vocabulary
     */
    public static WordPieceTokenizer read(InputStream json) throws IOException {
        Map<String, Integer> vocab = new HashMap<>();
        String type = null;
        String unk = "[UNK]";
        String prefix = "##";
        int maxChars = 100;
        try (JsonParser p = new JsonFactory().createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IllegalArgumentException("tokenizer: not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                if (!field.equals("model")) {
                    p.skipChildren();
                    continue;
                }
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String f = p.currentName();
                    p.nextToken();
                    switch (f) {
                        case "type" -> type = p.getText();
                        case "unk_token" -> unk = p.getText();
                        case "continuing_subword_prefix" -> prefix = p.getText();
                        case "max_input_chars_per_word" -> maxChars = p.getIntValue();
                        case "vocab" -> {
                            while (p.nextToken() == JsonToken.FIELD_NAME) {
                                String token = p.currentName();
                                p.nextToken();
                                vocab.put(token, p.getIntValue());
                            }
                        }
                        default -> p.skipChildren();
                    }
                }
            }
        }
        if (!"WordPiece".equals(type) || vocab.isEmpty()) {
            throw new IllegalArgumentException("tokenizer: expected a WordPiece model with a vocabulary, got type " + type);
        }
        return new WordPieceTokenizer(vocab, unk, prefix, maxChars);
    }

    /** Token ids of {@code text}: {@code [CLS]}, the pieces (at most {@code maxTokens − 2}), {@code [SEP]}. */
    public int[] encode(String text, int maxTokens) {
        if (maxTokens < 2) {
            throw new IllegalArgumentException("maxTokens: must be >= 2, got " + maxTokens);
        }
        List<Integer> ids = new ArrayList<>();
        ids.add(cls);
        for (String word : words(text)) {
            if (ids.size() >= maxTokens - 1) {
                break;
            }
            for (int id : pieces(word)) {
                if (ids.size() >= maxTokens - 1) {
                    break;
                }
                ids.add(id);
            }
        }
        ids.add(sep);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Normalised words and punctuation marks, in order. */
    List<String> words(String text) {
        StringBuilder clean = new StringBuilder(text.length());
        text.codePoints().forEach(c -> {
            if (c == 0 || c == 0xFFFD || isControl(c)) {
                return;
            }
            if (isWhitespace(c)) {
                clean.append(' ');
            } else if (isCjk(c)) {
                clean.append(' ').appendCodePoint(c).append(' ');
            } else {
                clean.appendCodePoint(c);
            }
        });
        String lower = clean.toString().toLowerCase(java.util.Locale.ROOT);
        String stripped = Normalizer.normalize(lower, Normalizer.Form.NFD).codePoints()
                .filter(c -> Character.getType(c) != Character.NON_SPACING_MARK)
                .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
        List<String> out = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        stripped.codePoints().forEach(c -> {
            if (c == ' ') {
                flush(word, out);
            } else if (isPunctuation(c)) {
                flush(word, out);
                out.add(new String(Character.toChars(c)));
            } else {
                word.appendCodePoint(c);
            }
        });
        flush(word, out);
        return out;
    }

    private static void flush(StringBuilder word, List<String> out) {
        if (!word.isEmpty()) {
            out.add(word.toString());
            word.setLength(0);
        }
    }

    /** Greedy longest-match-first pieces of one word. */
    private List<Integer> pieces(String word) {
        if (word.codePointCount(0, word.length()) > maxWordChars) {
            return List.of(unk);
        }
        List<Integer> out = new ArrayList<>();
        int start = 0;
        while (start < word.length()) {
            int end = word.length();
            Integer found = null;
            while (start < end) {
                String piece = (start > 0 ? prefix : "") + word.substring(start, end);
                found = vocab.get(piece);
                if (found != null) {
                    break;
                }
                end = word.offsetByCodePoints(end, -1);
            }
            if (found == null) {
                return List.of(unk);
            }
            out.add(found);
            start = end;
        }
        return out;
    }

    private static boolean isWhitespace(int c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || Character.getType(c) == Character.SPACE_SEPARATOR;
    }

    private static boolean isControl(int c) {
        if (c == '\t' || c == '\n' || c == '\r') {
            return false;
        }
        int t = Character.getType(c);
        return t == Character.CONTROL || t == Character.FORMAT || t == Character.PRIVATE_USE || t == Character.SURROGATE
                || t == Character.UNASSIGNED;
    }

    private static boolean isPunctuation(int c) {
        if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
            return true;
        }
        int t = Character.getType(c);
        return t == Character.CONNECTOR_PUNCTUATION || t == Character.DASH_PUNCTUATION || t == Character.START_PUNCTUATION
                || t == Character.END_PUNCTUATION || t == Character.INITIAL_QUOTE_PUNCTUATION
                || t == Character.FINAL_QUOTE_PUNCTUATION || t == Character.OTHER_PUNCTUATION;
    }

    private static boolean isCjk(int c) {
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF)
                || (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF)
                || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }
}
