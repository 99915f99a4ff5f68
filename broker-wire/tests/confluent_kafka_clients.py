"""confluent-kafka (librdkafka) against `streams serve`: run by confluent_kafka_clients.rs
with the server's address and the checks to run. Each check prints "ok CHECK ..." with what
it found; "ok" alone ends a run where every check passed. Any failed check raises."""

import sys
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

BOOTSTRAP = sys.argv[1]
DEADLINE_S = 60

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})


def create_topic(name, partitions, config=None):
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30,
    )
    futures[name].result(timeout=30)


def producer(**config):
    settings = {"bootstrap.servers": BOOTSTRAP, "message.timeout.ms": 30000}
    settings.update(config)
    return Producer(settings)


def consumer(**config):
    settings = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"rill-reader-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    settings.update(config)
    return Consumer(settings)


def delivered_into(results):
    def on_delivery(err, msg):
        results.append((err, msg))

    return on_delivery


def flush_all(sender, results, count):
    remaining = sender.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"
    errors = [err for err, _ in results if err is not None]
    assert not errors and len(results) == count, (errors[:3], len(results))


def read_all(topic, partitions, isolation_level="read_uncommitted"):
    """Every record of `topic` from the start to its end (the last stable offset under
    read_committed): assigned, no commits, until each partition reports its end."""
    reader = consumer(**{"isolation.level": isolation_level, "enable.partition.eof": True})
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    at_end = set()
    deadline = time.monotonic() + DEADLINE_S
    while len(at_end) < partitions:
        assert time.monotonic() < deadline, f"{topic}: read {len(out)}, at end {at_end}"
        msg = reader.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            at_end.add(msg.partition())
            continue
        at_end.discard(msg.partition())
        out.append(msg)
    reader.close()
    return out


def produce_keyed(topic, start, count):
    sender = producer(acks="all", partitioner="murmur2_random")
    results = []
    for i in range(start, start + count):
        sender.produce(topic, key=f"key-{i}", value=f"value-{i}", on_delivery=delivered_into(results))
    flush_all(sender, results, count)


def check_admin():
    """AdminClient: create, describe, configure, grow and delete topics."""
    create_topic("ck-admin", 2, {"retention.ms": "5000"})
    create_topic("ck-gone", 1)
    try:
        create_topic("ck-admin", 1)
        raise AssertionError("a second ck-admin was created")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, e
    metadata = admin.list_topics(timeout=30)
    assert {"ck-admin", "ck-gone"} <= set(metadata.topics), metadata.topics
    assert len(metadata.topics["ck-admin"].partitions) == 2
    resource = ConfigResource(ConfigResource.Type.TOPIC, "ck-admin")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "5000", configs["retention.ms"]
    assert configs["cleanup.policy"].value == "delete", configs["cleanup.policy"]
    admin.create_partitions([NewPartitions("ck-admin", 3)])["ck-admin"].result(timeout=30)
    admin.delete_topics(["ck-gone"], operation_timeout=30)["ck-gone"].result(timeout=30)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        topics = admin.list_topics(timeout=30).topics
        if "ck-gone" not in topics and len(topics["ck-admin"].partitions) == 3:
            break
        assert time.monotonic() < deadline, topics
        time.sleep(0.05)
    described = admin.describe_topics(TopicCollection(["ck-admin"]))["ck-admin"].result(timeout=30)
    assert len(described.partitions) == 3 and described.topic_id is not None, described
    assert all(p.leader.id == 0 for p in described.partitions), described.partitions
    cluster = admin.describe_cluster().result(timeout=30)
    assert cluster.cluster_id == "rill-embedded" and len(cluster.nodes) == 1, cluster

    altered = ConfigResource(
        ConfigResource.Type.TOPIC,
        "ck-admin",
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([altered])[altered].result(timeout=30)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]
    assert configs["retention.ms"].value == "5000", configs["retention.ms"]

    # ListOffsets and DeleteRecords: the log start moves up, the end stays.
    produce_keyed("ck-admin", 0, 30)
    tp0 = TopicPartition("ck-admin", 0)
    end = admin.list_offsets({tp0: OffsetSpec.latest()})[tp0].result(timeout=30).offset
    assert end > 2, end
    deleted = admin.delete_records([TopicPartition("ck-admin", 0, 2)])
    assert next(iter(deleted.values())).result(timeout=30).low_watermark == 2
    start = admin.list_offsets({tp0: OffsetSpec.earliest()})[tp0].result(timeout=30).offset
    assert start == 2, start
    assert admin.list_offsets({tp0: OffsetSpec.latest()})[tp0].result(timeout=30).offset == end
    print("ok admin ck-admin 3 log start 2")


def check_produce():
    """acks=all, idempotent (enable.idempotence): keyed records with headers and
    timestamps, in the partition of Kafka's murmur2 partitioner, read back whole."""
    create_topic("ck-plain", 3)
    sender = producer(
        acks="all",
        partitioner="murmur2_random",
        **{"enable.idempotence": True, "linger.ms": 5},
    )
    results = []
    timestamp = 1_700_000_000_000
    for i in range(300):
        sender.produce(
            "ck-plain",
            key=f"key-{i}",
            value=f"value-{i}",
            headers=[("n", str(i).encode())],
            timestamp=timestamp + i,
            on_delivery=delivered_into(results),
        )
    flush_all(sender, results, 300)
    offsets = {}
    for _, msg in results:
        offsets.setdefault(msg.partition(), []).append(msg.offset())
    for partition, listed in offsets.items():
        assert sorted(listed) == list(range(len(listed))), (partition, listed)
    records = read_all("ck-plain", 3)
    assert len(records) == 300, len(records)
    assert len({m.key() for m in records}) == 300
    for m in records:
        i = int(m.key().decode()[4:])
        assert m.value() == f"value-{i}".encode(), m.value()
        assert m.timestamp()[1] == timestamp + i, m.timestamp()
        assert m.headers() == [("n", str(i).encode())], m.headers()
    # confluent_kafka_clients.rs checks each key's partition against the broker's own
    # partitioner (Kafka's murmur2, as librdkafka's murmur2_random).
    print("ok produce", {p: len(o) for p, o in sorted(offsets.items())})


def check_compression():
    """Every codec librdkafka writes, with the idempotent producer, read back."""
    text = "the quick brown fox jumps over the lazy dog " * 20
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        topic = f"ck-codec-{codec}"
        create_topic(topic, 1)
        sender = producer(
            acks="all",
            **{
                "enable.idempotence": True,
                "compression.type": codec,
                "linger.ms": 50,
                "batch.size": 1_000_000,
            },
        )
        results = []
        for i in range(200):
            sender.produce(topic, key=f"k{i}", value=f"{i} {text}", on_delivery=delivered_into(results))
        flush_all(sender, results, 200)
        records = read_all(topic, 1)
        assert [m.value() for m in records] == [f"{i} {text}".encode() for i in range(200)], codec
        assert [m.offset() for m in records] == list(range(200)), codec
        print("ok compression", codec, len(records))


def check_groups():
    """Two members share the partitions and consume each record once; when one leaves,
    the other takes over from the committed offsets."""
    create_topic("ck-group", 4)
    produce_keyed("ck-group", 0, 200)
    assigned = {"a": [], "b": []}

    def member(name):
        c = consumer(
            **{
                "group.id": "ck-group",
                "client.id": f"member-{name}",
                "partition.assignment.strategy": "range",
                "heartbeat.interval.ms": 300,
            }
        )

        def on_assign(_consumer, partitions):
            assigned[name] = [p.partition for p in partitions]

        def on_revoke(_consumer, _partitions):
            assigned[name] = []

        c.subscribe(["ck-group"], on_assign=on_assign, on_revoke=on_revoke)
        return c

    members = {"a": member("a"), "b": member("b")}
    seen = {}
    per_member = {"a": 0, "b": 0}
    deadline = time.monotonic() + DEADLINE_S
    while len(seen) < 200 or any(len(assigned[n]) != 2 for n in members):
        assert time.monotonic() < deadline, (len(seen), assigned)
        for name, c in members.items():
            msg = c.poll(0.05)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            assert msg.partition() in assigned[name], (name, msg.partition(), assigned)
            assert msg.key() not in seen, f"consumed twice: {msg.key()}"
            seen[msg.key()] = name
            per_member[name] += 1
    assert sorted(assigned["a"] + assigned["b"]) == [0, 1, 2, 3], assigned
    assert per_member["a"] > 0 and per_member["b"] > 0, per_member
    for c in members.values():
        c.commit(asynchronous=False)

    members.pop("b").close()
    a = members["a"]
    deadline = time.monotonic() + DEADLINE_S
    while len(assigned["a"]) != 4:
        assert time.monotonic() < deadline, assigned
        assert a.poll(0.1) is None, "a record before more were produced"
    produce_keyed("ck-group", 200, 40)
    more = 0
    deadline = time.monotonic() + DEADLINE_S
    while more < 40:
        assert time.monotonic() < deadline, more
        msg = a.poll(0.1)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        assert msg.key() not in seen, f"consumed twice after the rebalance: {msg.key()}"
        seen[msg.key()] = "a"
        more += 1
    a.commit(asynchronous=False)
    committed = a.committed([TopicPartition("ck-group", p) for p in range(4)], timeout=30)
    ends = [a.get_watermark_offsets(tp, timeout=30)[1] for tp in committed]
    assert [tp.offset for tp in committed] == ends, (committed, ends)
    assert sum(ends) == 240, ends
    a.close()
    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("ck-group")])
    offsets = listed["ck-group"].result(timeout=30).topic_partitions
    assert sum(tp.offset for tp in offsets) == 240, offsets
    print("ok groups", per_member, "then one member", more)


def check_read_committed():
    """read_committed with no transaction in the log reads everything to the end."""
    create_topic("ck-rc", 2)
    produce_keyed("ck-rc", 0, 50)
    records = read_all("ck-rc", 2, "read_committed")
    assert len(records) == 50, len(records)
    print("ok read_committed 50")


def check_transactions():
    """Consume, transform and produce in transactions with the offsets sent to them; an
    aborted transaction is invisible to read_committed; a second producer with the same
    transactional.id fences the first."""
    create_topic("ck-txn-in", 2)
    create_topic("ck-txn-out", 2)
    produce_keyed("ck-txn-in", 0, 100)
    settings = {"transactional.id": "ck-txn", "compression.type": "snappy"}
    sender = producer(**settings)
    sender.init_transactions(30)
    source = consumer(**{"group.id": "ck-txn-group", "isolation.level": "read_committed"})
    source.subscribe(["ck-txn-in"])
    copied = 0
    deadline = time.monotonic() + DEADLINE_S
    while copied < 100:
        assert time.monotonic() < deadline, copied
        batch = source.consume(num_messages=50, timeout=0.2)
        if not batch:
            continue
        sender.begin_transaction()
        for msg in batch:
            assert msg.error() is None, msg.error()
            sender.produce("ck-txn-out", key=msg.key(), value=msg.value().upper())
            copied += 1
        sender.send_offsets_to_transaction(
            source.position(source.assignment()), source.consumer_group_metadata(), 30
        )
        sender.commit_transaction(30)
    source.close()

    sender.begin_transaction()
    for i in range(10):
        sender.produce("ck-txn-out", key=f"aborted-{i}", value="ABORTED")
    sender.flush(30)
    sender.abort_transaction(30)

    successor = producer(**settings)
    successor.init_transactions(30)
    try:
        sender.begin_transaction()
        sender.produce("ck-txn-out", key="zombie", value="ZOMBIE")
        sender.commit_transaction(30)
        raise AssertionError("a fenced producer committed")
    except KafkaException as e:
        error = e.args[0]
        assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED), error
    successor.begin_transaction()
    successor.produce("ck-txn-out", key="after", value="AFTER")
    successor.commit_transaction(30)

    committed = read_all("ck-txn-out", 2, "read_committed")
    everything = read_all("ck-txn-out", 2)
    values = [m.value() for m in committed]
    assert len(values) == 101, len(values)
    assert all(v.startswith(b"VALUE-") or v == b"AFTER" for v in values), values
    aborted = sum(1 for m in everything if m.value() == b"ABORTED")
    assert aborted == 10, aborted
    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("ck-txn-group")])
    offsets = listed["ck-txn-group"].result(timeout=30).topic_partitions
    assert sum(tp.offset for tp in offsets) == 100, offsets
    print(f"ok transactions committed={len(values)} aborted={aborted}")


CHECKS = {
    "admin": check_admin,
    "produce": check_produce,
    "compression": check_compression,
    "groups": check_groups,
    "read_committed": check_read_committed,
    "transactions": check_transactions,
}

for name in sys.argv[2:]:
    started = time.monotonic()
    CHECKS[name]()
    print(f"took {name} {time.monotonic() - started:.1f} s", flush=True)
print("ok")
