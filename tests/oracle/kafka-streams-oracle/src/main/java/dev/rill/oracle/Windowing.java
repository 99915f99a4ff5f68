package dev.rill.oracle;

import java.time.Duration;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.streams.kstream.CogroupedKStream;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;

/**
 * Windowed aggregations from a {@code "windows"} description: {@code {"type":
 * "tumbling"|"hopping"|"sliding"|"session", "size_ms", "advance_ms", "grace_ms", "gap_ms"}}.
 * Tumbling and hopping: {@code TimeWindows.ofSizeAndGrace(size, grace).advanceBy(advance)}
 * (advance defaults to the size); sliding: {@code SlidingWindows.ofTimeDifferenceAndGrace(size,
 * grace)}; session: {@code SessionWindows.ofInactivityGapAndGrace(gap, grace)}.
 */
final class Windowing {
    private Windowing() {}

    /** The windowed count of {@code grouped}. */
    static KTable<Windowed<String>, Long> count(final KGroupedStream<String, String> grouped,
                                               final JsonNode windows) {
        return switch (type(windows)) {
            case "tumbling", "hopping" -> grouped.windowedBy(timeWindows(windows)).count();
            case "sliding" -> grouped.windowedBy(slidingWindows(windows)).count();
            default -> grouped.windowedBy(sessionWindows(windows)).count();
        };
    }

    /**
     * The windowed aggregate of {@code cogrouped} from {@code ""}; merged sessions are
     * concatenated (the earlier aggregate first).
     */
    static KTable<Windowed<String>, String> cogroup(final CogroupedKStream<String, String> cogrouped,
                                                   final JsonNode windows) {
        return switch (type(windows)) {
            case "tumbling", "hopping" -> cogrouped.windowedBy(timeWindows(windows)).aggregate(() -> "");
            case "sliding" -> cogrouped.windowedBy(slidingWindows(windows)).aggregate(() -> "");
            default -> cogrouped.windowedBy(sessionWindows(windows))
                .aggregate(() -> "", (key, left, right) -> left + right);
        };
    }

    private static String type(final JsonNode windows) {
        final String type = CaseRunner.field(windows, "type").asText();
        return switch (type) {
            case "tumbling", "hopping", "sliding", "session" -> type;
            default -> throw new IllegalArgumentException("unknown window type \"" + type + "\"");
        };
    }

    private static Duration millis(final JsonNode windows, final String name) {
        return Duration.ofMillis(CaseRunner.field(windows, name).asLong());
    }

    private static TimeWindows timeWindows(final JsonNode windows) {
        final Duration size = millis(windows, "size_ms");
        final JsonNode advance = windows.get("advance_ms");
        final TimeWindows time = TimeWindows.ofSizeAndGrace(size, millis(windows, "grace_ms"));
        return advance == null || advance.isNull() ? time : time.advanceBy(Duration.ofMillis(advance.asLong()));
    }

    private static SlidingWindows slidingWindows(final JsonNode windows) {
        return SlidingWindows.ofTimeDifferenceAndGrace(millis(windows, "size_ms"), millis(windows, "grace_ms"));
    }

    private static SessionWindows sessionWindows(final JsonNode windows) {
        return SessionWindows.ofInactivityGapAndGrace(millis(windows, "gap_ms"), millis(windows, "grace_ms"));
    }
}
