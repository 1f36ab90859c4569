package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Recovery bench defaults and bounds.
const (
	// recoveryTail is how many records are produced just before the kill,
	// so that the kill lands while the consumer is processing records and
	// exporting their spans, not while it is idle.
	recoveryTail = 1_000
	// recoveryRate is the stated rate, in records per second of a partition,
	// at which the records behind the open session are converted to the time
	// they stand for; it also spaces the events' timestamps.
	recoveryRate = 1_000
	// recoverySnapshotInterval is kafka.snapshot_interval of the "with
	// snapshots" runs when the configuration leaves it at 0 (off).
	recoverySnapshotInterval = time.Second
	// recoveryBatchTimeout caps kafka.export_batch_timeout of the consumers:
	// the marker's spans are a partial batch, and the timeout would add its
	// full length to every restart measured.
	recoveryBatchTimeout = 100 * time.Millisecond
	// recoveryLifecycle is the idle timeout and maximum duration of the
	// consumers and of the replay, long enough that the session open since
	// the first record never times out in stream time.
	recoveryLifecycle = 25 * time.Hour
	// recoveryInstance is the static member ID of every consumer process
	// (kafka.instance_id): the restarted process takes the partition back at
	// once instead of waiting for the killed one's session timeout.
	recoveryInstance = "sessiontrace-bench-recovery-0"
	// recoveryPoll is how often the group's commit is read while waiting for
	// a consumer to catch up before the kill.
	recoveryPoll = 50 * time.Millisecond
)

// recoveryDefaultRecords are the default --recovery-records: at the stated
// 1,000 records/s, about 1.7 min, 8.3 min and 33 min of records behind the
// open session.
var recoveryDefaultRecords = []int{100_000, 500_000, 2_000_000}

// validateRecovery checks the --recovery flags.
func (f benchFlags) validateRecovery() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench: "+format, append([]any{errUsage}, args...)...)
	}
	if len(f.recoveryRecords) == 0 {
		return bad("--recovery-records needs at least one amount")
	}
	for _, n := range f.recoveryRecords {
		if n <= recoveryTail || n > benchMaxEvents {
			return bad("--recovery-records: each amount must be above %d (the records produced just before the kill) and at most %d, got %d",
				recoveryTail, benchMaxEvents, n)
		}
	}
	if !(f.recoveryRate > 0) || math.IsInf(f.recoveryRate, 0) || f.recoveryRate > 1e7 {
		return bad("--recovery-rate must be above 0 and at most 1e7 records/s, got %v", f.recoveryRate)
	}
	// The events' timestamps are spaced at the rate and end now: a span of
	// more than a day would fall to the broker's retention (7 days by
	// default) or to the consumers' lifecycle limits.
	if span := time.Duration(float64(slices.Max(f.recoveryRecords)+len(f.recoveryRecords)*(recoveryTail+2)) / f.recoveryRate * float64(time.Second)); span > 24*time.Hour {
		return bad("--recovery-rate %v records/s makes %d records span %s of event time; at most 24h", f.recoveryRate, slices.Max(f.recoveryRecords), span.Round(time.Second))
	}
	return nil
}

// recoveryReport is what --recovery measured; --json prints it as is.
type recoveryReport struct {
	Broker          string  `json:"broker"`
	BrokerInProcess bool    `json:"broker_in_process"`
	OTLP            string  `json:"otlp"`
	GOMAXPROCS      int     `json:"gomaxprocs"`
	NumCPU          int     `json:"num_cpu"`
	LoadAverage     string  `json:"load_average,omitempty"`
	Rate            float64 `json:"rate_records_per_second"`
	Tail            int     `json:"tail_records"`
	// SnapshotInterval is kafka.snapshot_interval of the runs with
	// snapshots; CommitInterval bounds the duplicates a kill may cause.
	SnapshotInterval   string          `json:"snapshot_interval"`
	CommitInterval     string          `json:"commit_interval"`
	ExportBatchTimeout string          `json:"export_batch_timeout"`
	InstanceID         string          `json:"instance_id"`
	Rows               []recoveryRow   `json:"rows"`
	Failures           []string        `json:"failures,omitempty"`
	Lanes              []recoveryTopic `json:"topics"`
}

// recoveryTopic names the topic and group of one lane.
type recoveryTopic struct {
	Snapshots bool   `json:"snapshots"`
	Topic     string `json:"topic"`
	Group     string `json:"group"`
}

// recoveryRow is one amount of records behind the open session, measured
// without and with snapshots.
type recoveryRow struct {
	RecordsBehind int             `json:"records_behind"`
	EventTime     string          `json:"event_time_at_rate"`
	Without       recoveryMeasure `json:"without_snapshots"`
	With          recoveryMeasure `json:"with_snapshots"`
}

// recoveryMeasure is one kill -9 and restart.
type recoveryMeasure struct {
	// RestartSeconds is from the start of the new process to the receipt
	// of every span of the records produced before it started.
	RestartSeconds float64 `json:"restart_seconds"`
	// CPUSeconds is the new process's user+system CPU time until then.
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes uint64  `json:"peak_rss_bytes"`
	// CommittedAtKill is the group's committed offset when the process was
	// killed, MarkAtKill its exported-through mark, and SnapshotAtKill
	// whether that commit named a snapshot.
	CommittedAtKill int64 `json:"committed_at_kill"`
	MarkAtKill      int64 `json:"mark_at_kill"`
	SnapshotAtKill  bool  `json:"snapshot_at_kill"`
	// ReplayedRecords is what the new process had to read again: from the
	// committed offset to the end of the partition at the restart.
	ReplayedRecords int64 `json:"replayed_records"`
	// ExpectedSpans are the spans of the tail and the marker, the records
	// around the kill; Lost of them never arrived.
	ExpectedSpans int `json:"expected_spans"`
	Lost          int `json:"lost"`
	// Duplicates are spans received more than once; BelowMark of them were
	// closed by a record below the commit's exported-through mark, which the
	// delivery contract forbids (the others are within one commit interval).
	Duplicates int `json:"duplicates"`
	BelowMark  int `json:"duplicates_below_mark"`
}

// benchRecovery runs the recovery bench: two lanes, one topic of one
// partition and one group each, consumed by a sessiontrace consume process
// without snapshots in one and with snapshots in the other. In each, one
// session stays open from the first record; for every amount of
// --recovery-records, short sessions are produced behind it until that many
// records, the last recoveryTail of them just before the process is killed
// with SIGKILL while it processes them; then a marker session is produced
// and a new process started with the same group and instance ID, and timed
// until every span of the tail and the marker has arrived at the embedded
// OTLP receiver.
func benchRecovery(ctx context.Context, cfg config, configPath string, f benchFlags, stdout, stderr io.Writer, verbose bool) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: recovery: "+format+"\n", args...) }
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: recovery: find the sessiontrace binary to run: %w", err)
	}
	records := slices.Clone(f.recoveryRecords)
	slices.Sort(records)
	records = slices.Compact(records)

	cc := cfg.Kafka.Config
	cc.ExportBatchTimeout = min(cc.ExportBatchTimeout, recoveryBatchTimeout)
	cc.Lifecycle.IdleTimeout, cc.Lifecycle.MaxDuration = recoveryLifecycle, recoveryLifecycle
	interval := cc.SnapshotInterval
	if interval <= 0 {
		interval = recoverySnapshotInterval
	}
	rep := recoveryReport{
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAverage: loadAverage(),
		Rate: f.recoveryRate, Tail: recoveryTail, SnapshotInterval: interval.String(),
		CommitInterval: cc.CommitInterval.String(), ExportBatchTimeout: cc.ExportBatchTimeout.String(), InstanceID: recoveryInstance,
	}
	stopBroker, err := benchBroker(&cfg, &rep.Broker, &rep.BrokerInProcess)
	if err != nil {
		return err
	}
	defer stopBroker()
	cc.Brokers = cfg.Kafka.Brokers

	admCl, err := cfg.Kafka.kafkaClient()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	prodCl, err := cfg.Kafka.kafkaClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer prodCl.Close()

	name := fmt.Sprintf("sessiontrace-bench-recovery-%d-%08x", time.Now().Unix(), rand.Uint32())
	var made benchResources
	log := newLogger(logConfig{Level: "warn", Format: cfg.Log.Format}, stderr)
	defer made.delete(adm, log)
	// Static members do not leave their group when they stop; they are
	// removed here so that the groups can be deleted.
	defer leaveStatic(adm, &made, log)

	// Events are spaced at the stated rate and end about now, so that their
	// timestamps are what a partition at that rate would hold.
	total := records[len(records)-1] + len(records)*(recoveryTail+2) + 1
	base := time.Now().Add(-time.Duration(float64(total) / f.recoveryRate * float64(time.Second))).UnixNano()
	lanes := make([]*recoveryLane, 2)
	for i, snap := range []bool{false, true} {
		suffix := "-plain"
		if snap {
			suffix = "-snapshots"
		}
		l := &recoveryLane{
			snapshots: snap, topic: name + suffix, group: name + suffix, base: base, rate: f.recoveryRate,
			prod: prodCl, adm: adm, exe: exe, configPath: configPath, stderr: stderr, verbose: verbose,
		}
		made.topics = append(made.topics, l.topic, l.topic+".dlq", l.topic+".snapshots")
		made.groups = append(made.groups, l.group)
		if err := createBenchTopic(ctx, adm, l.topic, 1); err != nil {
			return err
		}
		lcc := cc
		lcc.Topic, lcc.Group, lcc.InstanceID = l.topic, l.group, recoveryInstance
		lcc.SnapshotInterval = 0
		// The bench's producer writes in ts order, so the reorder window
		// would change no span; left on, it would add its quiet flush (a
		// window of wall time) to every restart and hold the expected
		// spans of the replay until its end.
		lcc.Lifecycle.ReorderWindow = 0
		if snap {
			lcc.SnapshotInterval = interval
		}
		l.cc = lcc
		if l.rp, err = consumer.NewReplayer(lcc, &l.sink); err != nil {
			return fmt.Errorf("%w: %w", errInvalidConfig, err)
		}
		if l.recv, err = receiver.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer l.recv.Close()
		l.recv.KeepSpans(false)
		defer l.stop()
		lanes[i] = l
		rep.Lanes = append(rep.Lanes, recoveryTopic{Snapshots: snap, Topic: l.topic, Group: l.group})
	}
	rep.OTLP = "embedded receivers " + lanes[0].recv.Addr() + ", " + lanes[1].recv.Addr()
	progress("topics %s-plain and -snapshots on %s, one partition each; snapshots every %s in the second", name, rep.Broker, interval)

	var fail []string
	for _, n := range records {
		row := recoveryRow{RecordsBehind: n, EventTime: eventTime(n, f.recoveryRate)}
		for _, l := range lanes {
			progress("%d records behind the open session, snapshots %t", n, l.snapshots)
			m, err := l.round(ctx, n)
			if err != nil {
				return fmt.Errorf("bench: recovery: %d records, snapshots %t: %w", n, l.snapshots, err)
			}
			if m.Lost > 0 || m.BelowMark > 0 {
				fail = append(fail, fmt.Sprintf("%d records, snapshots %t: %d spans lost, %d duplicates below the committed mark",
					n, l.snapshots, m.Lost, m.BelowMark))
			}
			if l.snapshots {
				row.With = m
			} else {
				row.Without = m
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.Failures = fail
	for _, l := range lanes {
		if err := l.stop(); err != nil {
			log.Warn("bench: recovery: stop consumer", "topic", l.topic, "error", err)
		}
	}
	if f.json {
		err = writeJSON(stdout, rep)
	} else {
		err = writeRecoveryText(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if len(fail) > 0 {
		return fmt.Errorf("bench: recovery: %s", strings.Join(fail, "; "))
	}
	return nil
}

// eventTime is how long n records take at rate records/s.
func eventTime(n int, rate float64) string {
	return time.Duration(float64(n) / rate * float64(time.Second)).Round(time.Second).String()
}

// recoveryLane is one topic and group, and the consume process reading it.
type recoveryLane struct {
	snapshots    bool
	topic, group string
	cc           consumer.Config
	base         int64
	rate         float64
	prod         *kgo.Client
	adm          *kadm.Client
	exe          string
	configPath   string
	stderr       io.Writer
	verbose      bool

	rp      *consumer.Replayer
	sink    recoverySink
	recv    *receiver.Receiver
	child   *laneChild
	next    int64 // the partition's end offset
	seq     int   // short-session records produced so far
	markers int   // marker sessions produced so far
	// dups are the duplicates received in earlier rounds: the receiver's
	// count is the replay's spans plus these once a consumer caught up.
	dups int
}

// recoverySink counts the spans the replay finishes, and while keep is set
// also remembers each one's ID and the offset of the record that closed it.
type recoverySink struct {
	spans  int
	keep   bool
	offset int64
	closed map[trace.SpanID]int64
}

func (s *recoverySink) Write(_ context.Context, spans []lifecycle.Span) error {
	s.spans += len(spans)
	if s.keep {
		for i := range spans {
			s.closed[spans[i].SpanID] = s.offset
		}
	}
	return nil
}

func (s *recoverySink) Close(context.Context) error { return nil }

// event is the lane's record at offset l.next: the open session's login
// first, then short sessions, a login and a disconnect each.
func (l *recoveryLane) event() schema.Event {
	ts := l.base + int64(float64(l.next)/l.rate*float64(time.Second))
	if l.next == 0 {
		return schema.Event{Type: schema.SessionLogin, PlayerID: "open-since-start", EventID: "open-since-start-login", TS: ts, AuthMethod: "oauth"}
	}
	p := "p" + strconv.Itoa(l.seq/2)
	defer func() { l.seq++ }()
	if l.seq%2 == 0 {
		return schema.Event{Type: schema.SessionLogin, PlayerID: p, EventID: p + "-in", TS: ts, AuthMethod: "oauth"}
	}
	return schema.Event{Type: schema.SessionDisconnect, PlayerID: p, EventID: p + "-out", TS: ts, Reason: "client_quit"}
}

// produce produces n records of next (event by default) and replays each
// for the spans it finishes.
func (l *recoveryLane) produce(ctx context.Context, n int, next func() schema.Event) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = errors.Join(firstErr, err)
			mu.Unlock()
		}
	}
	if next == nil {
		next = l.event
	}
	for range n {
		ev := next()
		value := schema.AppendJSON(make([]byte, 0, 160), &ev)
		rec := &kgo.Record{Topic: l.topic, Partition: 0, Key: []byte(ev.PlayerID), Value: value, Timestamp: time.Unix(0, ev.TS)}
		l.sink.offset = l.next
		if err := l.rp.Process(ctx, consumer.Record{Topic: l.topic, Partition: 0, Offset: l.next, Key: rec.Key, Value: value, Timestamp: rec.Timestamp}); err != nil {
			return fmt.Errorf("replay for the expected spans: %w", err)
		}
		l.next++
		l.prod.Produce(ctx, rec, promise)
	}
	if err := l.prod.Flush(ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", l.topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("produce to %s: %w", l.topic, firstErr)
	}
	return nil
}

// round brings the partition to n records behind its open session, kills
// the consumer while it processes the last recoveryTail of them, restarts
// it and measures the restart.
func (l *recoveryLane) round(ctx context.Context, n int) (recoveryMeasure, error) {
	var m recoveryMeasure
	if l.next == 0 {
		if err := l.produce(ctx, 1, nil); err != nil { // the open session's login
			return m, err
		}
	}
	if fill := int64(n-recoveryTail) - (l.next - 1); fill > 0 {
		if err := l.produce(ctx, int(fill), nil); err != nil {
			return m, err
		}
	}
	if l.child == nil {
		if err := l.start(); err != nil {
			return m, err
		}
	}
	wctx, unwatch := l.watch(ctx)
	defer unwatch()
	// Caught up before the kill: every span received and, with snapshots,
	// a commit past the open session naming one, as a consumer running for
	// a while has.
	if err := l.recv.WaitCount(wctx, l.sink.spans+l.dups); err != nil {
		return m, fmt.Errorf("before the kill: %w", errors.Join(err, context.Cause(wctx)))
	}
	if err := l.waitCommit(wctx, l.next); err != nil {
		return m, err
	}
	before := l.recv.Count()

	// From here on every span is kept: those of the tail, of the marker,
	// and any duplicate.
	l.sink.keep, l.sink.closed = true, map[trace.SpanID]int64{}
	kept := len(l.recv.Spans())
	l.recv.KeepSpans(true)
	defer func() { l.recv.KeepSpans(false); l.sink.keep, l.sink.closed = false, nil }()
	if err := l.produce(ctx, recoveryTail, nil); err != nil {
		return m, err
	}
	// The kill lands once the tail's first spans are exported: the
	// process is then busy with the tail, its commit behind.
	if err := l.recv.WaitCount(wctx, before+1); err != nil {
		return m, fmt.Errorf("wait for the tail's first span: %w", errors.Join(err, context.Cause(wctx)))
	}
	if err := l.kill(); err != nil {
		return m, err
	}
	c, err := l.committed(ctx)
	if err != nil {
		return m, err
	}
	m.CommittedAtKill, m.MarkAtKill, m.SnapshotAtKill = c.offset, c.meta.Mark, c.meta.Snapshot != ""
	l.markers++
	marker := "marker-" + strconv.Itoa(l.markers)
	markerEvents := []schema.Event{
		{Type: schema.SessionLogin, PlayerID: marker, EventID: marker + "-in", AuthMethod: "oauth"},
		{Type: schema.SessionDisconnect, PlayerID: marker, EventID: marker + "-out", Reason: "client_quit"},
	}
	i := 0
	if err := l.produce(ctx, len(markerEvents), func() schema.Event {
		ev := markerEvents[i]
		ev.TS = l.base + int64(float64(l.next)/l.rate*float64(time.Second))
		i++
		return ev
	}); err != nil {
		return m, err
	}
	m.ReplayedRecords = l.next - c.offset
	want := l.sink.closed
	m.ExpectedSpans = len(want)

	start := time.Now()
	if err := l.start(); err != nil {
		return m, err
	}
	rctx, unwatchRestart := l.watch(ctx)
	defer unwatchRestart()
	seen := map[trace.SpanID]int{}
	for {
		count := l.recv.Count()
		spans := l.recv.Spans()
		clear(seen)
		for _, sp := range spans[kept:] {
			seen[sp.SpanID]++
		}
		missing := 0
		for id := range want {
			if seen[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			m.RestartSeconds = time.Since(start).Seconds()
			m.CPUSeconds, m.PeakRSSBytes = childUsage(l.child.cmd.Process.Pid)
			break
		}
		if err := l.recv.WaitCount(rctx, count+1); err != nil {
			m.Lost = missing
			return m, fmt.Errorf("after the restart: %d of %d spans of the records around the kill never arrived: %w",
				missing, len(want), errors.Join(err, context.Cause(rctx)))
		}
	}
	for id, k := range seen {
		off, ok := want[id]
		switch {
		case !ok: // a span of a record before the tail, all received before the kill
			m.Duplicates += k
			m.BelowMark += k
		case k > 1:
			m.Duplicates += k - 1
			if off < m.MarkAtKill {
				m.BelowMark += k - 1
			}
		}
	}
	l.dups += m.Duplicates
	return m, nil
}

// start runs sessiontrace consume on the lane.
func (l *recoveryLane) start() error {
	level := "warn"
	if l.verbose {
		level = "info"
	}
	args := []string{"consume"}
	if l.configPath != "" {
		args = append(args, "--config", l.configPath)
	}
	cmd := exec.Command(l.exe, args...)
	cmd.Env = append(os.Environ(),
		"SESSIONTRACE_KAFKA_BROKERS="+strings.Join(l.cc.Brokers, ","),
		"SESSIONTRACE_KAFKA_TOPIC="+l.topic,
		"SESSIONTRACE_KAFKA_GROUP="+l.group,
		"SESSIONTRACE_KAFKA_INSTANCE_ID="+l.cc.InstanceID,
		"SESSIONTRACE_KAFKA_START_OFFSET=earliest",
		"SESSIONTRACE_KAFKA_SNAPSHOT_INTERVAL="+l.cc.SnapshotInterval.String(),
		"SESSIONTRACE_KAFKA_EXPORT_BATCH_TIMEOUT="+l.cc.ExportBatchTimeout.String(),
		"SESSIONTRACE_KAFKA_LIFECYCLE_IDLE_TIMEOUT="+l.cc.Lifecycle.IdleTimeout.String(),
		"SESSIONTRACE_KAFKA_LIFECYCLE_MAX_DURATION="+l.cc.Lifecycle.MaxDuration.String(),
		"SESSIONTRACE_KAFKA_LIFECYCLE_REORDER_WINDOW="+l.cc.Lifecycle.ReorderWindow.String(),
		"SESSIONTRACE_OTLP_ENDPOINT="+l.recv.Addr(),
		"SESSIONTRACE_OTLP_INSECURE=true",
		"SESSIONTRACE_OTLP_TLS_ENABLED=false",
		// Both lanes' processes run at once; an empty address would
		// fall back to the default port, which only one can take.
		"SESSIONTRACE_HTTP_ADDRESS=127.0.0.1:0",
		"SESSIONTRACE_METRICS_OTLP=false",
		"SESSIONTRACE_LOG_LEVEL="+level,
	)
	cmd.Stdout, cmd.Stderr = l.stderr, l.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s consume: %w", l.exe, err)
	}
	c := &laneChild{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	l.child = c
	return nil
}

// laneChild is a running consume process, reaped by its own goroutine so
// that a process that exits on its own is noticed at once.
type laneChild struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's, once done is closed
}

// watch returns ctx, cancelled as well when the lane's process exits.
func (l *recoveryLane) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	c := l.child
	go func() {
		select {
		case <-c.done:
			cancel(fmt.Errorf("the consume process exited: %v", c.err))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// kill ends the lane's process with SIGKILL and reaps it.
func (l *recoveryLane) kill() error {
	c := l.child
	l.child = nil
	if err := c.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill -9 the consumer: %w", err)
	}
	<-c.done // "signal: killed" is the expected outcome
	return nil
}

// stop ends the lane's process with SIGTERM (drain, commit) and waits; it
// is idempotent.
func (l *recoveryLane) stop() error {
	c := l.child
	if c == nil {
		return nil
	}
	l.child = nil
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	<-c.done
	return c.err
}

// laneCommit is the group's commit of the lane's partition.
type laneCommit struct {
	offset int64
	meta   checkpoint.Metadata
}

func (l *recoveryLane) committed(ctx context.Context) (laneCommit, error) {
	resp, err := l.adm.FetchOffsets(ctx, l.group)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		// The consumer has not joined yet, so it committed nothing.
		return laneCommit{offset: -1, meta: checkpoint.Metadata{Mark: -1}}, nil
	}
	if err != nil {
		return laneCommit{}, fmt.Errorf("fetch the commit of group %s: %w", l.group, err)
	}
	o, ok := resp.Lookup(l.topic, 0)
	if !ok {
		return laneCommit{offset: -1}, nil
	}
	meta, _ := checkpoint.Parse(o.Metadata, o.At)
	return laneCommit{offset: o.At, meta: meta}, nil
}

// waitCommit waits until the commit's exported-through mark reaches end
// and, with snapshots, the committed offset does too.
func (l *recoveryLane) waitCommit(ctx context.Context, end int64) error {
	tick := time.NewTicker(recoveryPoll)
	defer tick.Stop()
	for {
		c, err := l.committed(ctx)
		if err != nil {
			return err
		}
		if c.meta.Mark >= end && (!l.snapshots || (c.offset >= end && c.meta.Snapshot != "")) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the commit to reach offset %d (at %d, mark %d): %w", end, c.offset, c.meta.Mark, ctx.Err())
		case <-tick.C:
		}
	}
}

// leaveStatic removes the bench's static member from its groups.
func leaveStatic(adm *kadm.Client, made *benchResources, log interface{ Warn(string, ...any) }) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, g := range made.groups {
		b := kadm.LeaveGroup(g).InstanceIDs(recoveryInstance)
		if _, err := adm.LeaveGroup(ctx, b); err != nil {
			log.Warn("bench: recovery: remove the static member", "group", g, "error", err)
		}
	}
}

// childUsage reads a running process's CPU time (user+system, from
// /proc/PID/stat, in clock ticks of 1/100 s) and peak RSS (VmHWM); zeros
// where /proc is not there.
func childUsage(pid int) (cpuSeconds float64, peakRSS uint64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses and may
		// hold spaces: state is field 3, utime 14, stime 15.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseUint(f[11], 10, 64)
				s, _ := strconv.ParseUint(f[12], 10, 64)
				cpuSeconds = float64(u+s) / 100
			}
		}
	}
	if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					kb, _ := strconv.ParseUint(fs[0], 10, 64)
					peakRSS = kb << 10
				}
			}
		}
	}
	return cpuSeconds, peakRSS
}

// writeRecoveryText prints the two curves side by side.
func writeRecoveryText(w io.Writer, r recoveryReport) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "sessiontrace bench --recovery: kill -9 and restart of a consume process, one session open since the\n"+
		"partition's first record; GOMAXPROCS %d, %d CPUs, %s", r.GOMAXPROCS, r.NumCPU, runtime.Version())
	if r.LoadAverage != "" {
		fmt.Fprintf(b, ", load average %s at start", r.LoadAverage)
	}
	fmt.Fprintln(b)
	if r.BrokerInProcess {
		fmt.Fprintf(b, "broker:  %s, in the bench process (the consumers are processes of their own); quote a run\n"+
			"         against a real broker (--brokers)\n", r.Broker)
	} else {
		fmt.Fprintf(b, "broker:  %s (another process)\n", r.Broker)
	}
	fmt.Fprintf(b, "OTLP:    %s\n", r.OTLP)
	fmt.Fprintf(b, "restart: from the new process's start (same group, kafka.instance_id %s) to every span of the\n"+
		"         %d records produced just before the kill and of a marker session produced after it received;\n"+
		"         CPU and peak RSS are the new process's until then. Snapshots every %s; commits every %s;\n"+
		"         export_batch_timeout %s. Event time at %.0f records/s a partition.\n\n",
		r.InstanceID, r.Tail, r.SnapshotInterval, r.CommitInterval, r.ExportBatchTimeout, r.Rate)
	fmt.Fprintf(b, "%14s %10s | %-37s | %-37s\n", "", "", "without snapshots", "with snapshots")
	fmt.Fprintf(b, "%14s %10s | %9s %7s %9s %9s | %9s %7s %9s %9s\n", "records behind", "event time",
		"restart", "CPU", "replayed", "lost/dup", "restart", "CPU", "replayed", "lost/dup")
	cell := func(m recoveryMeasure) string {
		return fmt.Sprintf("%9s %7s %9d %9s", seconds(m.RestartSeconds), seconds(m.CPUSeconds), m.ReplayedRecords,
			fmt.Sprintf("%d/%d", m.Lost, m.Duplicates))
	}
	for _, row := range r.Rows {
		fmt.Fprintf(b, "%14d %10s | %s | %s\n", row.RecordsBehind, row.EventTime, cell(row.Without), cell(row.With))
	}
	fmt.Fprintf(b, "\nreplayed: records from the commit at the kill to the partition's end; lost: spans of the records\n"+
		"around the kill never received; dup: spans received twice, every one closed by a record at or above the\n"+
		"commit's exported-through mark (within one commit interval) unless listed below.\n")
	for _, row := range r.Rows {
		for _, m := range []recoveryMeasure{row.Without, row.With} {
			if m.BelowMark > 0 {
				fmt.Fprintf(b, "  %d records: %d duplicates below the mark %d\n", row.RecordsBehind, m.BelowMark, m.MarkAtKill)
			}
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(b, "FAILED: %s\n", f)
	}
	return b.Flush()
}
