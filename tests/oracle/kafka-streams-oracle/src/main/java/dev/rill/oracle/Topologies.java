package dev.rill.oracle;

import java.time.Duration;
import java.util.function.Function;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.CogroupedKStream;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The topology of each operation ({@code "op"}), written with Kafka Streams' DSL. Inputs are
 * the topics {@code left} and {@code right}; results go to {@link CaseRunner#OUTPUT_TOPIC}
 * with String keys and values (counts and sums as decimal strings, windowed keys as
 * {@code "<key>@<start>/<end>"}). docs/oracle.md lists the operations.
 */
final class Topologies {
    static final String LEFT = "left";
    static final String RIGHT = "right";
    private static final String OUTPUT = CaseRunner.OUTPUT_TOPIC;
    private static final ValueJoiner<String, String, String> JOINER = Functions::join;

    private Topologies() {}

    /** The topology that {@code description} names; an unknown operation is an error. */
    static Topology build(final JsonNode description) {
        final StreamsBuilder builder = new StreamsBuilder();
        final String op = CaseRunner.field(description, "op").asText();
        switch (op) {
            case "table_filter":
                builder.<String, String>table(LEFT)
                    .filter((k, v) -> Functions.evenLength(v))
                    .toStream()
                    .to(OUTPUT);
                break;
            case "table_filter_then_count":
                builder.<String, String>table(LEFT)
                    .filter((k, v) -> Functions.evenLength(v))
                    .groupBy((k, v) -> KeyValue.pair(v, v))
                    .count()
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                break;
            case "table_map_values":
                builder.<String, String>table(LEFT)
                    .mapValues(v -> v + "!")
                    .toStream()
                    .to(OUTPUT);
                break;
            case "table_group_by_count":
                builder.<String, String>table(LEFT)
                    .groupBy((k, v) -> KeyValue.pair(v, k))
                    .count()
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                break;
            case "table_group_by_aggregate":
                builder.<String, String>table(LEFT)
                    .groupBy((k, v) -> KeyValue.pair(v, k))
                    .aggregate(
                        () -> 0L,
                        (key, value, agg) -> agg + key.length(),
                        (key, value, agg) -> agg - key.length(),
                        Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>with(
                            Serdes.String(), Serdes.Long()))
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                break;
            case "stream_count":
                builder.<String, String>stream(LEFT)
                    .groupByKey()
                    .count()
                    .toStream()
                    .mapValues(Functions::decimal)
                    .to(OUTPUT);
                break;
            case "windowed_count":
                windowedOutput(Windowing.count(
                    builder.<String, String>stream(LEFT).groupByKey(),
                    CaseRunner.field(description, "windows")), Functions::decimal);
                break;
            case "stream_stream_join":
                streamStreamJoin(builder, description);
                break;
            case "stream_table_join": {
                final KStream<String, String> left = builder.stream(LEFT);
                final KTable<String, String> right = builder.table(RIGHT);
                switch (joinKind(description, "inner", "left")) {
                    case "inner" -> left.join(right, JOINER).to(OUTPUT);
                    default -> left.leftJoin(right, JOINER).to(OUTPUT);
                }
                break;
            }
            case "table_table_join": {
                final KTable<String, String> left = builder.table(LEFT);
                final KTable<String, String> right = builder.table(RIGHT);
                final KTable<String, String> joined = switch (joinKind(description, "inner", "left", "outer")) {
                    case "inner" -> left.join(right, JOINER);
                    case "left" -> left.leftJoin(right, JOINER);
                    default -> left.outerJoin(right, JOINER);
                };
                joined.toStream().to(OUTPUT);
                break;
            }
            case "stream_global_join": {
                final KStream<String, String> left = builder.stream(LEFT);
                final GlobalKTable<String, String> right = builder.globalTable(RIGHT);
                switch (joinKind(description, "inner", "left")) {
                    case "inner" -> left.join(right, (k, v) -> Functions.foreignKey(v), JOINER).to(OUTPUT);
                    default -> left.leftJoin(right, (k, v) -> Functions.foreignKey(v), JOINER).to(OUTPUT);
                }
                break;
            }
            case "fk_join": {
                final KTable<String, String> left = builder.table(LEFT);
                final KTable<String, String> right = builder.table(RIGHT);
                final Function<String, String> fk = Functions::foreignKey;
                final KTable<String, String> joined = switch (joinKind(description, "inner", "left")) {
                    case "inner" -> left.join(right, fk, JOINER);
                    default -> left.leftJoin(right, fk, JOINER);
                };
                joined.toStream().to(OUTPUT);
                break;
            }
            case "cogroup":
                cogroup(builder, description);
                break;
            default:
                if (!Versioned.build(builder, op, description)) {
                    throw new IllegalArgumentException("unknown op \"" + op + "\"");
                }
        }
        return builder.build();
    }

    /** A windowed result table to {@code output}, its keys and values written as text. */
    private static <V> void windowedOutput(final KTable<Windowed<String>, V> table,
                                           final Function<V, String> text) {
        table.toStream()
            .map((key, value) -> KeyValue.pair(Functions.windowedKey(key), text.apply(value)))
            .to(OUTPUT);
    }

    /** {@code "join"}, which must be one of {@code allowed}. */
    static String joinKind(final JsonNode description, final String... allowed) {
        final String join = CaseRunner.field(description, "join").asText();
        for (final String kind : allowed) {
            if (kind.equals(join)) {
                return join;
            }
        }
        throw new IllegalArgumentException("unknown join \"" + join + "\" for "
            + description.get("op"));
    }

    /**
     * Streams {@code left} and {@code right} joined within {@code before_ms}/{@code after_ms},
     * with {@code grace_ms} (null or absent: no grace, {@code ofTimeDifferenceWithNoGrace}).
     */
    private static void streamStreamJoin(final StreamsBuilder builder, final JsonNode description) {
        final long before = CaseRunner.field(description, "before_ms").asLong();
        final long after = CaseRunner.field(description, "after_ms").asLong();
        final JsonNode grace = description.get("grace_ms");
        final Duration difference = Duration.ofMillis(Math.max(before, after));
        final JoinWindows windows = (grace == null || grace.isNull()
            ? JoinWindows.ofTimeDifferenceWithNoGrace(difference)
            : JoinWindows.ofTimeDifferenceAndGrace(difference, Duration.ofMillis(grace.asLong())))
            .before(Duration.ofMillis(before))
            .after(Duration.ofMillis(after));
        final KStream<String, String> left = builder.stream(LEFT);
        final KStream<String, String> right = builder.stream(RIGHT);
        final KStream<String, String> joined = switch (joinKind(description, "inner", "left", "outer")) {
            case "inner" -> left.join(right, JOINER, windows);
            case "left" -> left.leftJoin(right, JOINER, windows);
            default -> left.outerJoin(right, JOINER, windows);
        };
        joined.to(OUTPUT);
    }

    /**
     * Streams {@code left} and {@code right} grouped by key and cogrouped: aggregators
     * {@code agg + "L" + v} and {@code agg + "R" + v} from {@code ""}, windowed if
     * {@code "windows"} is given.
     */
    private static void cogroup(final StreamsBuilder builder, final JsonNode description) {
        final KGroupedStream<String, String> left = builder.<String, String>stream(LEFT).groupByKey();
        final KGroupedStream<String, String> right = builder.<String, String>stream(RIGHT).groupByKey();
        final CogroupedKStream<String, String> cogrouped = left
            .<String>cogroup((k, v, agg) -> agg + "L" + v)
            .cogroup(right, (k, v, agg) -> agg + "R" + v);
        final JsonNode windows = description.get("windows");
        if (windows == null || windows.isNull()) {
            cogrouped
                .aggregate(() -> "", Materialized.<String, String, KeyValueStore<Bytes, byte[]>>with(
                    Serdes.String(), Serdes.String()))
                .toStream()
                .to(OUTPUT);
        } else {
            windowedOutput(Windowing.cogroup(cogrouped, windows), Function.identity());
        }
    }
}
