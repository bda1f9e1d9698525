package dev.sparsa.patterns;

import dev.sparsa.pattern.Pattern;

/**
 * One representative of a pattern family in {@link PatternCatalogue}: the family's name, a one-line
 * description of this instance, and the pattern.
 */
public record CatalogueEntry(String family, String description, Pattern pattern) {
    public CatalogueEntry {
        if (family == null || description == null || pattern == null) {
            throw new IllegalArgumentException("family, description, pattern: must not be null");
        }
    }
}
