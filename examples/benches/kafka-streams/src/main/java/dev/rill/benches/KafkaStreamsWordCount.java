package dev.rill.benches;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Kafka Streams' word count (Kafka's WordCountDemo) with the same effect as
 * {@code examples::word_count_topology}: the lines of {@code text-lines} (String key and value)
 * are lowercased and split on whitespace (Unicode whitespace, as Rust's
 * {@code str::split_whitespace}; empty tokens dropped), regrouped by word through a repartition
 * topic, counted in the store {@code word-counts}, and every new count goes to the topic
 * {@code word-counts} (String key, Long value: 8 bytes big-endian).
 *
 * <p>Usage: {@code KafkaStreamsWordCount BOOTSTRAP APP_ID GUARANTEE THREADS COMMIT_MS STATE_DIR
 * [NAME=VALUE...]}, GUARANTEE being {@code at_least_once} or {@code exactly_once_v2}; each
 * NAME=VALUE is one more Kafka Streams setting (for instance
 * {@code statestore.cache.max.bytes=0}).
 *
 * <p>Each state change is printed on stdout as {@code STATE <NEW_STATE>}. SIGTERM closes the
 * application cleanly (a shutdown hook calls {@link KafkaStreams#close(Duration)}); an error in
 * a stream thread shuts it down and the process exits with status 1.
 */
public final class KafkaStreamsWordCount {
    static final String TEXT_LINES_TOPIC = "text-lines";
    static final String WORD_COUNTS_TOPIC = "word-counts";
    static final String WORD_COUNTS_STORE = "word-counts";
    /** Runs of Unicode whitespace (the White_Space property, as Rust's char::is_whitespace). */
    static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    /** How long a shutdown may take to close the application. */
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(60);

    private KafkaStreamsWordCount() {}

    /** The words of a line: lowercased, split on whitespace, no empty word. */
    static List<String> words(final String line) {
        final List<String> words = new ArrayList<>();
        if (line == null) {
            return words;
        }
        for (final String word : WHITESPACE.split(line.toLowerCase(Locale.ROOT))) {
            if (!word.isEmpty()) {
                words.add(word);
            }
        }
        return words;
    }

    /** The word count's topology. */
    static Topology topology() {
        final StreamsBuilder builder = new StreamsBuilder();
        builder.stream(TEXT_LINES_TOPIC, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(KafkaStreamsWordCount::words)
            .groupBy((key, word) -> word, Grouped.with(Serdes.String(), Serdes.String()))
            .count(
                Named.as("count-words"),
                Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(WORD_COUNTS_STORE))
            .toStream()
            .to(WORD_COUNTS_TOPIC, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    private static void usage(final String why) {
        System.err.println("error: " + why);
        System.err.println(
            "usage: KafkaStreamsWordCount BOOTSTRAP APP_ID at_least_once|exactly_once_v2 "
                + "THREADS COMMIT_MS STATE_DIR [NAME=VALUE...]");
        System.exit(2);
    }

    /** One line on stdout, flushed at once (the parent reads it while the app runs). */
    private static synchronized void say(final String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(final String[] args) throws InterruptedException {
        if (args.length < 6) {
            usage("expected at least 6 arguments, got " + args.length);
        }
        final String guarantee = args[2];
        if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE)
            && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
            usage("unknown processing guarantee " + guarantee);
        }
        final Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        try {
            props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args[3]));
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(args[4]));
        } catch (final NumberFormatException e) {
            usage("THREADS and COMMIT_MS must be numbers: " + e.getMessage());
        }
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        for (int i = 6; i < args.length; i++) {
            final int eq = args[i].indexOf('=');
            if (eq <= 0) {
                usage("expected NAME=VALUE, got " + args[i]);
            }
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }

        final KafkaStreams streams = new KafkaStreams(topology(), props);
        // Released when the app stops for good: after an error, or by the shutdown hook.
        final CountDownLatch stopped = new CountDownLatch(1);
        final AtomicBoolean shuttingDown = new AtomicBoolean(false);
        streams.setStateListener((newState, oldState) -> {
            say("STATE " + newState);
            if (newState == KafkaStreams.State.ERROR
                || newState == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("error: a stream thread failed: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        final Thread hook = new Thread(() -> {
            shuttingDown.set(true);
            final boolean closed = streams.close(CLOSE_TIMEOUT);
            if (!closed) {
                System.err.println("error: Kafka Streams did not close within " + CLOSE_TIMEOUT);
            }
            say("CLOSED " + closed);
            stopped.countDown();
        }, "wordcount-shutdown-hook");
        Runtime.getRuntime().addShutdownHook(hook);

        streams.start();
        stopped.await();
        if (!shuttingDown.get()) {
            // Stopped by an error, not by a signal: exit with a failure (the hook closes).
            System.exit(1);
        }
    }
}
