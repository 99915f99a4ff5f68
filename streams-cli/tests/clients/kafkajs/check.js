// kafkajs against a served broker: admin, an idempotent gzip producer with acks=-1, a group
// of two consumers, and transactions. Run by streams-cli/tests/kafkajs.rs as
// `node check.js HOST:PORT`; prints one JSON object of what happened, which the Rust test
// checks. Exits 1 with a message on stderr when a step fails or the whole run takes too long.
'use strict';

const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const broker = process.argv[2];
if (!broker) {
  console.error('usage: node check.js HOST:PORT');
  process.exit(2);
}

const kafka = new Kafka({
  clientId: 'rill-kafkajs',
  brokers: [broker],
  logLevel: logLevel.WARN,
});

const ORDERS = 'js-orders';
const PARTITIONS = 4;
const RECORDS = 200;
const LATE_RECORDS = 20;
const TXN_TOPIC = 'js-txn';

/** Polls `done` every 20 ms until it is true, or fails after `ms`. */
async function until(what, ms, done) {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function adminSteps(admin) {
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: ORDERS, numPartitions: PARTITIONS },
      { topic: TXN_TOPIC, numPartitions: 1 },
    ],
  });
  // A second create of the same topic is refused by the broker; kafkajs reports `false`
  // only for TOPIC_ALREADY_EXISTS, and throws for other errors.
  const createdAgain = await admin.createTopics({ topics: [{ topic: ORDERS, numPartitions: PARTITIONS }] });
  const topics = (await admin.listTopics()).filter((t) => !t.startsWith('__')).sort();
  const metadata = await admin.fetchTopicMetadata({ topics: [ORDERS] });
  return {
    created,
    created_again: createdAgain,
    topics,
    partitions: metadata.topics[0].partitions.map((p) => ({ partition: p.partitionId, leader: p.leader })),
  };
}

/** A group of two consumers on ORDERS; records are produced once both hold partitions. */
async function groupSteps(admin) {
  const groupId = 'js-group';
  const members = [0, 1].map((i) => ({
    index: i,
    consumer: kafka.consumer({
      groupId,
      sessionTimeout: 10000,
      rebalanceTimeout: 10000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 200,
    }),
    assignment: null,
    records: [],
  }));
  for (const m of members) {
    m.consumer.on(m.consumer.events.GROUP_JOIN, (e) => {
      m.assignment = (e.payload.memberAssignment[ORDERS] || []).slice().sort((a, b) => a - b);
    });
  }
  await Promise.all(
    members.map(async (m) => {
      await m.consumer.connect();
      await m.consumer.subscribe({ topics: [ORDERS], fromBeginning: true });
      await m.consumer.run({
        eachMessage: async ({ partition, message }) => {
          m.records.push({ partition, offset: Number(message.offset), key: message.key.toString() });
        },
      });
    }),
  );
  // Stable: both hold partitions, none twice, all of them.
  await until('both consumers to hold partitions', 20000, () => {
    const [a, b] = members.map((m) => m.assignment);
    if (!a || !b || a.length === 0 || b.length === 0) return false;
    const all = a.concat(b).sort((x, y) => x - y);
    return all.length === PARTITIONS && all.every((p, i) => p === i);
  });
  const described = await admin.describeGroups([groupId]);

  // The idempotent producer: acks=-1, one gzip batch per partition.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < RECORDS; i++) {
    messages.push({ key: `k${i}`, value: `v${i}` });
  }
  const sent = await producer.send({ topic: ORDERS, acks: -1, compression: CompressionTypes.GZIP, messages });
  await producer.disconnect();

  await until('every record to be consumed', 20000, () => members.reduce((n, m) => n + m.records.length, 0) >= RECORDS);
  // Anything consumed twice would show up now.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const consumed = members.map((m) => ({ assignment: m.assignment, records: m.records.slice() }));

  // The second consumer leaves (committing what it consumed); the first takes over its
  // partitions and reads only what is produced after.
  const [stays, leaves] = members;
  await leaves.consumer.disconnect();
  await until('the remaining consumer to hold every partition', 20000, () => stays.assignment && stays.assignment.length === PARTITIONS);
  const before = stays.records.length;
  const late = [];
  for (let i = 0; i < LATE_RECORDS; i++) {
    late.push({ key: `late${i}`, value: `late${i}` });
  }
  const lateProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await lateProducer.connect();
  await lateProducer.send({ topic: ORDERS, acks: -1, compression: CompressionTypes.GZIP, messages: late });
  await lateProducer.disconnect();
  await until('the late records to be consumed', 20000, () => stays.records.length >= before + LATE_RECORDS);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const afterLeave = { assignment: stays.assignment, records: stays.records.slice(before) };
  // Disconnecting commits what was consumed and leaves the group.
  await stays.consumer.disconnect();
  const committed = await admin.fetchOffsets({ groupId, topics: [ORDERS] });
  const watermarks = await admin.fetchTopicOffsets(ORDERS);
  const after = await admin.describeGroups([groupId]);
  return {
    sent: sent.map((r) => ({ partition: r.partition, error: r.errorCode, base_offset: Number(r.baseOffset) })),
    group_while_running: {
      state: described.groups[0].state,
      protocol: described.groups[0].protocol,
      members: described.groups[0].members.length,
    },
    consumers: consumed,
    after_leave: afterLeave,
    committed: committed[0].partitions
      .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition),
    high_watermarks: watermarks
      .map((p) => ({ partition: p.partition, high: Number(p.high) }))
      .sort((a, b) => a.partition - b.partition),
    group_after: { state: after.groups[0].state, members: after.groups[0].members.length },
  };
}

/** Reads TXN_TOPIC from the start until `last` is seen; returns the values in order. */
async function readAll(groupId, readUncommitted, last) {
  const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 200 });
  const values = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [TXN_TOPIC], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      values.push(message.value.toString());
    },
  });
  await until(`${groupId} to read ${last}`, 20000, () => values.includes(last));
  await consumer.disconnect();
  return values;
}

async function transactionSteps(admin) {
  const producer = kafka.producer({ transactionalId: 'js-txn-producer', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();

  const committed = await producer.transaction();
  await committed.send({ topic: TXN_TOPIC, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
  await committed.sendOffsets({
    consumerGroupId: 'js-eos',
    topics: [{ topic: ORDERS, partitions: [{ partition: 0, offset: '5' }] }],
  });
  await committed.commit();

  const aborted = await producer.transaction();
  await aborted.send({ topic: TXN_TOPIC, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] });
  await aborted.sendOffsets({
    consumerGroupId: 'js-eos',
    topics: [{ topic: ORDERS, partitions: [{ partition: 1, offset: '7' }] }],
  });
  await aborted.abort();

  // A second producer with the same transactional id fences the first: its open transaction
  // is aborted and its commit refused.
  const zombie = kafka.producer({ transactionalId: 'js-fenced', idempotent: true, maxInFlightRequests: 1 });
  await zombie.connect();
  const zombieTxn = await zombie.transaction();
  await zombieTxn.send({ topic: TXN_TOPIC, messages: [{ value: 'zombie' }] });
  const successor = kafka.producer({ transactionalId: 'js-fenced', idempotent: true, maxInFlightRequests: 1 });
  await successor.connect();
  const successorTxn = await successor.transaction();
  await successorTxn.send({ topic: TXN_TOPIC, messages: [{ value: 'successor' }] });
  await successorTxn.commit();
  let fenced = null;
  await zombieTxn.commit().then(
    () => {
      fenced = 'committed';
    },
    (e) => {
      fenced = e.type || e.name;
    },
  );
  await successor.disconnect();
  await zombie.disconnect().catch(() => {});

  const last = await producer.transaction();
  await last.send({ topic: TXN_TOPIC, messages: [{ value: 'committed-3' }] });
  await last.commit();
  await producer.disconnect();

  const eosOffsets = await admin.fetchOffsets({ groupId: 'js-eos', topics: [ORDERS] });
  return {
    fenced,
    read_committed: await readAll('js-read-committed', false, 'committed-3'),
    read_uncommitted: await readAll('js-read-uncommitted', true, 'committed-3'),
    eos_offsets: eosOffsets[0].partitions
      .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition),
  };
}

/**
 * A group whose committed offset fell below the log start (records deleted): its consumer
 * gets OFFSET_OUT_OF_RANGE, commits -2 (kafkajs's way of asking for the earliest offset) and
 * goes on from the log start; admin resetOffsets (earliest) makes the group read it again.
 */
async function outOfRangeSteps(admin) {
  const topic = 'js-trimmed';
  const groupId = 'js-reset';
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `t${i}` })) });
  await producer.disconnect();
  // deleteTopicRecords looks the leader up in the admin's metadata cache only.
  await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }] });

  const consume = async () => {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
    const offsets = [];
    let crashed = null;
    consumer.on(consumer.events.CRASH, (e) => {
      crashed = String(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        offsets.push(Number(message.offset));
      },
    });
    await until('the records above the log start', 20000, () => offsets.length >= 2 || crashed);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await consumer.disconnect();
    return { offsets, crashed };
  };
  const recovered = await consume();
  const committedAfter = await admin.fetchOffsets({ groupId, topics: [topic] });
  await admin.resetOffsets({ groupId, topic, earliest: true });
  const again = await consume();
  return {
    recovered,
    committed_after: Number(committedAfter[0].partitions[0].offset),
    again,
  };
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const result = {};
  result.admin = await adminSteps(admin);
  result.group = await groupSteps(admin);
  result.transactions = await transactionSteps(admin);
  result.out_of_range = await outOfRangeSteps(admin);
  await admin.disconnect();
  process.stdout.write(JSON.stringify(result) + '\n');
}

const watchdog = setTimeout(() => {
  console.error('kafkajs check: gave up after 50 s');
  process.exit(1);
}, 50000);

main().then(
  () => {
    clearTimeout(watchdog);
    process.exit(0);
  },
  (e) => {
    console.error('kafkajs check failed:', e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
