package dev.rill.oracle;

import org.apache.kafka.streams.kstream.Windowed;

/**
 * The user functions of the oracle's topologies; the Rust interpreter (tests/support/oracle)
 * has the same ones.
 */
final class Functions {
    private Functions() {}

    /** The table filters' predicate: an even-length value. */
    static boolean evenLength(final String value) {
        return value.length() % 2 == 0;
    }

    /** Every join's joiner: {@code left + "+" + right}, a missing side printed as {@code null}. */
    static String join(final String left, final String right) {
        return left + "+" + right;
    }

    /**
     * The foreign key of a value {@code "<fk>:<payload>"}: the text before its first {@code :};
     * null (no key) for a value without one, or a null value.
     */
    static String foreignKey(final String value) {
        if (value == null) {
            return null;
        }
        final int colon = value.indexOf(':');
        return colon < 0 ? null : value.substring(0, colon);
    }

    /** A count or aggregate written as a decimal string; null stays null. */
    static String decimal(final Long value) {
        return value == null ? null : value.toString();
    }

    /** A windowed key written as {@code "<key>@<start>/<end>"}. */
    static String windowedKey(final Windowed<String> key) {
        return key.key() + "@" + key.window().start() + "/" + key.window().end();
    }
}
