// franz-go against a served broker: kadm's topic admin, idempotent producers with each
// codec, a consumer group of two members with commits, a transactional producer's commit and
// abort read back with read_committed, and a GroupTransactSession. Run by
// streams-cli/tests/franz_go.rs as `franzcheck HOST:PORT`; prints one JSON object of what
// happened, which the Rust test checks. Exits 1 with a message on stderr when a step fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	orders      = "go-orders"
	partitions  = 4
	perCodec    = 50
	lateRecords = 20
	txnTopic    = "go-txn"
	eosOut      = "go-eos-out"
	grown       = "go-grown"
)

var broker string

func opts(more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(broker),
		kgo.ClientID("rill-franz"),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, logLevel(), nil)),
	}, more...)
}

// logLevel is warn, or FRANZCHECK_LOG's level (debug, info).
func logLevel() kgo.LogLevel {
	switch os.Getenv("FRANZCHECK_LOG") {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func client(more ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(opts(more...)...)
	if err != nil {
		fail("new client: %v", err)
	}
	return cl
}

// step notes on stderr which step runs.
func step(name string) {
	fmt.Fprintf(os.Stderr, "franz-go check: %s\n", name)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "franz-go check failed: "+format+"\n", args...)
	os.Exit(1)
}

func check(what string, err error) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// until polls done every 20 ms until it is true, or fails after d.
func until(what string, d time.Duration, done func() bool) {
	deadline := time.Now().Add(d)
	for !done() {
		if time.Now().After(deadline) {
			fail("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type adminResult struct {
	Created             map[string]string `json:"created"` // topic -> error ("" when created)
	TopicIDSet          bool              `json:"topic_id_set"`
	CreatedAgain        string            `json:"created_again"`
	Partitions          []int32           `json:"partitions"`
	Leaders             []int32           `json:"leaders"`
	GrownPartitions     int               `json:"grown_partitions"`
	RetentionMs         string            `json:"retention_ms"`
	RetentionMsSource   string            `json:"retention_ms_source"`
	Deleted             string            `json:"deleted"`
	TopicsAfterDelete   []string          `json:"topics_after_delete"`
	DeleteRecordsLow    int64             `json:"delete_records_low"`
	ClusterControllerID int32             `json:"cluster_controller_id"`
}

func adminSteps(ctx context.Context, adm *kadm.Client) adminResult {
	step("admin")
	var r adminResult
	r.Created = map[string]string{}
	created, err := adm.CreateTopics(ctx, partitions, 1, nil, orders)
	check("create topics", err)
	for t, c := range created {
		r.Created[t] = errString(c.Err)
		r.TopicIDSet = c.ID != (kadm.TopicID{})
	}
	more, err := adm.CreateTopics(ctx, 1, -1, nil, txnTopic, eosOut, grown)
	check("create topics", err)
	for t, c := range more {
		r.Created[t] = errString(c.Err)
	}
	again, err := adm.CreateTopics(ctx, partitions, 1, nil, orders)
	check("create topics again", err)
	r.CreatedAgain = errString(again[orders].Err)

	md, err := adm.Metadata(ctx, orders)
	check("metadata", err)
	r.ClusterControllerID = md.Controller
	for _, p := range md.Topics[orders].Partitions.Sorted() {
		r.Partitions = append(r.Partitions, p.Partition)
		r.Leaders = append(r.Leaders, p.Leader)
	}

	grow, err := adm.CreatePartitions(ctx, 2, grown)
	check("create partitions", err)
	check("create partitions result", grow[grown].Err)
	mdGrown, err := adm.Metadata(ctx, grown)
	check("metadata", err)
	r.GrownPartitions = len(mdGrown.Topics[grown].Partitions)

	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, grown)
	check("alter topic configs", err)
	for _, a := range altered {
		check("alter topic configs result", a.Err)
	}
	described, err := adm.DescribeTopicConfigs(ctx, grown)
	check("describe topic configs", err)
	rc, err := described.On(grown, nil)
	check("describe topic configs result", err)
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			r.RetentionMs = c.MaybeValue()
			r.RetentionMsSource = c.Source.String()
		}
	}

	// Three records into partition 0, then everything below offset 2 deleted.
	pcl := client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 3; i++ {
		check("produce to "+grown, pcl.ProduceSync(ctx, &kgo.Record{Topic: grown, Partition: 0, Value: []byte("x")}).FirstErr())
	}
	pcl.Close()
	var toDelete kadm.Offsets
	toDelete.Add(kadm.Offset{Topic: grown, Partition: 0, At: 2})
	deletedRecords, err := adm.DeleteRecords(ctx, toDelete)
	check("delete records", err)
	for _, d := range deletedRecords.Sorted() {
		check("delete records result", d.Err)
		r.DeleteRecordsLow = d.LowWatermark
	}

	deleted, err := adm.DeleteTopics(ctx, grown)
	check("delete topics", err)
	r.Deleted = errString(deleted[grown].Err)
	listed, err := adm.ListTopics(ctx)
	check("list topics", err)
	r.TopicsAfterDelete = listed.Names()
	sort.Strings(r.TopicsAfterDelete)
	return r
}

type consumed struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Codec     uint8  `json:"codec"` // the batch's compression as fetched: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
}

type member struct {
	cl      *kgo.Client
	mu      sync.Mutex
	owned   map[int32]bool
	records []consumed
	errs    []string
	cancel  context.CancelFunc
	done    chan struct{}
}

// stop ends polling and waits for the poll loop to return.
func (m *member) stop() {
	m.cancel()
	<-m.done
}

func (m *member) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.owned {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// newMember joins the group and polls until stopped.
func newMember(ctx context.Context, group string) *member {
	m := &member{owned: map[int32]bool{}, done: make(chan struct{})}
	pollCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	defer func() { go m.poll(pollCtx) }()
	onLoss := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
		m.mu.Lock()
		for _, p := range lost[orders] {
			delete(m.owned, p)
		}
		m.mu.Unlock()
	}
	m.cl = client(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(orders),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			m.mu.Lock()
			for _, p := range added[orders] {
				m.owned[p] = true
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(onLoss),
		kgo.OnPartitionsLost(onLoss),
	)
	return m
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		m.mu.Lock()
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				m.errs = append(m.errs, fmt.Sprintf("%s-%d: %v", t, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			m.records = append(m.records, consumed{r.Partition, r.Offset, string(r.Key), r.Attrs.CompressionType()})
		})
		m.mu.Unlock()
	}
}

type produced struct {
	Codec         string `json:"codec"`
	Key           string `json:"key"`
	Partition     int32  `json:"partition"`
	Offset        int64  `json:"offset"`
	ProducerID    int64  `json:"producer_id"`
	ProducerEpoch int16  `json:"producer_epoch"`
}

type memberResult struct {
	Assignment []int32    `json:"assignment"`
	Records    []consumed `json:"records"`
	Errors     []string   `json:"errors"`
}

type groupResult struct {
	Produced        []produced      `json:"produced"`
	StateRunning    string          `json:"state_running"`
	ProtocolRunning string          `json:"protocol_running"`
	MembersRunning  int             `json:"members_running"`
	Members         []memberResult  `json:"members"`
	AfterLeave      memberResult    `json:"after_leave"`
	Committed       map[int32]int64 `json:"committed"`
	EndOffsets      map[int32]int64 `json:"end_offsets"`
	StateAfter      string          `json:"state_after"`
	MembersAfter    int             `json:"members_after"`
}

var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// produce sends one record per key to `orders` with a new idempotent producer (franz-go's
// default) with acks=all and the codec; the values compress well, so franz-go sends them
// compressed.
func produce(ctx context.Context, name string, codec kgo.CompressionCodec, keys []string) []produced {
	pcl := client(kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer pcl.Close()
	var recs []*kgo.Record
	for _, k := range keys {
		recs = append(recs, &kgo.Record{Topic: orders, Key: []byte(k), Value: []byte(strings.Repeat(name+" payload ", 20))})
	}
	results := pcl.ProduceSync(ctx, recs...)
	check("produce "+name, results.FirstErr())
	var out []produced
	for _, res := range results {
		out = append(out, produced{name, string(res.Record.Key), res.Record.Partition, res.Record.Offset, res.Record.ProducerID, res.Record.ProducerEpoch})
	}
	return out
}

// groupSteps runs a group of two on `orders`, produces once both hold partitions, and
// consumes every record.
func groupSteps(ctx context.Context, adm *kadm.Client) groupResult {
	step("group")
	var r groupResult
	const group = "go-group"
	members := []*member{newMember(ctx, group), newMember(ctx, group)}
	until("both members to hold partitions", 20*time.Second, func() bool {
		a, b := members[0].assignment(), members[1].assignment()
		if len(a) == 0 || len(b) == 0 || len(a)+len(b) != partitions {
			return false
		}
		seen := map[int32]bool{}
		for _, p := range append(a, b...) {
			seen[p] = true
		}
		return len(seen) == partitions
	})
	running, err := adm.DescribeGroups(ctx, group)
	check("describe groups", err)
	r.StateRunning = running[group].State
	r.ProtocolRunning = running[group].Protocol
	r.MembersRunning = len(running[group].Members)

	// One idempotent producer per codec.
	for _, c := range codecs {
		var keys []string
		for i := 0; i < perCodec; i++ {
			keys = append(keys, fmt.Sprintf("%s-%d", c.name, i))
		}
		r.Produced = append(r.Produced, produce(ctx, c.name, c.codec, keys)...)
	}

	total := len(codecs) * perCodec
	deadline := time.Now().Add(20 * time.Second)
	for members[0].count()+members[1].count() < total {
		if time.Now().After(deadline) {
			for i, m := range members {
				m.mu.Lock()
				fmt.Fprintf(os.Stderr, "member %d: assignment %v, %d records, errors %v\n", i, m.owned, len(m.records), m.errs)
				m.mu.Unlock()
			}
			fail("timed out waiting for every record to be consumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a record consumed twice would show up now
	for _, m := range members {
		assignment := m.assignment()
		m.mu.Lock()
		r.Members = append(r.Members, memberResult{assignment, append([]consumed(nil), m.records...), m.errs})
		m.mu.Unlock()
	}

	// The second member commits and leaves; the first takes over its partitions and reads
	// only what is produced after.
	stays, leaves := members[0], members[1]
	leaves.stop()
	check("commit", leaves.cl.CommitUncommittedOffsets(ctx))
	leaves.cl.Close()
	until("the remaining member to hold every partition", 20*time.Second, func() bool {
		return len(stays.assignment()) == partitions
	})
	before := stays.count()
	var late []string
	for i := 0; i < lateRecords; i++ {
		late = append(late, fmt.Sprintf("late-%d", i))
	}
	r.Produced = append(r.Produced, produce(ctx, codecs[3].name, codecs[3].codec, late)...)
	until("the late records to be consumed", 20*time.Second, func() bool {
		return stays.count() >= before+lateRecords
	})
	time.Sleep(300 * time.Millisecond)
	stays.stop()
	check("commit", stays.cl.CommitUncommittedOffsets(ctx))
	r.AfterLeave.Assignment = stays.assignment()
	r.AfterLeave.Records = stays.records[before:]
	r.AfterLeave.Errors = stays.errs

	fetched, err := adm.FetchOffsets(ctx, group)
	check("fetch offsets", err)
	r.Committed = map[int32]int64{}
	for p, o := range fetched[orders] {
		check("fetch offsets result", o.Err)
		r.Committed[p] = o.At
	}
	r.EndOffsets = endOffsets(ctx, adm, orders)
	stays.cl.Close() // leaves the group
	after, err := adm.DescribeGroups(ctx, group)
	check("describe groups", err)
	r.StateAfter = after[group].State
	r.MembersAfter = len(after[group].Members)
	return r
}

func endOffsets(ctx context.Context, adm *kadm.Client, topic string) map[int32]int64 {
	ends, err := adm.ListEndOffsets(ctx, topic)
	check("list end offsets", err)
	out := map[int32]int64{}
	for p, o := range ends[topic] {
		check("list end offsets result", o.Err)
		out[p] = o.Offset
	}
	return out
}

// readAll reads topic from the start with the isolation level until `last` is seen.
func readAll(ctx context.Context, topic string, committed bool, last string) []string {
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl := client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	defer cl.Close()
	var values []string
	deadline, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(deadline)
		if deadline.Err() != nil {
			fail("reading %s: %s not seen; read %v", topic, last, values)
		}
		fs.EachError(func(t string, p int32, err error) { fail("fetch %s-%d: %v", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		for _, v := range values {
			if v == last {
				return values
			}
		}
	}
}

type txnResult struct {
	Fenced                 string   `json:"fenced"`
	FencedIsProducerFenced bool     `json:"fenced_is_producer_fenced"`
	ReadCommitted          []string `json:"read_committed"`
	ReadUncommitted        []string `json:"read_uncommitted"`
	DescribedState         string   `json:"described_state"`
	DescribedPid           int64    `json:"described_producer_id"`
	ListedState            string   `json:"listed_state"`
	ProducerPid            int64    `json:"producer_id"`
	DescribedProducers     []int64  `json:"described_producers"`
}

func transactionSteps(ctx context.Context, adm *kadm.Client) txnResult {
	step("transactions")
	var r txnResult
	const txnID = "go-txn-producer"

	// A second client with the same transactional id fences the first: its open transaction
	// is aborted and its commit refused.
	zombie := client(kgo.TransactionalID("go-fenced"), kgo.DefaultProduceTopic(txnTopic))
	check("begin transaction", zombie.BeginTransaction())
	check("produce in transaction", zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr())
	successor := client(kgo.TransactionalID("go-fenced"), kgo.DefaultProduceTopic(txnTopic))
	check("begin transaction", successor.BeginTransaction())
	check("produce in transaction", successor.ProduceSync(ctx, &kgo.Record{Value: []byte("successor")}).FirstErr())
	check("end transaction", successor.EndTransaction(ctx, kgo.TryCommit))
	fenced := zombie.EndTransaction(ctx, kgo.TryCommit)
	r.Fenced = errString(fenced)
	r.FencedIsProducerFenced = errors.Is(fenced, kerr.ProducerFenced)
	successor.Close()
	zombie.Close()

	cl := client(kgo.TransactionalID(txnID), kgo.TransactionTimeout(10*time.Second), kgo.DefaultProduceTopic(txnTopic))
	rounds := []struct {
		values []string
		commit kgo.TransactionEndTry
	}{
		{[]string{"committed-1", "committed-2"}, kgo.TryCommit},
		{[]string{"aborted-1", "aborted-2"}, kgo.TryAbort},
		{[]string{"committed-3"}, kgo.TryCommit},
	}
	for _, round := range rounds {
		check("begin transaction", cl.BeginTransaction())
		for _, v := range round.values {
			res := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)})
			check("produce in transaction", res.FirstErr())
			r.ProducerPid = res[0].Record.ProducerID
		}
		check("end transaction", cl.EndTransaction(ctx, round.commit))
	}
	cl.Close()

	described, err := adm.DescribeTransactions(ctx, txnID)
	check("describe transactions", err)
	check("describe transactions result", described[txnID].Err)
	r.DescribedState = described[txnID].State
	r.DescribedPid = described[txnID].ProducerID
	listed, err := adm.ListTransactions(ctx, nil, nil)
	check("list transactions", err)
	r.ListedState = listed[txnID].State
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{txnTopic: {0: {}}})
	check("describe producers", err)
	producers.EachProducer(func(p kadm.DescribedProducer) {
		r.DescribedProducers = append(r.DescribedProducers, p.ProducerID)
	})

	r.ReadCommitted = readAll(ctx, txnTopic, true, "committed-3")
	r.ReadUncommitted = readAll(ctx, txnTopic, false, "committed-3")
	return r
}

type sessionResult struct {
	AbortedRound   int             `json:"aborted_round"`
	CommittedKeys  []string        `json:"committed_keys"`
	OutCommitted   []string        `json:"out_committed"`
	OutUncommitted int             `json:"out_uncommitted"`
	Committed      map[int32]int64 `json:"committed"`
	EndOffsets     map[int32]int64 `json:"end_offsets"`
}

// sessionSteps copies `orders` to `eosOut` in a GroupTransactSession: a first round is
// aborted (its input is read again), the rest commit, offsets included.
func sessionSteps(ctx context.Context, adm *kadm.Client) sessionResult {
	step("session")
	var r sessionResult
	const group = "go-eos"
	total := len(codecs)*perCodec + lateRecords
	s, err := kgo.NewGroupTransactSession(opts(
		kgo.TransactionalID("go-eos-session"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(orders),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(10*time.Second),
		kgo.DefaultProduceTopic(eosOut),
	)...)
	check("new group transact session", err)
	deadline, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for round := 0; len(r.CommittedKeys) < total; round++ {
		fs := s.PollFetches(deadline)
		if deadline.Err() != nil {
			fail("group transact session: %d of %d committed", len(r.CommittedKeys), total)
		}
		fs.EachError(func(t string, p int32, err error) { fail("fetch %s-%d: %v", t, p, err) })
		var keys []string
		fs.EachRecord(func(rec *kgo.Record) { keys = append(keys, string(rec.Key)) })
		if len(keys) == 0 {
			continue
		}
		check("begin", s.Begin())
		var out []*kgo.Record
		for _, k := range keys {
			out = append(out, &kgo.Record{Value: []byte(k)})
		}
		// Written before End, so that the aborted round's records are in the log.
		check("produce in session", s.ProduceSync(deadline, out...).FirstErr())
		try := kgo.TryCommit
		if round == 0 {
			try = kgo.TryAbort
			r.AbortedRound = len(keys)
		}
		committed, err := s.End(deadline, try)
		check("end session transaction", err)
		if committed {
			r.CommittedKeys = append(r.CommittedKeys, keys...)
		} else if round != 0 {
			fail("a session round meant to commit was aborted")
		}
	}
	s.Close()
	fetched, err := adm.FetchOffsets(ctx, group)
	check("fetch offsets", err)
	r.Committed = map[int32]int64{}
	for p, o := range fetched[orders] {
		r.Committed[p] = o.At
	}
	r.EndOffsets = endOffsets(ctx, adm, orders)
	last := r.CommittedKeys[len(r.CommittedKeys)-1]
	r.OutCommitted = readAll(ctx, eosOut, true, last)
	// read_uncommitted: the aborted round's copies are there too.
	all := readAll(ctx, eosOut, false, last)
	r.OutUncommitted = len(all)
	return r
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: franzcheck HOST:PORT")
		os.Exit(2)
	}
	broker = os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	go func() {
		<-ctx.Done()
		time.Sleep(time.Second)
		fail("gave up after 50 s")
	}()
	admCl := client()
	adm := kadm.NewClient(admCl)
	out := map[string]any{}
	out["admin"] = adminSteps(ctx, adm)
	out["group"] = groupSteps(ctx, adm)
	out["transactions"] = transactionSteps(ctx, adm)
	out["session"] = sessionSteps(ctx, adm)
	admCl.Close()
	check("write result", json.NewEncoder(os.Stdout).Encode(out))
}
