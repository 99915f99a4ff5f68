"""kafka-python's KafkaAdminClient against `streams serve`: run by kafka_python_admin.rs
with the server's address. Prints "ok" at the end; any failed check raises."""

import sys

from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
)
from kafka.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
)

admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="rill-admin-test")

admin.create_topics(
    [
        NewTopic("py-keep", 2, 1, topic_configs={"retention.ms": "5000"}),
        NewTopic("py-gone", 1, 1),
    ]
)
assert {"py-keep", "py-gone"} <= set(admin.list_topics()), admin.list_topics()

for bad, error in [
    (NewTopic("py-keep", 1, 1), TopicAlreadyExistsError),
    (NewTopic("py-rf", 1, 3), InvalidReplicationFactorError),
]:
    try:
        admin.create_topics([bad])
    except error:
        pass
    else:
        raise AssertionError(f"{bad.name}: expected {error.__name__}")

# validate_only creates nothing.
admin.create_topics([NewTopic("py-validate", 1, 1)], validate_only=True)
assert "py-validate" not in admin.list_topics()

described = admin.describe_configs(
    [ConfigResource(ConfigResourceType.TOPIC, "py-keep")]
)
entries = {}
for response in described:
    for resource in response.resources:
        assert resource[0] == 0, resource
        for entry in resource[4]:
            entries[entry[0]] = entry[1]
assert entries["retention.ms"] == "5000", entries
assert entries["cleanup.policy"] == "delete", entries
assert entries["min.insync.replicas"] == "1", entries

admin.alter_configs(
    [ConfigResource(ConfigResourceType.TOPIC, "py-keep", configs={"segment.ms": "60000"})]
)

admin.create_partitions({"py-keep": NewPartitions(3)})
try:
    admin.create_partitions({"py-keep": NewPartitions(2)})
except InvalidPartitionsError:
    pass
else:
    raise AssertionError("shrinking partitions: expected InvalidPartitionsError")

cluster = admin.describe_cluster()
assert cluster["cluster_id"] == "rill-embedded", cluster
assert [b["node_id"] for b in cluster["brokers"]] == [0], cluster

admin.delete_topics(["py-gone"])
assert "py-gone" not in admin.list_topics()
admin.close()
print("ok")
