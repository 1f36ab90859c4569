package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// Snapshots of a partition's open sessions and of the events its reorder
// window holds (package lifecycle writes and reads their bytes) go to a
// compacted topic, one record a chunk, each
// chunk small enough for the topic's max.message.bytes. A snapshot of
// source partition P taken before the record at offset O is written to the
// snapshot topic's partition P mod its partition count, under the keys
// "P/O/0", "P/O/1", ...: unique keys, so compaction never mixes two
// snapshots; the last chunk carries the header HeaderSnapshotLast. Its ref,
// which the commit metadata carries (package checkpoint), is
//
//	<snapshot partition>:<offset of the first chunk>:<chunks>:<SHA-256 hex>
//
// so a new owner fetches from there, takes the chunks with the snapshot's
// keys in order, and verifies the SHA-256 (the snapshot's last 32 bytes,
// checked again by lifecycle as it loads) before it uses a byte of it.
//
// A snapshot is written and acknowledged (acks=all, idempotent producer)
// before the ledger hears of it, so no commit ever names a snapshot Kafka
// does not hold.

// HeaderSnapshotLast marks the last chunk of a snapshot.
const HeaderSnapshotLast = "sessiontrace.snapshot.last"

// snapshotInFlight bounds the chunks of one snapshot written but not yet
// acknowledged, so a snapshot never sits in memory whole: the encoder waits
// for room.
const snapshotInFlight = 4

// snapshotStore writes and reads the snapshot topic.
type snapshotStore struct {
	cl         *kgo.Client // the producer
	adm        *kadm.Client
	brokers    []string
	kopts      []kgo.Opt
	topic      string
	partitions int32
	chunk      int // bytes of one chunk's value
}

// snapshotKey is the key prefix of the chunks of the snapshot of source
// partition p before offset.
func snapshotKey(p int32, offset int64) string { return fmt.Sprintf("%d/%d/", p, offset) }

// snapshotRef is a parsed ref.
type snapshotRef struct {
	partition int32
	first     int64
	chunks    int
	sum       [32]byte
}

func (r snapshotRef) String() string {
	return fmt.Sprintf("%d:%d:%d:%s", r.partition, r.first, r.chunks, hex.EncodeToString(r.sum[:]))
}

func parseSnapshotRef(s string) (snapshotRef, error) {
	f := strings.Split(s, ":")
	var r snapshotRef
	if len(f) != 4 {
		return r, fmt.Errorf("snapshot ref %q: want partition:offset:chunks:sha256", s)
	}
	p, err1 := strconv.ParseInt(f[0], 10, 32)
	first, err2 := strconv.ParseInt(f[1], 10, 64)
	n, err3 := strconv.Atoi(f[2])
	sum, err4 := hex.DecodeString(f[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil || p < 0 || first < 0 || n <= 0 || len(sum) != len(r.sum) {
		return r, fmt.Errorf("snapshot ref %q: %w", s, errors.Join(err, errors.New("out of range")))
	}
	r.partition, r.first, r.chunks = int32(p), first, n
	copy(r.sum[:], sum)
	return r, nil
}

// ensure makes sure the snapshot topic exists, creating it (compacted,
// with the source topic's partition count) only when a metadata request
// says it is missing, and learns its partition count.
func (s *snapshotStore) ensure(ctx context.Context, source string) error {
	topics, err := s.adm.ListTopics(ctx, s.topic, source)
	if err != nil {
		return fmt.Errorf("describe snapshot topic %q: %w", s.topic, err)
	}
	if t, ok := topics[s.topic]; ok && t.Err == nil && len(t.Partitions) > 0 {
		s.partitions = int32(len(t.Partitions))
		return nil
	} else if ok && t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) && !errors.Is(t.Err, kerr.UnknownTopicID) {
		return fmt.Errorf("describe snapshot topic %q: %w", s.topic, t.Err)
	}
	partitions := int32(1)
	if src, ok := topics[source]; ok && src.Err == nil && len(src.Partitions) > 0 {
		partitions = int32(len(src.Partitions))
	}
	compact := "compact"
	resp, err := s.adm.CreateTopic(ctx, partitions, -1, map[string]*string{"cleanup.policy": &compact}, s.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create snapshot topic %q with %d partitions: %w", s.topic, partitions, err)
	}
	s.partitions = partitions
	return nil
}

// snapshotter is what a snapshot is written of: a lifecycle.Machine, or a
// partition (its machine and reorder window).
type snapshotter interface {
	WriteSnapshot(io.Writer) (int64, [sha256.Size]byte, error)
	Open() int
}

// write writes a snapshot of m, the state of source partition p before the
// record at offset, and returns its ref once Kafka acknowledged every
// chunk. m must not change meanwhile: the caller owns it.
func (s *snapshotStore) write(ctx context.Context, m snapshotter, p int32, offset int64) (snapshotRef, lifecycle.SnapshotInfo, error) {
	cw := &chunkWriter{s: s, ctx: ctx, key: snapshotKey(p, offset), ref: snapshotRef{partition: p % s.partitions, first: -1}}
	cw.cond = sync.NewCond(&cw.mu)
	_, sum, err := m.WriteSnapshot(cw)
	if err == nil {
		err = cw.flush(true)
	}
	cw.mu.Lock()
	for cw.inFlight > 0 {
		cw.cond.Wait()
	}
	err = errors.Join(err, cw.err)
	ref := cw.ref
	cw.mu.Unlock()
	if err != nil {
		return snapshotRef{}, lifecycle.SnapshotInfo{}, fmt.Errorf("write snapshot of partition %d at offset %d to %q: %w", p, offset, s.topic, err)
	}
	ref.sum = sum
	return ref, lifecycle.SnapshotInfo{SHA256: sum, Sessions: m.Open()}, nil
}

// chunkWriter cuts the snapshot stream into chunk records, at most
// snapshotInFlight unacknowledged at a time.
type chunkWriter struct {
	s   *snapshotStore
	ctx context.Context
	key string
	buf []byte

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int
	err      error
	ref      snapshotRef // partition, first offset and chunk count so far
}

func (w *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), w.s.chunk-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
		if len(w.buf) == w.s.chunk {
			if err := w.flush(false); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// flush produces the buffered chunk (the last one when last is set, even if
// empty) after waiting for room.
func (w *chunkWriter) flush(last bool) error {
	w.mu.Lock()
	for w.inFlight >= snapshotInFlight && w.err == nil {
		w.cond.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	index := w.ref.chunks
	w.ref.chunks++
	w.inFlight++
	w.mu.Unlock()
	rec := &kgo.Record{
		Topic:     w.s.topic,
		Partition: w.ref.partition,
		Key:       []byte(w.key + strconv.Itoa(index)),
		Value:     w.buf,
	}
	if last {
		rec.Headers = []kgo.RecordHeader{{Key: HeaderSnapshotLast, Value: []byte(strconv.Itoa(index + 1))}}
	}
	w.buf = make([]byte, 0, w.s.chunk) // the record holds the old buffer until acknowledged
	w.s.cl.Produce(w.ctx, rec, func(r *kgo.Record, err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.inFlight--
		switch {
		case err != nil:
			w.err = errors.Join(w.err, fmt.Errorf("chunk %d: %w", index, err))
		case index == 0:
			w.ref.first = r.Offset
		}
		w.cond.Broadcast()
	})
	return nil
}

// errSnapshotMissing is a snapshot whose chunks the topic does not hold (any
// more): deleted, or never written by the ref's writer.
var errSnapshotMissing = errors.New("snapshot missing")

// read fetches the snapshot ref names, of source partition p before offset,
// and verifies it (lifecycle.InspectSnapshot: SHA-256 and format): the bytes
// it returns are safe to load.
func (s *snapshotStore) read(ctx context.Context, ref snapshotRef, p int32, offset int64) ([]byte, lifecycle.SnapshotInfo, error) {
	var info lifecycle.SnapshotInfo
	opts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, s.kopts...)
	opts = append(opts, kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {ref.partition: kgo.NewOffset().At(ref.first)}}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, info, fmt.Errorf("read snapshot %s: %w", ref, err)
	}
	defer cl.Close()
	key := snapshotKey(p, offset)
	var buf bytes.Buffer
	next := 0
	for next < ref.chunks {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, info, fmt.Errorf("read snapshot %s: %d of %d chunks: %w", ref, next, ref.chunks, errors.Join(err, errSnapshotMissing))
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			if errors.Is(ferr, kerr.OffsetOutOfRange) {
				return nil, info, fmt.Errorf("read snapshot %s: %w: %w", ref, errSnapshotMissing, ferr)
			}
			return nil, info, fmt.Errorf("read snapshot %s: %w", ref, ferr)
		}
		done := false
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if string(r.Key) != key+strconv.Itoa(next) {
					continue // another snapshot's chunk, or a duplicate
				}
				buf.Write(r.Value)
				next++
				if next == ref.chunks {
					done = true
					return
				}
			}
			if !done && fp.HighWatermark > 0 && len(fp.Records) > 0 && fp.Records[len(fp.Records)-1].Offset+1 >= fp.HighWatermark {
				done = true // the topic holds no more
			}
		})
		if done {
			break
		}
	}
	if next < ref.chunks {
		return nil, info, fmt.Errorf("read snapshot %s: %d of %d chunks: %w", ref, next, ref.chunks, errSnapshotMissing)
	}
	b := buf.Bytes()
	info, err = lifecycle.InspectSnapshot(bytes.NewReader(b))
	if err == nil && info.SHA256 != ref.sum {
		err = fmt.Errorf("%w: SHA-256 %x, the commit names %x", lifecycle.ErrSnapshotCorrupt, info.SHA256, ref.sum)
	}
	if err != nil {
		return nil, info, fmt.Errorf("read snapshot %s: %w", ref, err)
	}
	return b, info, nil
}

// snapshotPoint is where the ledger may commit at with a snapshot.
func snapshotPoint(at checkpoint.Point, ref snapshotRef) checkpoint.Snapshot {
	return checkpoint.Snapshot{Point: at, Ref: ref.String()}
}

// CommittedSnapshot is what a group's commit of a partition says about its
// snapshot, as ReadCommittedSnapshot found it.
type CommittedSnapshot struct {
	Partition int32
	Committed int64  // the committed offset, -1 when none
	Metadata  string // the commit's metadata
	Ref       string // the snapshot it names, "" when none
	Info      lifecycle.SnapshotInfo
	Data      []byte // the verified snapshot
}

// ReadCommittedSnapshot reads the commit of cfg.Group on the partition of
// cfg.Topic (the first of cfg.Topics, whose commits all carry the merged
// stream's metadata) and the snapshot it names from the snapshot topic, verified
// (SHA-256 and format), through a client with opts (TLS, SASL...). A commit
// that names no snapshot returns with Ref "" and no error.
func ReadCommittedSnapshot(ctx context.Context, cfg Config, partition int32, opts ...kgo.Opt) (CommittedSnapshot, error) {
	out := CommittedSnapshot{Partition: partition, Committed: -1}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.SeedBrokers(cfg.Brokers...))...)
	if err != nil {
		return out, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.FetchOffsets(ctx, cfg.Group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return out, fmt.Errorf("fetch the commits of group %q: %w", cfg.Group, err)
	}
	o, ok := resp.Lookup(cfg.primary(), partition)
	if !ok {
		return out, fmt.Errorf("group %q has no commit for %s/%d", cfg.Group, cfg.primary(), partition)
	}
	out.Committed, out.Metadata = o.At, o.Metadata
	at := o.At
	meta, ok := checkpoint.Parse(o.Metadata, o.At)
	if cfg.merged() {
		// Co-partitioned topics: the snapshot is of the merged stream, at
		// the committed position.
		var mm mergeMeta
		mm, meta, ok = parseMerged(o.Metadata)
		at = mm.position
	}
	if !ok || meta.Snapshot == "" {
		return out, nil
	}
	out.Ref = meta.Snapshot
	ref, err := parseSnapshotRef(meta.Snapshot)
	if err != nil {
		return out, err
	}
	s := &snapshotStore{brokers: cfg.Brokers, kopts: opts, topic: cfg.snapshotTopic()}
	out.Data, out.Info, err = s.read(ctx, ref, partition, at)
	return out, err
}
