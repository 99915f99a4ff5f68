// Kafka's own Java clients (AdminClient, KafkaProducer, KafkaConsumer) against `streams serve`.
//
// Run by streams-cli/tests/java_clients.rs: `java RillKafkaClients BOOTSTRAP CHECK...`. Each
// check asserts what the clients see and prints "ok CHECK" and what it found; any failed
// check throws, and the program exits with status 1. One JVM runs every check, so the
// test pays for the JVM's start once.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;

public final class RillKafkaClients {
    private static final Duration DEADLINE = Duration.ofSeconds(60);

    private final String bootstrap;
    private final Admin admin;

    private RillKafkaClients(String bootstrap) {
        this.bootstrap = bootstrap;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "rill-java-admin");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        this.admin = Admin.create(props);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: RillKafkaClients BOOTSTRAP CHECK...");
            System.exit(2);
        }
        RillKafkaClients checks = new RillKafkaClients(args[0]);
        int status = 0;
        try {
            for (int i = 1; i < args.length; i++) {
                long started = System.nanoTime();
                switch (args[i]) {
                    case "admin": checks.admin(); break;
                    case "produce": checks.produce(); break;
                    case "compression": checks.compression(); break;
                    case "idempotent": checks.idempotent(); break;
                    case "groups": checks.groups(); break;
                    case "cooperative": checks.cooperative(); break;
                    case "static": checks.staticMembers(); break;
                    case "read_committed": checks.readCommitted(); break;
                    case "transactions": checks.transactions(); break;
                    default: throw new IllegalArgumentException("unknown check " + args[i]);
                }
                System.out.printf("took %s %d ms%n", args[i], (System.nanoTime() - started) / 1_000_000);
            }
            System.out.println("ok");
        } catch (Throwable e) {
            e.printStackTrace();
            status = 1;
        } finally {
            checks.admin.close(Duration.ofSeconds(5));
        }
        System.out.flush();
        System.exit(status);
    }

    // ---------------------------------------------------------------- checks

    /** AdminClient: create, list, describe, configure, grow and delete topics; the cluster. */
    private void admin() throws Exception {
        admin.createTopics(List.of(
                new NewTopic("j-admin", 3, (short) 1).configs(Map.of("retention.ms", "5000")),
                new NewTopic("j-gone", 1, (short) 1))).all().get();
        Set<String> names = admin.listTopics().names().get();
        check(names.containsAll(Set.of("j-admin", "j-gone")), "listTopics: " + names);
        check(!names.contains("__consumer_offsets"), "listTopics lists internal topics: " + names);

        try {
            admin.createTopics(List.of(new NewTopic("j-admin", 1, (short) 1))).all().get();
            throw new AssertionError("creating j-admin twice succeeded");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof TopicExistsException, "second create: " + e.getCause());
        }

        TopicDescription described = admin.describeTopics(List.of("j-admin")).allTopicNames().get().get("j-admin");
        check(described.partitions().size() == 3, "partitions: " + described);
        check(!described.topicId().equals(Uuid.ZERO_UUID), "topic id: " + described.topicId());
        for (var p : described.partitions()) {
            check(p.leader() != null && p.leader().id() == 0, "leader: " + p);
            check(p.replicas().size() == 1 && p.isr().size() == 1, "replicas: " + p);
        }

        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, "j-admin");
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        ConfigEntry retention = config.get("retention.ms");
        check("5000".equals(retention.value()), "retention.ms: " + retention);
        check(retention.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "source: " + retention);
        check("delete".equals(config.get("cleanup.policy").value()), "cleanup.policy: " + config);

        admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE))))
                .all().get();
        config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        check("compact".equals(config.get("cleanup.policy").value()), "after alter: " + config);
        check("604800000".equals(config.get("retention.ms").value()), "after alter: " + config);

        admin.createPartitions(Map.of("j-admin", NewPartitions.increaseTo(4))).all().get();
        described = admin.describeTopics(List.of("j-admin")).allTopicNames().get().get("j-admin");
        check(described.partitions().size() == 4, "after createPartitions: " + described);

        DescribeClusterResult cluster = admin.describeCluster();
        check("rill-embedded".equals(cluster.clusterId().get()), "cluster id");
        check(cluster.nodes().get().size() == 1 && cluster.controller().get().id() == 0, "nodes");

        admin.deleteTopics(List.of("j-gone")).all().get();
        names = admin.listTopics().names().get();
        check(!names.contains("j-gone") && names.contains("j-admin"), "after delete: " + names);
        System.out.println("ok admin topics=" + new TreeMap<>(Map.of("j-admin", 4)));
    }

    /** KafkaProducer with acks=all (not idempotent): keyed records with headers and
     * timestamps land in the partition Kafka's partitioner picks, read back whole. */
    private void produce() throws Exception {
        createTopic("j-plain", 3);
        Map<Integer, List<Long>> offsets = new TreeMap<>();
        long timestamp = 1_700_000_000_000L;
        try (KafkaProducer<String, String> producer = producer(Map.of(
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false"))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                ProducerRecord<String, String> record =
                        new ProducerRecord<>("j-plain", null, timestamp + i, "key-" + i, "value-" + i);
                record.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(record));
            }
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata meta = sent.get(i).get();
                int expected = Utils.toPositive(Utils.murmur2(("key-" + i).getBytes(StandardCharsets.UTF_8))) % 3;
                check(meta.partition() == expected, "key-" + i + " went to " + meta.partition());
                offsets.computeIfAbsent(meta.partition(), p -> new ArrayList<>()).add(meta.offset());
            }
        }
        for (var entry : offsets.entrySet()) {
            List<Long> list = entry.getValue();
            for (int i = 0; i < list.size(); i++) {
                check(list.get(i) == i, "partition " + entry.getKey() + " offsets " + list);
            }
        }
        List<ConsumerRecord<String, String>> read = readAll("j-plain", "read_uncommitted");
        check(read.size() == 300, "read " + read.size());
        Set<String> seen = new HashSet<>();
        for (ConsumerRecord<String, String> r : read) {
            int i = Integer.parseInt(r.key().substring(4));
            check(r.value().equals("value-" + i), "value " + r);
            check(r.timestamp() == timestamp + i, "timestamp " + r);
            Header n = r.headers().lastHeader("n");
            check(n != null && new String(n.value(), StandardCharsets.UTF_8).equals(Integer.toString(i)), "header " + r);
            check(seen.add(r.key()), "twice: " + r);
        }
        // ListOffsets by timestamp: the first record at or after it, per partition.
        try (KafkaConsumer<String, String> reader = consumer(Map.of(), "rill-java-times")) {
            Map<TopicPartition, Long> query = new HashMap<>();
            for (int p = 0; p < 3; p++) {
                query.put(new TopicPartition("j-plain", p), timestamp + 150);
            }
            Map<TopicPartition, OffsetAndTimestamp> found = reader.offsetsForTimes(query);
            for (var entry : found.entrySet()) {
                long expected = read.stream()
                        .filter(r -> r.partition() == entry.getKey().partition() && r.timestamp() >= timestamp + 150)
                        .mapToLong(ConsumerRecord::offset).min().orElseThrow();
                check(entry.getValue() != null && entry.getValue().offset() == expected,
                        "offsetsForTimes " + entry + ", expected " + expected);
            }
        }
        Map<Integer, Integer> counts = new TreeMap<>();
        offsets.forEach((p, list) -> counts.put(p, list.size()));
        System.out.println("ok produce j-plain " + counts);
    }

    /** Each codec Kafka's producer writes, read back by Kafka's consumer. */
    private void compression() throws Exception {
        String text = "the quick brown fox jumps over the lazy dog ".repeat(20);
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            String topic = "j-codec-" + codec;
            createTopic(topic, 1);
            try (KafkaProducer<String, String> producer = producer(Map.of(
                    ProducerConfig.ACKS_CONFIG, "all",
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false",
                    ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                    ProducerConfig.LINGER_MS_CONFIG, "100",
                    ProducerConfig.BATCH_SIZE_CONFIG, "1000000"))) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, i + " " + text)));
                }
                producer.flush();
                for (int i = 0; i < sent.size(); i++) {
                    check(sent.get(i).get().offset() == i, codec + ": offset of record " + i);
                }
            }
            List<ConsumerRecord<String, String>> read = readAll(topic, "read_uncommitted");
            check(read.size() == 200, codec + ": read " + read.size());
            for (int i = 0; i < read.size(); i++) {
                check(read.get(i).offset() == i && read.get(i).value().equals(i + " " + text), codec + ": " + read.get(i));
            }
            System.out.println("ok compression " + codec + " 200");
        }
    }

    /** The default producer: idempotent, acks=all, five requests in flight; every record once. */
    private void idempotent() throws Exception {
        createTopic("j-idempotent", 3);
        try (KafkaProducer<String, String> producer = producer(Map.of(
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5",
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd",
                ProducerConfig.LINGER_MS_CONFIG, "2",
                ProducerConfig.BATCH_SIZE_CONFIG, "2000"))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                sent.add(producer.send(new ProducerRecord<>("j-idempotent", "key-" + i, "value-" + i)));
            }
            for (Future<RecordMetadata> f : sent) {
                f.get();
            }
        }
        List<ConsumerRecord<String, String>> read = readAll("j-idempotent", "read_uncommitted");
        check(read.size() == 1000, "read " + read.size());
        Set<String> keys = new HashSet<>();
        for (ConsumerRecord<String, String> r : read) {
            check(keys.add(r.key()), "twice: " + r);
        }
        System.out.println("ok idempotent j-idempotent 1000");
    }

    /** Two members of one group share the partitions, each record is consumed once; when one
     * leaves, the other takes its partitions and goes on from the committed offsets. */
    private void groups() throws Exception {
        String topic = "j-group";
        String group = "j-group";
        createTopic(topic, 4);
        produceKeyed(topic, 0, 200);
        Map<String, String> props = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
                // Notice the rebalance when b leaves sooner than the default 3 s.
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.RangeAssignor");
        Map<String, Integer> seenBy = new HashMap<>();
        KafkaConsumer<String, String> a = consumer(props, "member-a");
        KafkaConsumer<String, String> b = consumer(props, "member-b");
        try {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            Map<String, Integer> perMember = new TreeMap<>();
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (seenBy.size() < 200 || a.assignment().size() != 2 || b.assignment().size() != 2) {
                check(System.nanoTime() < deadline, "group: consumed " + seenBy.size()
                        + ", assignments " + a.assignment() + " " + b.assignment());
                for (var member : List.of(Map.entry("a", a), Map.entry("b", b))) {
                    for (ConsumerRecord<String, String> r : member.getValue().poll(Duration.ofMillis(50))) {
                        check(member.getValue().assignment().contains(new TopicPartition(r.topic(), r.partition())),
                                "record of a partition not assigned: " + r);
                        Integer before = seenBy.put(r.key(), r.partition());
                        check(before == null, "consumed twice: " + r);
                        perMember.merge(member.getKey(), 1, Integer::sum);
                    }
                }
            }
            Set<TopicPartition> union = new HashSet<>(a.assignment());
            union.addAll(b.assignment());
            check(union.size() == 4, "assignments " + a.assignment() + " " + b.assignment());
            check(perMember.getOrDefault("a", 0) > 0 && perMember.getOrDefault("b", 0) > 0, "per member " + perMember);
            a.commitSync();
            b.commitSync();

            ConsumerGroupDescription description =
                    admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(description.groupState() == GroupState.STABLE, "state " + description);
            check(description.members().size() == 2, "members " + description);
            check("range".equals(description.partitionAssignor()), "assignor " + description);

            b.close();
            b = null;
            // The eager range protocol revokes every partition in a rebalance: wait for it to
            // end before producing more, as nothing commits on revocation here.
            deadline = System.nanoTime() + DEADLINE.toNanos();
            while (a.assignment().size() != 4) {
                check(System.nanoTime() < deadline, "after b left: " + a.assignment());
                check(a.poll(Duration.ofMillis(100)).isEmpty(), "records before more were produced");
            }
            produceKeyed(topic, 200, 40);
            int more = 0;
            while (more < 40 || a.assignment().size() != 4) {
                check(System.nanoTime() < deadline, "after b left: " + more + " " + a.assignment());
                for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(100))) {
                    Integer before = seenBy.put(r.key(), r.partition());
                    check(before == null, "consumed twice after the rebalance: " + r);
                    more++;
                }
            }
            a.commitSync();
            System.out.println("ok groups two-members " + perMember + " then one member 40");
        } finally {
            a.close();
            if (b != null) {
                b.close();
            }
        }
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, Long> ends = endOffsets(topic, "read_uncommitted");
        check(committed.size() == 4, "committed " + committed);
        long total = 0;
        for (var entry : ends.entrySet()) {
            check(committed.get(entry.getKey()).offset() == entry.getValue(), "committed " + committed + " ends " + ends);
            total += entry.getValue();
        }
        check(total == 240, "end offsets " + ends);
        System.out.println("ok groups committed " + total);
    }

    /** The cooperative-sticky assignor: when a second member joins, the first gives up only
     * the partitions that move (committing them as it does), keeps reading the others, and
     * every record is consumed once. */
    private void cooperative() throws Exception {
        String topic = "j-coop";
        createTopic(topic, 4);
        produceKeyed(topic, 0, 100);
        Map<String, String> props = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, "j-coop",
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
        Map<String, String> seenBy = new HashMap<>();
        List<TopicPartition> revokedFromA = new ArrayList<>();
        KafkaConsumer<String, String> a = consumer(props, "coop-a");
        KafkaConsumer<String, String> b = consumer(props, "coop-b");
        try {
            a.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    revokedFromA.addAll(partitions);
                    a.commitSync();
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                }
            });
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (seenBy.size() < 100 || a.assignment().size() != 4) {
                check(System.nanoTime() < deadline, "a alone: " + seenBy.size() + " " + a.assignment());
                for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(100))) {
                    check(seenBy.put(r.key(), "a") == null, "consumed twice: " + r);
                }
            }
            Set<TopicPartition> before = new HashSet<>(a.assignment());
            b.subscribe(List.of(topic));
            deadline = System.nanoTime() + DEADLINE.toNanos();
            while (a.assignment().size() != 2 || b.assignment().size() != 2) {
                check(System.nanoTime() < deadline, "assignments " + a.assignment() + " " + b.assignment());
                for (var member : List.of(Map.entry("a", a), Map.entry("b", b))) {
                    for (ConsumerRecord<String, String> r : member.getValue().poll(Duration.ofMillis(50))) {
                        throw new AssertionError("a record before more were produced: " + r);
                    }
                }
            }
            check(before.containsAll(a.assignment()), "a kept " + a.assignment() + " of " + before);
            check(revokedFromA.size() == 2 && !a.assignment().contains(revokedFromA.get(0))
                    && !a.assignment().contains(revokedFromA.get(1)), "revoked from a: " + revokedFromA);
            produceKeyed(topic, 100, 100);
            Map<String, Integer> perMember = new TreeMap<>();
            deadline = System.nanoTime() + DEADLINE.toNanos();
            while (seenBy.size() < 200) {
                check(System.nanoTime() < deadline, "consumed " + seenBy.size());
                for (var member : List.of(Map.entry("a", a), Map.entry("b", b))) {
                    for (ConsumerRecord<String, String> r : member.getValue().poll(Duration.ofMillis(50))) {
                        check(seenBy.put(r.key(), member.getKey()) == null, "consumed twice: " + r);
                        perMember.merge(member.getKey(), 1, Integer::sum);
                    }
                }
            }
            check(perMember.getOrDefault("a", 0) > 0 && perMember.getOrDefault("b", 0) > 0, "per member " + perMember);
            System.out.println("ok cooperative revoked=" + revokedFromA.size() + " then " + perMember);
        } finally {
            a.close();
            b.close();
        }
    }

    /** Static membership (group.instance.id): a member that restarts with the same instance id
     * gets its partitions back without a rebalance of the other member. */
    private void staticMembers() throws Exception {
        String topic = "j-static";
        createTopic(topic, 4);
        List<Collection<TopicPartition>> revokedFromA = new ArrayList<>();
        KafkaConsumer<String, String> a = staticMember("static-a");
        KafkaConsumer<String, String> b = staticMember("static-b");
        KafkaConsumer<String, String> again = null;
        try {
            a.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    revokedFromA.add(partitions);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                }
            });
            b.subscribe(List.of(topic));
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (a.assignment().size() != 2 || b.assignment().size() != 2) {
                check(System.nanoTime() < deadline, "assignments " + a.assignment() + " " + b.assignment());
                a.poll(Duration.ofMillis(50));
                b.poll(Duration.ofMillis(50));
            }
            Set<TopicPartition> ofB = new HashSet<>(b.assignment());
            int revocations = revokedFromA.size();
            // A static member's close does not leave the group.
            b.close();
            b = null;
            again = staticMember("static-b");
            again.subscribe(List.of(topic));
            deadline = System.nanoTime() + DEADLINE.toNanos();
            while (again.assignment().isEmpty()) {
                check(System.nanoTime() < deadline, "the restarted member has no partitions");
                a.poll(Duration.ofMillis(50));
                again.poll(Duration.ofMillis(50));
            }
            // A few more heartbeats of a: no rebalance comes.
            for (int i = 0; i < 10; i++) {
                a.poll(Duration.ofMillis(100));
            }
            check(again.assignment().equals(ofB), "restarted with " + again.assignment() + ", had " + ofB);
            check(revokedFromA.size() == revocations, "a was rebalanced: " + revokedFromA);
            ConsumerGroupDescription description =
                    admin.describeConsumerGroups(List.of("j-static")).all().get().get("j-static");
            check(description.members().size() == 2, "members " + description);
            Set<String> instances = new HashSet<>();
            description.members().forEach(m -> instances.add(m.groupInstanceId().orElse("")));
            check(instances.equals(Set.of("static-a", "static-b")), "instances " + instances);
            System.out.println("ok static kept=" + again.assignment().size());
        } finally {
            a.close();
            if (b != null) {
                b.close();
            }
            if (again != null) {
                again.close();
            }
        }
    }

    private KafkaConsumer<String, String> staticMember(String instance) {
        return consumer(Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, "j-static",
                ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance,
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000",
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.RangeAssignor"), instance);
    }

    /** read_committed with no transaction in the log reads everything up to the end. */
    private void readCommitted() throws Exception {
        createTopic("j-rc", 2);
        produceKeyed("j-rc", 0, 50);
        List<ConsumerRecord<String, String>> read = readAll("j-rc", "read_committed");
        check(read.size() == 50, "read_committed read " + read.size());
        Map<TopicPartition, Long> committedEnds = endOffsets("j-rc", "read_committed");
        Map<TopicPartition, Long> ends = endOffsets("j-rc", "read_uncommitted");
        check(committedEnds.equals(ends), "last stable offsets " + committedEnds + " vs " + ends);
        System.out.println("ok read_committed 50");
    }

    /** Consume, transform and produce in transactions: committed output and offsets are
     * seen, aborted output is not; a second producer with the same transactional.id fences
     * the first. */
    private void transactions() throws Exception {
        createTopic("j-txn-in", 2);
        createTopic("j-txn-out", 2);
        produceKeyed("j-txn-in", 0, 100);
        String group = "j-txn-group";
        Map<String, String> producerProps = Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, "j-txn",
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        KafkaProducer<String, String> producer = producer(producerProps);
        try (KafkaConsumer<String, String> consumer = consumer(Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"), "txn-consumer")) {
            producer.initTransactions();
            consumer.subscribe(List.of("j-txn-in"));
            int copied = 0;
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (copied < 100) {
                check(System.nanoTime() < deadline, "copied " + copied);
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    producer.send(new ProducerRecord<>("j-txn-out", r.key(), r.value().toUpperCase()));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    copied++;
                }
                producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
                producer.commitTransaction();
            }
            check(copied == 100, "copied " + copied);
        }

        // An aborted transaction: its records are in the log but read_committed skips them.
        producer.beginTransaction();
        for (int i = 0; i < 10; i++) {
            producer.send(new ProducerRecord<>("j-txn-out", "aborted-" + i, "ABORTED"));
        }
        producer.flush();
        producer.abortTransaction();

        // A new producer with the same transactional.id fences the old one.
        KafkaProducer<String, String> successor = producer(producerProps);
        successor.initTransactions();
        try {
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("j-txn-out", "zombie", "ZOMBIE")).get();
            producer.commitTransaction();
            throw new AssertionError("a fenced producer committed");
        } catch (ProducerFencedException | ExecutionException e) {
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            check(cause instanceof ProducerFencedException, "fenced producer: " + cause);
        } finally {
            producer.close(Duration.ZERO);
        }
        successor.beginTransaction();
        successor.send(new ProducerRecord<>("j-txn-out", "after", "AFTER"));
        successor.commitTransaction();
        successor.close();

        List<ConsumerRecord<String, String>> committed = readAll("j-txn-out", "read_committed");
        List<ConsumerRecord<String, String>> all = readAll("j-txn-out", "read_uncommitted");
        Set<String> keys = new HashSet<>();
        for (ConsumerRecord<String, String> r : committed) {
            check(!r.value().equals("ABORTED") && !r.value().equals("ZOMBIE"), "read_committed saw " + r);
            check(keys.add(r.key()), "twice: " + r);
        }
        check(committed.size() == 101, "read_committed read " + committed.size());
        long aborted = all.stream().filter(r -> r.value().equals("ABORTED")).count();
        check(aborted == 10, "read_uncommitted saw " + aborted + " aborted records");

        Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, Long> ends = endOffsets("j-txn-in", "read_uncommitted");
        for (var entry : ends.entrySet()) {
            check(offsets.get(entry.getKey()) != null && offsets.get(entry.getKey()).offset() == entry.getValue(),
                    "offsets sent to the transaction " + offsets + ", ends " + ends);
        }
        System.out.println("ok transactions committed=" + committed.size() + " aborted=" + aborted);
    }

    // ---------------------------------------------------------------- helpers

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    private void createTopic(String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
    }

    private KafkaProducer<String, String> producer(Map<String, String> overrides) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        props.putAll(overrides);
        return new KafkaProducer<>(props, new StringSerializer(), new StringSerializer());
    }

    private KafkaConsumer<String, String> consumer(Map<String, String> overrides, String clientId) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        props.putAll(overrides);
        return new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer());
    }

    /** Sends keys `key-FROM` .. with acks=all and no idempotence, waiting for each answer. */
    private void produceKeyed(String topic, int from, int count) throws Exception {
        try (KafkaProducer<String, String> producer = producer(Map.of(
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false"))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = from; i < from + count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i)));
            }
            for (Future<RecordMetadata> f : sent) {
                f.get();
            }
        }
    }

    private List<TopicPartition> partitions(KafkaConsumer<?, ?> consumer, String topic) {
        List<TopicPartition> out = new ArrayList<>();
        consumer.partitionsFor(topic).forEach(p -> out.add(new TopicPartition(topic, p.partition())));
        return out;
    }

    private Map<TopicPartition, Long> endOffsets(String topic, String isolation) {
        try (KafkaConsumer<String, String> consumer = consumer(
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation), "rill-java-ends")) {
            return new HashMap<>(consumer.endOffsets(partitions(consumer, topic)));
        }
    }

    /** Every record of `topic` from the log start to the end (the last stable offset under
     * read_committed), by a consumer outside any group. */
    private List<ConsumerRecord<String, String>> readAll(String topic, String isolation) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = consumer(
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation), "rill-java-reader")) {
            List<TopicPartition> parts = partitions(consumer, topic);
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (!caughtUp(consumer, ends)) {
                check(System.nanoTime() < deadline, topic + ": read " + out.size() + " of up to " + ends);
                consumer.poll(Duration.ofMillis(100)).forEach(out::add);
            }
        }
        return out;
    }

    private static boolean caughtUp(KafkaConsumer<?, ?> consumer, Map<TopicPartition, Long> ends) {
        for (var entry : ends.entrySet()) {
            if (consumer.position(entry.getKey()) < entry.getValue()) {
                return false;
            }
        }
        return true;
    }
}
