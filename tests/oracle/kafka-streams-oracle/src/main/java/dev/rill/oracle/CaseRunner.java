package dev.rill.oracle;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Runs one case: a fresh topology from {@link Topologies}, a fresh {@link TopologyTestDriver}
 * (String keys and values by default, no record cache, so every update is forwarded), the
 * inputs piped in the given order with their timestamps, then every record of the topic
 * {@code output}, in order.
 */
final class CaseRunner implements AutoCloseable {
    /** The topic every case writes its results to. */
    static final String OUTPUT_TOPIC = "output";

    /**
     * The environment variable that chooses the DSL's stores: {@code rocksdb} for Kafka
     * Streams' default (RocksDB), anything else for its in-memory stores, which answer the
     * same some 20 times faster.
     */
    static final String STORES_ENV = "KAFKA_STREAMS_ORACLE_STORES";
    private static final String ROCKSDB = "rocksdb";

    /** A state directory of this process, removed when it ends. */
    private final Path stateDir;
    private int cases;

    CaseRunner() throws IOException {
        stateDir = Files.createTempDirectory("kafka-streams-oracle");
    }

    /** Runs {@code testCase} and puts its outputs into {@code result}. */
    ObjectNode run(final JsonNode testCase, final ObjectNode result) {
        final Topology topology = Topologies.build(field(testCase, "topology"));
        cases += 1;
        final ArrayNode outputs = result.putArray("outputs");
        try (TopologyTestDriver driver = new TopologyTestDriver(topology, config(cases))) {
            final Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
            for (final JsonNode input : field(testCase, "inputs")) {
                final String topic = field(input, "topic").asText();
                final TestInputTopic<String, String> in = inputs.computeIfAbsent(topic,
                    t -> driver.createInputTopic(t, new StringSerializer(), new StringSerializer()));
                final long timestamp = field(input, "timestamp").asLong();
                in.pipeInput(new TestRecord<>(text(input, "key"), text(input, "value"),
                    Instant.ofEpochMilli(timestamp)));
            }
            final TestOutputTopic<String, String> out =
                driver.createOutputTopic(OUTPUT_TOPIC, new StringDeserializer(), new StringDeserializer());
            for (final TestRecord<String, String> record : out.readRecordsToList()) {
                final ObjectNode o = outputs.addObject();
                o.put("key", record.key());
                o.put("value", record.value());
                o.put("timestamp", record.timestamp());
            }
        } finally {
            // A case's persistent stores (versioned stores are RocksDB whatever the DSL store
            // suppliers) would otherwise stay on disk until the process ends.
            delete(stateDir.resolve("oracle-" + cases));
        }
        return result;
    }

    /** Removes {@code path} and everything under it, if it exists. */
    private static void delete(final Path path) {
        if (!Files.exists(path)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(path)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (final IOException e) {
            System.err.println("could not remove " + path + ": " + e);
        }
    }

    /**
     * The driver's configuration: default String serdes, no record cache, in-memory stores
     * unless {@link #STORES_ENV} asks for RocksDB.
     */
    private Properties config(final int caseNumber) {
        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle-" + caseNumber);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        if (!ROCKSDB.equals(System.getenv(STORES_ENV))) {
            props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG,
                BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        }
        return props;
    }

    /** A field that must be there. */
    static JsonNode field(final JsonNode node, final String name) {
        final JsonNode value = node.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing field \"" + name + "\" in " + node);
        }
        return value;
    }

    /** A string field that may be absent or null (both read as null). */
    static String text(final JsonNode node, final String name) {
        final JsonNode value = node.get(name);
        return value == null || value.isNull() ? null : value.asText();
    }

    @Override
    public void close() throws IOException {
        delete(stateDir);
    }
}
