package dev.rill.oracle;

import java.time.Duration;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.Stores;

/**
 * The topologies over versioned tables (KIP-889/KIP-914): tables materialized with
 * {@code Stores.persistentVersionedKeyValueStore(<topic>-versioned, history_ms)}.
 */
final class Versioned {
    private static final String OUTPUT = CaseRunner.OUTPUT_TOPIC;
    private static final ValueJoiner<String, String, String> JOINER = Functions::join;

    private Versioned() {}

    /** {@code topic} as a table kept in a versioned store of {@code history_ms}. */
    static KTable<String, String> table(final StreamsBuilder builder, final String topic,
                                        final JsonNode description) {
        final long history = CaseRunner.field(description, "history_ms").asLong();
        return builder.table(topic, Materialized.<String, String>as(
            Stores.persistentVersionedKeyValueStore(topic + "-versioned", Duration.ofMillis(history))));
    }

    /** {@code topic} as a table, versioned if {@code versioned} names it or is {@code "both"}. */
    private static KTable<String, String> side(final StreamsBuilder builder, final String topic,
                                               final JsonNode description) {
        final String versioned = CaseRunner.field(description, "versioned").asText();
        return versioned.equals("both") || versioned.equals(topic)
            ? table(builder, topic, description)
            : builder.table(topic);
    }

    /** Builds {@code op}; false if it is not a versioned operation. */
    static boolean build(final StreamsBuilder builder, final String op, final JsonNode description) {
        switch (op) {
            case "versioned_table_to_stream":
                table(builder, Topologies.LEFT, description).toStream().to(OUTPUT);
                return true;
            case "versioned_table_filter":
                table(builder, Topologies.LEFT, description)
                    .filter((k, v) -> Functions.evenLength(v))
                    .toStream()
                    .to(OUTPUT);
                return true;
            case "versioned_table_filter_then_count":
                table(builder, Topologies.LEFT, description)
                    .filter((k, v) -> Functions.evenLength(v))
                    .groupBy((k, v) -> KeyValue.pair(v, v))
                    .count()
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                return true;
            case "versioned_table_group_by_count":
                table(builder, Topologies.LEFT, description)
                    .groupBy((k, v) -> KeyValue.pair(v, k))
                    .count()
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                return true;
            case "versioned_table_table_join": {
                final KTable<String, String> left = side(builder, Topologies.LEFT, description);
                final KTable<String, String> right = side(builder, Topologies.RIGHT, description);
                final KTable<String, String> joined = switch (Topologies.joinKind(description, "inner", "left", "outer")) {
                    case "inner" -> left.join(right, JOINER);
                    case "left" -> left.leftJoin(right, JOINER);
                    default -> left.outerJoin(right, JOINER);
                };
                joined.toStream().to(OUTPUT);
                return true;
            }
            case "versioned_stream_table_join": {
                final KStream<String, String> left = builder.stream(Topologies.LEFT);
                final KTable<String, String> right = table(builder, Topologies.RIGHT, description);
                final JsonNode grace = description.get("grace_ms");
                Joined<String, String, String> joined =
                    Joined.with(Serdes.String(), Serdes.String(), Serdes.String());
                if (grace != null && !grace.isNull()) {
                    joined = joined.withGracePeriod(Duration.ofMillis(grace.asLong()));
                }
                switch (Topologies.joinKind(description, "inner", "left")) {
                    case "inner" -> left.join(right, JOINER, joined).to(OUTPUT);
                    default -> left.leftJoin(right, JOINER, joined).to(OUTPUT);
                }
                return true;
            }
            default:
                return false;
        }
    }
}
