package consumer

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/merge"
)

// mergeBatches bounds the batches one merge takes from the inbox, and so
// the runs of one merge log entry (a batch holds at most a fetch's records
// of one partition): an entry stays far below the merge topic's message
// size limit.
const mergeBatches = 4

// takeRecords takes the next records to process: the oldest batch of a
// single topic (offs nil: the offsets are the positions), or, merged, up to
// mergeBatches batches of any of the topics merged by record timestamp,
// with their positions, after appending their merge order to the merge
// log.
func (w *worker) takeRecords() ([]*kgo.Record, []int64, bool) {
	if w.mg == nil {
		recs, ok := w.take()
		return recs, nil, ok
	}
	var batches [][]*kgo.Record
	for len(batches) < mergeBatches {
		recs, ok := w.take()
		if !ok {
			break
		}
		batches = append(batches, recs)
	}
	w.mu.Lock()
	w.mg.stash(batches)
	recs, offs, skipped := w.mg.release(time.Now())
	var e merge.Entry
	idx := -1
	if !w.mg.pend.Empty() {
		e, idx = w.mg.tbl.Seal(&w.mg.pend)
	}
	w.mu.Unlock()
	if skipped > 0 {
		// Records below the merge frontier were merged already: a fetch
		// that went back after an offset reset.
		w.logs.warn("merge-skipped", "records already merged were fetched again and skipped", "records", skipped)
	}
	if idx >= 0 {
		w.logMerge(e, idx)
	}
	// Batches taken and nothing merged (the merge waits for a topic): the
	// caller comes back for more, or waits for mergeDue.
	return recs, offs, len(recs) > 0 || len(batches) > 0
}

// mergeDue returns a channel that fires when a waiting merge stops
// waiting, nil when it is not waiting.
func (w *worker) mergeDue() <-chan time.Time {
	if w.mg == nil {
		return nil
	}
	w.mu.Lock()
	at := w.mg.waitUntil()
	w.mu.Unlock()
	if at.IsZero() {
		return nil
	}
	return time.After(max(0, time.Until(at)))
}

// logMerge appends entry idx of the table to the merge log. A commit
// depends on it only once it is stored (merger.commitAt); a write that
// fails for good marks the merger broken, and the worker writes every entry
// from it on again (repairMerge) before it merges anything more.
func (w *worker) logMerge(e merge.Entry, idx int) {
	l := w.c.merge
	w.mu.Lock()
	gen := w.mg.gen
	w.mu.Unlock()
	rec := &kgo.Record{Topic: l.topic, Partition: w.partition, Value: e.Append(nil)}
	l.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		if err != nil {
			msg := err.Error()
			l.failing.Store(&msg)
			w.mg.broken.Store(true)
			signal(w.wake)
			w.logs.warn("merge-log", "merge log write failed: the partition stops merging and writes its entries again; commits stay below it meanwhile", "error", err)
			return
		}
		w.mu.Lock()
		// A copy from before the last repair is not the one a reader
		// following the frontier reaches (merge.Table.Unstored).
		if gen == w.mg.gen {
			w.mg.tbl.Stored(idx, r.Offset)
		}
		w.mu.Unlock()
		if w.flushWaiting.Load() {
			signal(w.c.commitSoon)
		}
	})
}

// repairMerge writes again, in order and under the worker's claim, every
// entry from the first the merge log did not store on, until the merge log
// stores them all, with backoff between tries. Meanwhile the worker takes no
// record, so its inbox fills and its partitions pause: a merge topic that
// refuses writes stops the partition rather than growing memory. It reports
// false when the worker was stopped first.
func (w *worker) repairMerge(ctx context.Context) bool {
	wait := w.c.cfg.RetryInitial
	for {
		w.mu.Lock()
		w.mg.gen++
		w.mg.broken.Store(false)
		entries, idxs := w.mg.tbl.Unstored()
		id := w.mg.pend.Entry.ID
		w.mu.Unlock()
		for i := range entries {
			entries[i].ID = id
			w.logMerge(entries[i], idxs[i])
		}
		fctx, cancel := w.untilQuit(ctx)
		err := w.c.merge.cl.Flush(fctx)
		cancel()
		if err != nil {
			return false
		}
		if !w.mg.broken.Load() {
			w.c.merge.failing.Store(nil)
			w.c.log.Info("merge log entries written again", "topic", w.topic, "partition", w.partition, "entries", len(entries))
			return true
		}
		select {
		case <-w.quit:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, w.c.cfg.RetryMax)
	}
}

// startMerged begins a merged partition as st says: the resume of its
// commit (w.start), its table, and the replay of the merge log's runs. It
// reports false when the worker was stopped during the replay.
func (w *worker) startMerged(ctx context.Context, st *mergeStart) bool {
	w.start()
	w.mu.Lock()
	if st.plan != nil {
		w.mg.tbl = st.plan.Table
	} else {
		w.mg.tbl = merge.NewTable(st.front)
	}
	w.mg.pend.Entry.ID = st.claim
	w.mu.Unlock()
	if st.plan == nil || len(st.plan.Runs) == 0 {
		return true
	}
	return w.replayMerged(ctx, st.plan)
}

// untilQuit returns ctx, also ended when the worker is stopped: for the
// Kafka calls a stopped worker must not wait on.
func (w *worker) untilQuit(ctx context.Context) (context.Context, context.CancelFunc) {
	qctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-w.quit:
			cancel()
		case <-qctx.Done():
		}
	}()
	return qctx, cancel
}

// replayStash bounds the records of one topic the replay holds while it
// waits for another's: that topic's fetching pauses until the replay
// needs it.
const replayStash = 1 << 14

// replayMerged processes the records the plan names, in its order, read
// with a client of its own from the plan's start: the stream the previous
// owners processed, rebuilt exactly (records below the mark silently). The
// group's fetches start where the plan ends and wait in the inbox. It
// reports false when the worker was stopped first.
func (w *worker) replayMerged(ctx context.Context, plan *merge.Plan) bool {
	started := time.Now()
	topics := w.mg.topics
	rctx, cancel := w.untilQuit(ctx)
	defer cancel()
	from := map[string]map[int32]kgo.Offset{}
	for i, t := range topics {
		from[t] = map[int32]kgo.Offset{w.partition: kgo.NewOffset().At(plan.Start[i]).WithEpoch(-1)}
	}
	opts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, w.c.kopts...)
	opts = append(opts, kgo.SeedBrokers(w.c.cfg.Brokers...), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(fetchMaxWait))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		w.c.log.Error("replay merged topics: client", "partition", w.partition, "error", err)
		return false
	}
	defer cl.Close()
	// Runs whose records retention deleted are skipped: the sources no
	// longer hold them, for any owner.
	logStart := make([]int64, len(topics))
	if starts, err := w.c.merge.adm.ListStartOffsets(rctx, topics...); err == nil {
		for i, t := range topics {
			if o, ok := starts.Lookup(t, w.partition); ok && o.Err == nil {
				logStart[i] = o.Offset
			}
		}
	}
	stash := make([][]*kgo.Record, len(topics))
	paused := make([]bool, len(topics))
	front := append([]int64(nil), plan.Start...)
	sum := merge.Sum(front)
	var n, bytes int64
	// Counted once, as the records a live merge takes are per batch.
	defer func() { w.countRecords(n, bytes) }()
	for _, run := range plan.Runs {
		t := run.Topic
		if run.Last < logStart[t] {
			continue
		}
		for done := false; !done; {
			for len(stash[t]) > 0 && !done {
				r := stash[t][0]
				if r.Offset > run.Last {
					done = true
					break
				}
				stash[t][0] = nil
				stash[t] = stash[t][1:]
				if r.Offset < run.First || r.Offset < front[t] {
					continue
				}
				if !w.roomForDeadLetters() {
					return false
				}
				pos := sum - front[t] + r.Offset
				sum += r.Offset + 1 - front[t]
				front[t] = r.Offset + 1
				w.process(ctx, r, pos)
				w.next = pos + 1
				n++
				bytes += int64(len(r.Value))
				done = r.Offset == run.Last
			}
			if done {
				break
			}
			if paused[t] {
				cl.ResumeFetchPartitions(map[string][]int32{topics[t]: {w.partition}})
				paused[t] = false
			}
			fetches := cl.PollFetches(rctx)
			if rctx.Err() != nil {
				return false
			}
			fetches.EachError(func(topic string, p int32, err error) {
				w.logs.warn("merge-replay", "fetch error while replaying the merge log", "topic", topic, "error", err)
			})
			fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
				i, ok := w.mg.index[fp.Topic]
				if !ok {
					return
				}
				stash[i] = append(stash[i], fp.Records...)
				if i != t && len(stash[i]) > replayStash && !paused[i] {
					cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {w.partition}})
					paused[i] = true
				}
			})
		}
	}
	w.c.log.Info("merged topics replayed from the merge log", "topics", topics, "partition", w.partition,
		"records", n, "runs", len(plan.Runs), "from", plan.Start, "to", plan.End, "took", time.Since(started).Round(time.Millisecond))
	return true
}
