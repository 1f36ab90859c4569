package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sessiontrace/sessiontrace/schema"
)

func newMappingCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "Work with mappings of producers' own event shapes",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%w: mapping: a subcommand is required (check)", errUsage)
		},
	}
	cmd.AddCommand(newMappingCheckCmd(a))
	return cmd
}

func newMappingCheckCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check --mapping FILE SAMPLE.jsonl",
		Short: "Show the lifecycle event each sample record becomes under a mapping, or why it is rejected",
		Long: `check compiles a mapping (a YAML file holding what kafka.mapping holds, or a whole configuration
file whose kafka.mapping is read) and decodes every line of SAMPLE ("-" for stdin) with it, printing
one line per record: the lifecycle event it becomes, why it is rejected, or that its event name is
ignored. Producer text is printed escaped.

A sample line is a record value, or an envelope {"key": ..., "headers": {...}, "value": ...} for
records whose key or headers matter (binary CloudEvents); a value given as a JSON string is taken
as the raw bytes of that string. The limits are those of --config (kafka.limits). The exit status
is 1 when a record is rejected.`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	l := a.loader(cmd)
	cmd.Flags().StringVar(&file, "mapping", "", "YAML file of the mapping (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if file == "" {
			return fmt.Errorf("%w: mapping check: --mapping is required", errUsage)
		}
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		m, err := readMapping(file)
		if err != nil {
			return fmt.Errorf("%w: %w", errInvalidConfig, err)
		}
		cm, err := schema.CompileMapping(m, cfg.Kafka.Limits)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errInvalidConfig, file, err)
		}
		in := io.Reader(os.Stdin)
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		return checkMapping(cm, in, a.stdout)
	}
	return cmd
}

// readMapping reads a mapping file: the mapping's own keys at the top, or a
// configuration file with kafka.mapping. It is decoded like the
// configuration file, with unknown keys an error.
func readMapping(path string) (schema.Mapping, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return schema.Mapping{}, fmt.Errorf("read mapping: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return schema.Mapping{}, fmt.Errorf("%s: %w", path, err)
	}
	if k, ok := doc["kafka"].(map[string]any); ok {
		mv, ok := k["mapping"].(map[string]any)
		if !ok {
			return schema.Mapping{}, fmt.Errorf("%s: the configuration file has no kafka.mapping", path)
		}
		doc = mv
	}
	var m schema.Mapping
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &m, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.StringToSliceHookFunc(","),
	})
	if err != nil {
		return m, err
	}
	if err := dec.Decode(doc); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// checkMapping decodes every sample line of in with cm and reports it on
// out; it returns an error when a record was rejected.
func checkMapping(cm *schema.CompiledMapping, in io.Reader, out io.Writer) error {
	d := cm.NewDecoder()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	w := bufio.NewWriter(out)
	var n, events, rejected, ignored int
	var ev schema.Event
	var line []byte
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		rec, err := sampleRecord(raw)
		line = fmt.Appendf(line[:0], "line %d: ", n)
		switch {
		case err != nil:
			rejected++
			line = append(line, "bad sample line: "...)
			line = append(line, err.Error()...)
		default:
			err = d.DecodeRecord(&rec, &ev)
			var se *schema.Error
			switch {
			case errors.Is(err, schema.ErrIgnored):
				ignored++
				line = append(line, "ignored "...)
				line = strconv.AppendQuote(line, d.Name())
				line = append(line, " (type.ignore)"...)
			case errors.As(err, &se):
				rejected++
				line = append(line, "rejected "...)
				line = append(line, strings.TrimPrefix(se.Error(), "schema: ")...)
			case err != nil:
				rejected++
				line = append(line, "rejected "...)
				line = append(line, err.Error()...)
			default:
				events++
				line = appendEvent(line, &ev)
			}
		}
		io.WriteString(w, lineText(string(line)))
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	fmt.Fprintf(w, "%d records: %d events, %d rejected, %d ignored\n", events+rejected+ignored, events, rejected, ignored)
	if err := w.Flush(); err != nil {
		return err
	}
	if rejected > 0 {
		return fmt.Errorf("mapping check: %d of %d sample records rejected", rejected, events+rejected+ignored)
	}
	return nil
}

// sampleRecord reads one sample line: an envelope when the object's only
// members are key, headers and value (with value present), else the value.
func sampleRecord(raw []byte) (schema.Record, error) {
	var env map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &env) != nil || env["value"] == nil {
		return schema.Record{Value: raw}, nil
	}
	for k := range env {
		if k != "key" && k != "headers" && k != "value" {
			return schema.Record{Value: raw}, nil
		}
	}
	var rec schema.Record
	if k, ok := env["key"]; ok && string(k) != "null" {
		var s string
		if err := json.Unmarshal(k, &s); err != nil {
			return rec, errors.New(`"key" must be a string`)
		}
		rec.Key = []byte(s)
	}
	if h, ok := env["headers"]; ok {
		var hs map[string]string
		if err := json.Unmarshal(h, &hs); err != nil {
			return rec, errors.New(`"headers" must be an object of strings`)
		}
		for k, v := range hs {
			rec.Headers = append(rec.Headers, schema.Header{Key: k, Value: []byte(v)})
		}
	}
	v := env["value"]
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return rec, err
		}
		rec.Value = []byte(s)
	} else {
		rec.Value = v
	}
	return rec, nil
}

// appendEvent writes ev as `type field=value ...`, strings quoted.
func appendEvent(b []byte, ev *schema.Event) []byte {
	b = append(b, ev.Type.String()...)
	str := func(k, v string) {
		if v != "" {
			b = append(b, ' ')
			b = append(b, k...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, v)
		}
	}
	str("player_id", ev.PlayerID)
	str("session_id", ev.SessionID)
	b = append(b, " ts="...)
	b = time.Unix(0, ev.TS).UTC().AppendFormat(b, time.RFC3339Nano)
	str("event_id", ev.EventID)
	str("auth_method", ev.AuthMethod)
	str("client_version", ev.ClientVersion)
	str("platform", ev.Platform)
	str("game_mode", ev.GameMode)
	str("lobby_id", ev.LobbyID)
	if ev.HasWait {
		b = strconv.AppendFloat(append(b, " wait_seconds="...), ev.WaitSeconds, 'g', -1, 64)
	}
	str("reason", ev.Reason)
	str("loading_type", ev.LoadingType)
	if ev.HasAssetsLoaded {
		b = strconv.AppendInt(append(b, " assets_loaded="...), ev.AssetsLoaded, 10)
	}
	if ev.HasTotalSizeMB {
		b = strconv.AppendFloat(append(b, " total_size_mb="...), ev.TotalSizeMB, 'g', -1, 64)
	}
	str("server_id", ev.ServerID)
	str("map", ev.Map)
	str("result", ev.Result)
	if ev.HasScore {
		b = strconv.AppendInt(append(b, " score="...), ev.Score, 10)
	}
	for _, a := range ev.Attributes {
		b = append(b, " attributes."...)
		b = strconv.AppendQuote(b, a.Key)
		b = append(b, '=')
		switch a.Value.Kind {
		case schema.KindString:
			b = strconv.AppendQuote(b, a.Value.Str)
		case schema.KindInt:
			b = strconv.AppendInt(b, a.Value.Int, 10)
		case schema.KindFloat:
			b = strconv.AppendFloat(b, a.Value.Float, 'g', -1, 64)
		case schema.KindBool:
			b = strconv.AppendBool(b, a.Value.Bool)
		}
	}
	if ev.Link.IsValid() {
		b = ev.Link.AppendTraceparent(append(b, " traceparent="...))
	}
	str("traceparent_ignored", ev.LinkError)
	return b
}
