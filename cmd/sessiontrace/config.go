package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/rekey"
	"github.com/sessiontrace/sessiontrace/schema"
)

// envPrefix prefixes every environment variable that sets a configuration
// key: kafka.sasl.username is SESSIONTRACE_KAFKA_SASL_USERNAME.
const envPrefix = "SESSIONTRACE"

// Defaults of the settings this command adds to consumer.Config.
const (
	defaultHTTPAddress = "127.0.0.1:8088"
	defaultOTLPTimeout = 10 * time.Second
	defaultClientID    = "sessiontrace"
	defaultLogLevel    = "info"
	defaultLogFormat   = "text"
)

// SASL mechanisms accepted by kafka.sasl.mechanism.
const (
	saslNone        = ""
	saslPlain       = "PLAIN"
	saslSCRAMSHA256 = "SCRAM-SHA-256"
	saslSCRAMSHA512 = "SCRAM-SHA-512"
)

// errInvalidConfig is wrapped by every configuration error, so that main
// can tell a user's mistake (exit 2) from a failure at run time (exit 1).
var errInvalidConfig = errors.New("invalid configuration")

// config is everything the command line can be configured with. Its
// mapstructure keys are the YAML keys; nested keys joined with "_" and
// prefixed with SESSIONTRACE_ are the environment variables.
type config struct {
	Kafka   kafkaConfig   `mapstructure:"kafka"`
	OTLP    otlpConfig    `mapstructure:"otlp"`
	HTTP    httpConfig    `mapstructure:"http"`
	Log     logConfig     `mapstructure:"log"`
	Metrics metricsConfig `mapstructure:"metrics"`
	Rekey   rekey.Config  `mapstructure:"rekey"`
	Privacy privacyConfig `mapstructure:"privacy"`
}

// Pseudonymisation schemes accepted by privacy.player_id.
const (
	privacyNone       = ""
	privacyHMACSHA256 = "hmac-sha256"
)

// privacyConfig says whether player IDs are replaced by pseudonyms, and the
// pseudonyms' key: from the environment or a file, never from the config
// file, never logged.
type privacyConfig struct {
	PlayerID string `mapstructure:"player_id"`
	Key      secret `mapstructure:"key"`
	KeyFile  string `mapstructure:"key_file"`
}

// kafkaConfig is the consumer's own configuration plus the client's
// connection security, which the consumer takes as franz-go options.
type kafkaConfig struct {
	consumer.Config `mapstructure:",squash"`
	ClientID        string     `mapstructure:"client_id"`
	TLS             tlsConfig  `mapstructure:"tls"`
	SASL            saslConfig `mapstructure:"sasl"`
}

// tlsConfig configures a TLS client. Files are PEM.
type tlsConfig struct {
	Enabled            bool   `mapstructure:"enabled"`
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// saslConfig configures SASL authentication to Kafka.
type saslConfig struct {
	Mechanism    string `mapstructure:"mechanism"`
	Username     string `mapstructure:"username"`
	Password     secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
}

// otlpConfig configures the OTLP/gRPC span exporter. Empty values leave the
// exporter to the standard OTEL_EXPORTER_OTLP_* variables and its defaults.
type otlpConfig struct {
	Endpoint    string        `mapstructure:"endpoint"`
	Insecure    bool          `mapstructure:"insecure"`
	TLS         tlsConfig     `mapstructure:"tls"`
	HeadersFile string        `mapstructure:"headers_file"`
	Compression string        `mapstructure:"compression"`
	Timeout     time.Duration `mapstructure:"timeout"`
}

// httpConfig configures the health and metrics endpoint.
type httpConfig struct {
	Address string `mapstructure:"address"`
}

// logConfig configures the process log on stderr.
type logConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// secret is a string that never prints: it is read from the environment or
// a file and must not end up in a log line or an error message.
type secret string

// String redacts the secret.
func (s secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret in %#v.
func (s secret) GoString() string { return s.String() }

// MarshalText redacts the secret wherever it is encoded as JSON or text,
// such as a config struct logged whole.
func (s secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts the secret in slog output.
func (s secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// defaultConfig returns the configuration used when nothing is set.
func defaultConfig() config {
	return config{
		Kafka:   kafkaConfig{Config: consumer.DefaultConfig(), ClientID: defaultClientID},
		OTLP:    otlpConfig{Timeout: defaultOTLPTimeout},
		HTTP:    httpConfig{Address: defaultHTTPAddress},
		Log:     logConfig{Level: defaultLogLevel, Format: defaultLogFormat},
		Metrics: defaultMetricsConfig(),
		Rekey:   rekey.DefaultConfig(),
	}
}

// secretKeys may only come from the environment, never from the config file
// or a flag.
var secretKeys = []string{"kafka.sasl.password", "privacy.key"}

// loader turns a config file, SESSIONTRACE_* variables and flags into a
// config, in that order of increasing precedence.
type loader struct {
	v *viper.Viper
}

func newLoader() *loader {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// AutomaticEnv only answers for keys viper knows, so every key gets its
	// default registered; that also makes Unmarshal see all of them.
	for _, k := range configKeys(defaultConfig()) {
		v.SetDefault(k.Key, k.Default)
	}
	return &loader{v: v}
}

// bind makes flag set key when the user gives it on the command line.
func (l *loader) bind(key string, f *pflag.Flag) {
	if f == nil {
		panic("bind: no flag for " + key) // a programming error caught by every test
	}
	if err := l.v.BindPFlag(key, f); err != nil {
		panic(err)
	}
}

// load reads the config file (when path is not empty), applies the
// environment and bound flags, and validates the result.
func (l *loader) load(path string) (config, error) {
	if path != "" {
		l.v.SetConfigFile(path)
		l.v.SetConfigType("yaml")
		if err := l.v.ReadInConfig(); err != nil {
			return config{}, fmt.Errorf("%w: read %s: %w", errInvalidConfig, path, err)
		}
		for _, k := range secretKeys {
			if l.v.InConfig(k) {
				return config{}, fmt.Errorf("%w: %s: secrets are not read from the config file; set %s or %s_file",
					errInvalidConfig, k, envName(k), k)
			}
		}
	}
	var cfg config
	err := l.v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true // a misspelt key in the file is an error, not a silent default
	})
	if err != nil {
		return config{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	if err := cfg.resolveSecrets(); err != nil {
		return config{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	return cfg, nil
}

// resolveSecrets reads secrets kept in files.
func (c *config) resolveSecrets() error {
	s := &c.Kafka.SASL
	if s.PasswordFile != "" {
		if s.Password != "" {
			return fmt.Errorf("kafka.sasl.password_file: set either it or %s, not both", envName("kafka.sasl.password"))
		}
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		s.Password = secret(strings.TrimRight(string(b), "\r\n"))
	}
	p := &c.Privacy
	if p.KeyFile != "" {
		if p.Key != "" {
			return fmt.Errorf("privacy.key_file: set either it or %s, not both", envName("privacy.key"))
		}
		b, err := os.ReadFile(p.KeyFile)
		if err != nil {
			return fmt.Errorf("privacy.key_file: %w", err)
		}
		p.Key = secret(strings.TrimRight(string(b), "\r\n"))
	}
	switch p.PlayerID {
	case privacyNone:
		if p.Key != "" {
			return errors.New("privacy.key: set, but privacy.player_id is empty; set it to hmac-sha256")
		}
	case privacyHMACSHA256:
		if p.Key == "" {
			return fmt.Errorf("privacy.player_id hmac-sha256: needs a key; set %s or privacy.key_file", envName("privacy.key"))
		}
		k, err := schema.NewPseudonymKey([]byte(p.Key))
		if err != nil {
			return fmt.Errorf("privacy.key: %w", err)
		}
		c.Kafka.Pseudonyms = k
	default:
		return fmt.Errorf("privacy.player_id %q (want one of: %q, %s)", p.PlayerID, privacyNone, privacyHMACSHA256)
	}
	return nil
}

// validateConsume checks everything consume needs.
func (c config) validateConsume() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: kafka.%w", errInvalidConfig, err)
	}
	// kafka.topics replaces kafka.topic, so a topic named only there would
	// silently not be consumed. The default cannot be told from a topic
	// left unset and is let through.
	k := c.Kafka.Config
	if len(k.Topics) > 0 && k.Topic != consumer.DefaultTopic && !slices.Contains(k.Topics, k.Topic) {
		return fmt.Errorf("%w: kafka.topic %q: not one of kafka.topics %v, which replaces it; list it there or leave kafka.topic unset",
			errInvalidConfig, k.Topic, k.Topics)
	}
	return c.validateClients()
}

// sources are the topics consume reads: kafka.topics when set, else
// kafka.topic.
func (k kafkaConfig) sources() []string {
	if len(k.Topics) > 0 {
		return k.Topics
	}
	return []string{k.Topic}
}

// validatePipeline checks what replay needs: no group, and brokers only when
// reading a topic.
func (c config) validatePipeline() error {
	if err := c.Kafka.ValidatePipeline(); err != nil {
		return fmt.Errorf("%w: kafka.%w", errInvalidConfig, err)
	}
	return c.validateClients()
}

// validateClients checks the settings of the Kafka and OTLP clients and of
// the process itself.
func (c config) validateClients() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errInvalidConfig}, args...)...)
	}
	switch c.Kafka.SASL.Mechanism {
	case saslNone:
	case saslPlain, saslSCRAMSHA256, saslSCRAMSHA512:
		if c.Kafka.SASL.Username == "" {
			return fail("kafka.sasl.username: required with kafka.sasl.mechanism %s", c.Kafka.SASL.Mechanism)
		}
		if c.Kafka.SASL.Password == "" {
			return fail("kafka.sasl.password: required with kafka.sasl.mechanism %s; set %s or kafka.sasl.password_file",
				c.Kafka.SASL.Mechanism, envName("kafka.sasl.password"))
		}
	default:
		return fail("kafka.sasl.mechanism %q (want one of: %q, %s, %s, %s)", c.Kafka.SASL.Mechanism, saslNone, saslPlain, saslSCRAMSHA256, saslSCRAMSHA512)
	}
	if err := c.Kafka.TLS.validate("kafka.tls"); err != nil {
		return fail("%w", err)
	}
	if err := c.OTLP.TLS.validate("otlp.tls"); err != nil {
		return fail("%w", err)
	}
	if err := c.Metrics.validate(); err != nil {
		return err
	}
	// Headers gRPC would refuse fail every export at run time: fail here,
	// naming the key.
	if _, err := envHeaders(); err != nil {
		return fail("%w", err)
	}
	if c.OTLP.HeadersFile != "" {
		if _, err := readHeaders(c.OTLP.HeadersFile); err != nil {
			return fail("otlp.headers_file: %w", err)
		}
	}
	if c.OTLP.Insecure && c.OTLP.TLS.Enabled {
		return fail("otlp.insecure: cannot be combined with otlp.tls.enabled")
	}
	switch c.OTLP.Compression {
	case "", "gzip", "none":
	default:
		return fail("otlp.compression %q (want one of: \"\", gzip, none)", c.OTLP.Compression)
	}
	if c.OTLP.Timeout <= 0 {
		return fail("otlp.timeout %v: must be positive", c.OTLP.Timeout)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return fail("log.level %q (want one of: debug, info, warn, error)", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		return fail("log.format %q (want one of: text, json)", c.Log.Format)
	}
	return nil
}

func (t tlsConfig) validate(prefix string) error {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify || t.ServerName != "" {
			return fmt.Errorf("%s.enabled: false, but other %s.* keys are set; set it to true", prefix, prefix)
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s.cert_file and %s.key_file: set both or neither", prefix, prefix)
	}
	return nil
}

// configKey describes one configuration key.
type configKey struct {
	Key     string
	Default any
	// Kind is the Go kind name shown in the reference ("duration",
	// "string", "[]string", "int", "bool").
	Kind string
}

// configKeys lists every key of cfg with its value in cfg, depth first in
// field order, so that the reference reads like the file.
func configKeys(cfg config) []configKey {
	var out []configKey
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			name, opts, _ := strings.Cut(tag, ",")
			fv := v.Field(i)
			if opts == "squash" {
				walk(prefix, fv)
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(key+".", fv)
				continue
			}
			out = append(out, configKey{Key: key, Default: fv.Interface(), Kind: kindName(f.Type)})
		}
	}
	walk("", reflect.ValueOf(cfg))
	return out
}

func kindName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "duration"
	case reflect.TypeFor[secret]():
		return "secret"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "[]" + kindName(t.Elem())
	case reflect.Map:
		return "map[" + kindName(t.Key()) + "]" + kindName(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Pointer:
		return "object"
	}
	return t.Kind().String()
}

// envName is the environment variable that sets key.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}
