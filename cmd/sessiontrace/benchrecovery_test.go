package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// TestBenchRecoveryUsageErrors checks that bad --recovery flags, and flags
// of the other modes given with it, exit 2 naming the flag.
func TestBenchRecoveryUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"amount not above the tail", []string{"--recovery", "--recovery-records", "1000"}, "--recovery-records"},
		{"zero amount", []string{"--recovery", "--recovery-records", "5000,0"}, "--recovery-records"},
		{"amount too large", []string{"--recovery", "--recovery-records", "1000000000"}, "--recovery-records"},
		{"amount not a number", []string{"--recovery", "--recovery-records", "lots"}, "--recovery-records"},
		{"no amounts", []string{"--recovery", "--recovery-records", ""}, "--recovery-records"},
		{"zero rate", []string{"--recovery", "--recovery-rate", "0"}, "--recovery-rate"},
		{"negative rate", []string{"--recovery", "--recovery-rate", "-5"}, "--recovery-rate"},
		{"rate spanning over a day", []string{"--recovery", "--recovery-records", "100000", "--recovery-rate", "1"}, "--recovery-rate"},
		{"records without recovery", []string{"--recovery-records", "5000"}, "--recovery-records needs --recovery"},
		{"rate without recovery", []string{"--recovery-rate", "10"}, "--recovery-rate needs --recovery"},
		{"events with recovery", []string{"--recovery", "--events", "10"}, "--events does not apply"},
		{"endpoint with recovery", []string{"--recovery", "--otlp-endpoint", "127.0.0.1:4317"}, "--otlp-endpoint does not apply"},
		{"open sessions with recovery", []string{"--recovery", "--open-sessions", "10"}, "--open-sessions does not apply"},
		{"partitions with recovery", []string{"--recovery", "--partitions", "2"}, "--partitions does not apply"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"bench"}, c.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "sessiontrace: ") || !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr does not name %q:\n%s", c.want, r.stderr)
			}
		})
	}
}

// TestBenchRecovery runs a small recovery bench on each backend: two
// amounts of records, each a kill -9 and restart of a consume process per
// lane. Times are not asserted; what is: no span lost, every duplicate at or
// above the commit's mark, the commit without snapshots pinned at the open
// session's login (a restart replays the whole partition), and with
// snapshots past it, naming one (a restart replays at most the records
// around the kill).
func TestBenchRecovery(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		r := runCLI(t, nil, "bench", "--recovery", "--recovery-records", "3000,6000", "--json", "--timeout", "80s",
			"--brokers", strings.Join(brokers, ","))
		mustSucceed(t, r, "bench --recovery")
		var rep recoveryReport
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("bench --recovery --json: %v\n%s", err, r.stdout)
		}
		if rep.BrokerInProcess || len(rep.Rows) != 2 || len(rep.Failures) != 0 || rep.Tail != recoveryTail {
			t.Fatalf("report: %+v", rep)
		}
		for i, row := range rep.Rows {
			if want := []int{3000, 6000}[i]; row.RecordsBehind != want {
				t.Errorf("row %d: %d records behind, want %d", i, row.RecordsBehind, want)
			}
			for _, m := range []recoveryMeasure{row.Without, row.With} {
				if m.Lost != 0 || m.BelowMark != 0 || m.ExpectedSpans == 0 || m.RestartSeconds <= 0 {
					t.Errorf("%d records: %+v", row.RecordsBehind, m)
				}
			}
			if w := row.Without; w.SnapshotAtKill || w.CommittedAtKill != 0 || w.ReplayedRecords < int64(row.RecordsBehind) {
				t.Errorf("%d records without snapshots: commit at the kill %d (snapshot %t), %d records replayed; want the open session's login, all of them",
					row.RecordsBehind, w.CommittedAtKill, w.SnapshotAtKill, w.ReplayedRecords)
			}
			if w := row.With; !w.SnapshotAtKill || w.ReplayedRecords > recoveryTail+2 {
				t.Errorf("%d records with snapshots: commit at the kill %d (snapshot %t), %d records replayed; want a snapshot's, at most the %d around the kill",
					row.RecordsBehind, w.CommittedAtKill, w.SnapshotAtKill, w.ReplayedRecords, recoveryTail+2)
			}
		}
	})
}

// TestBenchRecoveryText checks the table names both curves and every
// column, on the embedded broker.
func TestBenchRecoveryText(t *testing.T) {
	r := runCLI(t, nil, "bench", "--recovery", "--recovery-records", "2500", "--timeout", "80s")
	mustSucceed(t, r, "bench --recovery")
	for _, want := range []string{"embedded kfake", "without snapshots", "with snapshots", "records behind", "event time",
		"restart", "CPU", "replayed", "lost/dup", "kill -9", "2500 "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}
