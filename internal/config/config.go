// Package config turns the process environment into a validated Config, so
// that a bad deployment fails at start with one line naming the variable,
// instead of misbehaving later.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/retry"
)

// Config holds every setting the three programs read. Field tags name the
// environment variable, its default and, in `accepts`, the sentence an
// operator sees when the value is rejected.
type Config struct {
	AppName           string        `env:"APP_NAME" envDefault:"Messaging Server" accepts:"any text"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"INFO" accepts:"one of DEBUG, INFO, WARN, ERROR"`
	LogFormat         string        `env:"LOG_FORMAT" envDefault:"text" accepts:"text or json"`
	MessageFetchLimit int           `env:"MESSAGE_FETCH_LIMIT" envDefault:"2" accepts:"a whole number from 1 to 100000"`
	CronInterval      time.Duration `env:"CRON_INTERVAL" envDefault:"120" accepts:"whole seconds or a Go duration, from 1s to 24h, in whole seconds"`
	MaxConcurrentJobs int           `env:"MAX_CONCURRENT_JOBS" envDefault:"5" accepts:"a whole number from 1 to 1000"`
	ServerGracePeriod time.Duration `env:"SERVER_GRACE_PERIOD" envDefault:"30" accepts:"whole seconds or a Go duration, from 1s to 1h, in whole seconds"`
	// MaxAttempts is how many calls a message gets before it fails. Unset,
	// it is the retry schedule's length + 1 (so every step is used): the
	// empty envDefault leaves it 0 for Load to fill in, and still marks an
	// empty value as an error.
	MaxAttempts int `env:"MAX_ATTEMPTS" envDefault:"" accepts:"a whole number from 1 to 100"`

	// RetrySchedule is the delay before each retry, as the operator wrote
	// it; Retry returns the parsed form.
	RetrySchedule string `env:"RETRY_SCHEDULE" envDefault:"5s,30s,2m,10m,30m,1h,2h,4h,8h,9h" accepts:"comma-separated steps, each whole seconds or a Go duration, above 0 and at most 168h, 1 to 99 of them"`

	// The circuit breaker shared by every worker: it opens when,
	// within BreakerWindow, at least BreakerMinCalls calls were made and at
	// least BreakerFailureRate of them failed retryably; it probes after
	// BreakerCooldown.
	BreakerWindow      time.Duration `env:"BREAKER_WINDOW" envDefault:"30s" accepts:"whole seconds or a Go duration, from 1s to 1h"`
	BreakerMinCalls    int           `env:"BREAKER_MIN_CALLS" envDefault:"20" accepts:"a whole number from 1 to 100000"`
	BreakerFailureRate float64       `env:"BREAKER_FAILURE_RATE" envDefault:"0.5" accepts:"a number above 0 and at most 1"`
	BreakerCooldown    time.Duration `env:"BREAKER_COOLDOWN" envDefault:"30s" accepts:"whole seconds or a Go duration, from 1s to 24h"`

	WebhookURL        string        `env:"WEBHOOK_URL" secret:"true" accepts:"an absolute http or https URL (required unless PROVIDERS is set)"`
	WebhookTimeout    time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10" accepts:"whole seconds or a Go duration, from 1s to 5m, in whole seconds"`
	WebhookAuthHeader string        `env:"WEBHOOK_AUTH_HEADER" envDefault:"x-ins-auth-key" accepts:"an HTTP header name"`
	WebhookAuthKey    string        `env:"WEBHOOK_AUTH_KEY" secret:"true" accepts:"any text; the header is sent only when set"`
	// WebhookSecret, when set, signs every call the Standard Webhooks way
	// (webhook-id, webhook-timestamp, webhook-signature headers).
	WebhookSecret string `env:"WEBHOOK_SECRET" secret:"true" accepts:"whsec_ followed by base64 (Standard Webhooks)"`

	// Providers names the providers in order of preference; unset, the
	// one provider "default" is built from WEBHOOK_*. Each name reads its
	// PROVIDER_<NAME>_* variables (providers.go). Routes maps number
	// prefixes to chains of them. ProviderList and RouteTable are what
	// Load built from them.
	Providers    string     `env:"PROVIDERS" accepts:"comma-separated provider names, each [a-z][a-z0-9_]{0,31}, no repeats, at most 16"`
	Routes       string     `env:"ROUTES" accepts:"semicolon-separated <prefix>=<name>[,<name>...] rules, a prefix being + and 1 to 6 digits or *"`
	ProviderList []Provider `env:"-"`
	RouteTable   []Route    `env:"-"`

	RedisHost     string        `env:"REDIS_HOST" envDefault:"localhost" accepts:"a host name or address"`
	RedisPort     int           `env:"REDIS_PORT" envDefault:"6379" accepts:"a port from 1 to 65535"`
	RedisDB       int           `env:"REDIS_DB" envDefault:"0" accepts:"a database index from 0 to 15"`
	RedisPassword string        `env:"REDIS_PASSWORD" secret:"true" accepts:"any text"`
	RedisTTL      time.Duration `env:"REDIS_TTL" envDefault:"3600" accepts:"whole seconds or a Go duration, from 1s to 8760h (365 days), in whole seconds"`

	// RedisSentinelAddrs, when set, selects Redis Sentinel: the programs ask
	// these sentinels for the current master of RedisSentinelMaster, and
	// REDIS_HOST and REDIS_PORT are not used.
	RedisSentinelAddrs    []string `env:"REDIS_SENTINEL_ADDRS" accepts:"comma-separated host:port pairs, and not together with REDIS_CLUSTER_ADDRS"`
	RedisSentinelMaster   string   `env:"REDIS_SENTINEL_MASTER" accepts:"the master name the sentinels monitor (required with REDIS_SENTINEL_ADDRS)"`
	RedisSentinelPassword string   `env:"REDIS_SENTINEL_PASSWORD" secret:"true" accepts:"any text: the sentinels' own password"`
	// RedisClusterAddrs, when set, selects Redis Cluster (database 0 only);
	// any of the nodes is enough to discover the others.
	RedisClusterAddrs []string `env:"REDIS_CLUSTER_ADDRS" accepts:"comma-separated host:port pairs, and not together with REDIS_SENTINEL_ADDRS"`
	// RedisTLS turns on TLS to every Redis node (and sentinel); RedisTLSCA
	// names a PEM file of the CA that signed their certificates when it is
	// not in the system's pool.
	RedisTLS   bool   `env:"REDIS_TLS" envDefault:"false" accepts:"true or false"`
	RedisTLSCA string `env:"REDIS_TLS_CA" accepts:"a readable PEM file of CA certificates (used with REDIS_TLS=true)"`
	// RedisTLSCAPEM is the content of RedisTLSCA, read and checked by Load.
	RedisTLSCAPEM []byte `env:"-"`

	PostgresURI string `env:"POSTGRES_URI" secret:"true" envDefault:"postgres://postgres@localhost:5432/postgres?sslmode=disable" accepts:"a postgres:// or postgresql:// URI"`
	// PostgresMigrateURI, when set, is the direct (unpooled) connection the
	// migrations run on, so that their session advisory lock holds when
	// POSTGRES_URI points at PgBouncer in transaction pooling mode.
	PostgresMigrateURI string `env:"POSTGRES_MIGRATE_URI" secret:"true" accepts:"a postgres:// or postgresql:// URI (a direct connection, not through a pooler)"`

	HTTPPort int `env:"HTTP_PORT" envDefault:"8080" accepts:"a port from 1 to 65535"`
	// MetricsPort is where a worker serves /metrics (it has no HTTP API);
	// 0 turns it off.
	MetricsPort int `env:"METRICS_PORT" envDefault:"9090" accepts:"a port from 0 to 65535 (0 turns it off)"`
	// MetricsPortSet tells whether METRICS_PORT was set explicitly: a port
	// the operator chose must be bound or the worker stops, while the default
	// moves on to the next free port so that several workers share a host.
	MetricsPortSet bool `env:"-"`

	// APIKey, when set, is the bearer token every mutating API request must
	// carry (and that unlocks write access to /monitoring). Never logged.
	APIKey string `env:"API_KEY" secret:"true" accepts:"any text; when set, every /api/v1 request needs Authorization: Bearer <key> or a console session"`
	// APIReadKey, when set (only together with API_KEY, and different
	// from it), is a second bearer token that may only read /api/v1 (GET
	// and HEAD), for dashboards and support tools. Never logged.
	APIReadKey string `env:"API_READ_KEY" secret:"true" accepts:"any text different from API_KEY, and only when API_KEY is set"`
	// MaxContentLength bounds a message's content in characters (runes), so
	// that what the API accepts always fits the VARCHAR(255) column and the
	// provider's limit.
	MaxContentLength int `env:"MAX_CONTENT_LENGTH" envDefault:"160" accepts:"a whole number from 1 to 255"`
	// RateLimit is how many API requests one client IP may make per minute;
	// 0 turns the limit off.
	RateLimit int `env:"RATE_LIMIT" envDefault:"600" accepts:"a whole number from 0 to 1000000 (0 turns it off)"`
	// SessionTTL is how long a console sign-in lasts.
	SessionTTL time.Duration `env:"SESSION_TTL" envDefault:"43200" accepts:"whole seconds or a Go duration, from 1m to 720h (30 days), in whole seconds"`
	// TrustedProxies are the addresses (IPs or CIDRs) whose
	// X-Forwarded-Proto and X-Forwarded-Host the api believes; from
	// anyone else those headers are ignored.
	TrustedProxies []string `env:"TRUSTED_PROXIES" accepts:"comma-separated IP addresses or CIDR ranges"`

	// DefaultValidityPeriod sets expires_at on a created message that
	// gives no validity_period; 0 means such messages never expire.
	DefaultValidityPeriod time.Duration `env:"DEFAULT_VALIDITY_PERIOD" envDefault:"0" accepts:"whole seconds or a Go duration, from 0 to 720h (30 days), in whole seconds (0 means no expiry)"`

	// Retention. RetentionPeriod is how long a message in a final status
	// is kept after it became final (0: forever); the purge runs every
	// RetentionInterval, deleting at most RetentionBatch rows per
	// statement.
	RetentionPeriod   Days          `env:"RETENTION_PERIOD" envDefault:"0" accepts:"0 (keep forever), whole seconds, a Go duration or whole days with a d suffix (30d), at most 36500d"`
	RetentionInterval time.Duration `env:"RETENTION_INTERVAL" envDefault:"10m" accepts:"whole seconds or a Go duration, from 1s to 24h"`
	RetentionBatch    int           `env:"RETENTION_BATCH" envDefault:"1000" accepts:"a whole number from 1 to 100000"`
	// SMS rules. AllowedCountries are the ISO 3166 alpha-2 regions
	// messages may go to, by the phone library's region lookup; empty
	// allows every country. MaxSegments is the most SMS segments a created
	// message's content may take.
	AllowedCountries []string `env:"ALLOWED_COUNTRIES" accepts:"comma-separated ISO 3166 alpha-2 country codes the phone library knows, e.g. US,GB (unset: every country)"`
	MaxSegments      int      `env:"MAX_SEGMENTS" envDefault:"10" accepts:"a whole number from 1 to 255"`

	// Tracing, by the OpenTelemetry variables: OTLPEndpoint turns the
	// exporter on, over OTLPProtocol; unset, spans are made (so the W3C
	// context travels to the webhook) and never exported. The exporter
	// itself reads the other OTEL_EXPORTER_OTLP_* variables (headers,
	// timeout, certificates, compression).
	OTLPEndpoint       string  `env:"OTEL_EXPORTER_OTLP_ENDPOINT" accepts:"an absolute http or https URL of an OTLP collector (unset: no exporter)"`
	OTLPProtocol       string  `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf" accepts:"grpc or http/protobuf"`
	ServiceName        string  `env:"OTEL_SERVICE_NAME" accepts:"any text (unset: messaging-<program>)"`
	TracesSampler      string  `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on" accepts:"one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"`
	TracesSamplerArg   float64 `env:"OTEL_TRACES_SAMPLER_ARG" envDefault:"1" accepts:"a number from 0 to 1 (the ratio of the traceidratio samplers)"`
	ResourceAttributes string  `env:"OTEL_RESOURCE_ATTRIBUTES" accepts:"comma-separated key=value pairs, values percent-encoded"`

	// Queue is the asynq queue the scheduler fills and the workers drain.
	// Tests give each run its own so that they share one Redis safely.
	Queue string `env:"QUEUE_NAME" envDefault:"messages" accepts:"letters, digits, '-' or '_'"`

	// Status callbacks: every change of a message's status is recorded as
	// an event; the workers POST it to the message's status_callback or
	// else to StatusCallbackURL (unset: recorded and listed, not sent).
	StatusCallbackURL    string `env:"STATUS_CALLBACK_URL" secret:"true" accepts:"an absolute http or https URL (unset: events are recorded, not sent)"`
	StatusCallbackSecret string `env:"STATUS_CALLBACK_SECRET" secret:"true" accepts:"whsec_ followed by base64 (Standard Webhooks)"`
	// StatusCallbackAllowedHosts are the hosts a message's status_callback
	// may name; unset: the host of StatusCallbackURL only.
	StatusCallbackAllowedHosts  string `env:"STATUS_CALLBACK_ALLOWED_HOSTS" accepts:"comma-separated host names or IP addresses"`
	StatusCallbackRetrySchedule string `env:"STATUS_CALLBACK_RETRY_SCHEDULE" envDefault:"1s,10s,30s,90s,5m,30m,1h,2h,4h,8h,9h" accepts:"comma-separated steps, each whole seconds or a Go duration, above 0 and at most 168h, 1 to 99 of them"`
	StatusCallbackConcurrency   int    `env:"STATUS_CALLBACK_CONCURRENCY" envDefault:"8" accepts:"a whole number from 1 to 1000"`
}

// fieldError builds the Error for field f holding value, hiding values of
// fields tagged secret (URLs and keys carry credentials).
func fieldError(f reflect.StructField, value string) *Error {
	if f.Tag.Get("secret") == "true" && value != "" {
		value = "(hidden)"
	}
	return &Error{Var: f.Tag.Get("env"), Value: value, Accepts: f.Tag.Get("accepts")}
}

// Error reports one rejected variable. Its text is meant to be the single
// line a program prints before it exits.
type Error struct {
	Var     string
	Value   string
	Accepts string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config: %s is not set or empty: want %s", e.Var, e.Accepts)
	}
	return fmt.Sprintf("config: %s=%q is invalid: want %s", e.Var, e.Value, e.Accepts)
}

// Load reads the configuration from environ (os.Environ() form) and validates
// it. Taking the environment as an argument keeps os.Getenv out of the rest of
// the code and makes every rule testable.
func Load(environ []string) (Config, error) {
	vars := env.ToMap(environ)
	if err := rejectEmpty(vars); err != nil {
		return Config{}, err
	}
	var c Config
	opts := env.Options{
		Environment: vars,
		FuncMap: map[reflect.Type]env.ParserFunc{
			reflect.TypeFor[time.Duration](): func(v string) (any, error) { return ParseDuration(v) },
			reflect.TypeFor[Days]():          func(v string) (any, error) { d, err := ParseDays(v); return Days(d), err },
		},
	}
	if err := env.ParseWithOptions(&c, opts); err != nil {
		return Config{}, translate(err, vars)
	}
	if err := c.validate(vars); err != nil {
		return Config{}, err
	}
	_, c.MetricsPortSet = vars["METRICS_PORT"]
	if err := c.validateRedisMode(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validateRedisMode checks the variables that choose how Redis is reached:
// one server (REDIS_HOST), Sentinel or Cluster, with or without TLS.
func (c *Config) validateRedisMode() error {
	bad := func(field string, value string) error {
		f, _ := reflect.TypeFor[Config]().FieldByName(field)
		return fieldError(f, value)
	}
	if len(c.RedisSentinelAddrs) > 0 && len(c.RedisClusterAddrs) > 0 {
		return bad("RedisClusterAddrs", strings.Join(c.RedisClusterAddrs, ","))
	}
	if len(c.RedisSentinelAddrs) > 0 {
		if !hostPorts(c.RedisSentinelAddrs) {
			return bad("RedisSentinelAddrs", strings.Join(c.RedisSentinelAddrs, ","))
		}
		if strings.TrimSpace(c.RedisSentinelMaster) == "" {
			return bad("RedisSentinelMaster", c.RedisSentinelMaster)
		}
	} else if c.RedisSentinelMaster != "" {
		return bad("RedisSentinelAddrs", "")
	}
	if len(c.RedisClusterAddrs) > 0 {
		if !hostPorts(c.RedisClusterAddrs) {
			return bad("RedisClusterAddrs", strings.Join(c.RedisClusterAddrs, ","))
		}
		if c.RedisDB != 0 {
			f, _ := reflect.TypeFor[Config]().FieldByName("RedisDB")
			return &Error{Var: f.Tag.Get("env"), Value: fmt.Sprint(c.RedisDB), Accepts: "0 with REDIS_CLUSTER_ADDRS (a cluster has only database 0)"}
		}
	}
	if c.RedisTLSCA != "" {
		if !c.RedisTLS {
			f, _ := reflect.TypeFor[Config]().FieldByName("RedisTLS")
			return &Error{Var: f.Tag.Get("env"), Value: "false", Accepts: "true when REDIS_TLS_CA is set"}
		}
		pem, ok := readCA(c.RedisTLSCA)
		if !ok {
			return bad("RedisTLSCA", c.RedisTLSCA)
		}
		c.RedisTLSCAPEM = pem
	}
	if c.PostgresMigrateURI != "" && !postgresURI(c.PostgresMigrateURI) {
		return bad("PostgresMigrateURI", c.PostgresMigrateURI)
	}
	return nil
}

// hostPorts accepts a non-empty list of host:port with a port from 1 to
// 65535.
func hostPorts(addrs []string) bool {
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil || host == "" {
			return false
		}
		n, err := strconv.Atoi(port)
		if err != nil || !between(n, 1, 65535) {
			return false
		}
	}
	return len(addrs) > 0
}

// maxCAFile bounds what readCA reads: a bundle of CA certificates is a few
// hundred KiB at most.
const maxCAFile = 1 << 20

// readCA reads a regular file of at most 1 MiB holding at least one PEM
// certificate.
func readCA(path string) ([]byte, bool) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() > maxCAFile {
		return nil, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	return b, x509.NewCertPool().AppendCertsFromPEM(b)
}

// rejectEmpty refuses a variable that has a default but is set to nothing:
// an operator who wrote CRON_INTERVAL= meant something, and silently using
// the default would hide the mistake.
func rejectEmpty(vars map[string]string) error {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("env")
		if _, hasDefault := f.Tag.Lookup("envDefault"); !hasDefault {
			continue
		}
		if v, set := vars[key]; set && strings.TrimSpace(v) == "" {
			return fieldError(f, v)
		}
	}
	return nil
}

// translate maps the library's field-named parse errors to our variable-named
// ones; the first problem is enough to act on.
func translate(err error, vars map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			return fieldError(f, vars[f.Tag.Get("env")])
		}
	}
	return fmt.Errorf("config: %w", err)
}

// ParseDuration reads a duration variable: whole seconds ("5", as every
// such variable always took) or a Go duration ("5s", "2m", "1h30m").
// Spaces around the value are allowed. Ranges are checked by Load.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return 0, fmt.Errorf("%q: too many seconds", s)
		}
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want whole seconds or a Go duration: %w", s, err)
	}
	return d, nil
}

// Days is a duration that may also be written in whole days ("30d").
type Days time.Duration

// ParseDays reads a duration variable that may be long: whole days with a
// d suffix ("30d"), or anything ParseDuration takes.
func ParseDays(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return ParseDuration(s)
}

// seconds accepts a whole number of seconds from lo to hi: the variables
// that always took seconds keep that unit (a tick, a TTL, a grace period),
// so "1500ms" is refused rather than silently rounded.
func seconds(d, lo, hi time.Duration) bool { return d%time.Second == 0 && d >= lo && d <= hi }

// validate checks every field; vars tells whether MAX_ATTEMPTS was set
// (else it becomes the schedule's length + 1), and what the operator wrote
// for a value the error names.
func (c *Config) validate(vars map[string]string) error {
	_, maxSet := vars["MAX_ATTEMPTS"]
	providersSet := strings.TrimSpace(vars["PROVIDERS"]) != ""
	const day = 24 * time.Hour
	sched, schedErr := retry.Parse(c.RetrySchedule)
	_, resourceErr := ParseResourceAttributes(c.ResourceAttributes)
	_, cbSchedErr := retry.Parse(c.StatusCallbackRetrySchedule)
	_, hostsErr := ParseHosts(c.StatusCallbackAllowedHosts)
	checks := []struct {
		field string
		ok    bool
	}{
		{"LogLevel", oneOf(strings.ToUpper(c.LogLevel), "DEBUG", "INFO", "WARN", "ERROR")},
		{"LogFormat", oneOf(strings.ToLower(c.LogFormat), "text", "json")},
		{"MessageFetchLimit", between(c.MessageFetchLimit, 1, 100000)},
		{"CronInterval", seconds(c.CronInterval, time.Second, day)},
		{"MaxConcurrentJobs", between(c.MaxConcurrentJobs, 1, 1000)},
		{"ServerGracePeriod", seconds(c.ServerGracePeriod, time.Second, time.Hour)},
		{"MaxAttempts", !maxSet || between(c.MaxAttempts, 1, 100)},
		{"RetrySchedule", schedErr == nil},
		{"WebhookURL", httpURL(c.WebhookURL) || c.WebhookURL == "" && providersSet},
		{"WebhookTimeout", seconds(c.WebhookTimeout, time.Second, 5*time.Minute)},
		{"WebhookAuthHeader", headerName(c.WebhookAuthHeader)},
		{"WebhookSecret", c.WebhookSecret == "" || webhookSecret(c.WebhookSecret)},
		{"RedisHost", c.RedisHost != ""},
		{"RedisPort", between(c.RedisPort, 1, 65535)},
		{"RedisDB", between(c.RedisDB, 0, 15)},
		{"RedisTTL", seconds(c.RedisTTL, time.Second, 365*day)},
		{"PostgresURI", postgresURI(c.PostgresURI)},
		{"HTTPPort", between(c.HTTPPort, 1, 65535)},
		{"MetricsPort", between(c.MetricsPort, 0, 65535)},
		{"MaxContentLength", between(c.MaxContentLength, 1, 255)},
		{"RateLimit", between(c.RateLimit, 0, 1000000)},
		{"APIReadKey", readKey(c.APIKey, c.APIReadKey)},
		{"SessionTTL", seconds(c.SessionTTL, time.Minute, 30*day)},
		{"TrustedProxies", proxies(c.TrustedProxies)},
		{"Queue", queueName(c.Queue)},
		{"DefaultValidityPeriod", seconds(c.DefaultValidityPeriod, 0, 30*day)},
		{"AllowedCountries", countries(c.AllowedCountries)},
		{"MaxSegments", between(c.MaxSegments, 1, 255)},
		{"BreakerWindow", c.BreakerWindow >= time.Second && c.BreakerWindow <= time.Hour},
		{"BreakerMinCalls", between(c.BreakerMinCalls, 1, 100000)},
		{"BreakerFailureRate", c.BreakerFailureRate > 0 && c.BreakerFailureRate <= 1}, // NaN fails both
		{"BreakerCooldown", c.BreakerCooldown >= time.Second && c.BreakerCooldown <= day},
		{"RetentionPeriod", c.RetentionPeriod >= 0 && time.Duration(c.RetentionPeriod) <= 36500*day},
		{"RetentionInterval", c.RetentionInterval >= time.Second && c.RetentionInterval <= day},
		{"RetentionBatch", between(c.RetentionBatch, 1, 100000)},
		{"OTLPEndpoint", c.OTLPEndpoint == "" || httpURL(c.OTLPEndpoint)},
		{"OTLPProtocol", oneOf(c.OTLPProtocol, "grpc", "http/protobuf")},
		{"TracesSampler", oneOf(c.TracesSampler, Samplers...)},
		{"TracesSamplerArg", c.TracesSamplerArg >= 0 && c.TracesSamplerArg <= 1}, // NaN fails both
		{"ResourceAttributes", resourceErr == nil},
		{"StatusCallbackURL", c.StatusCallbackURL == "" || httpURL(c.StatusCallbackURL)},
		{"StatusCallbackSecret", c.StatusCallbackSecret == "" || webhookSecret(c.StatusCallbackSecret)},
		{"StatusCallbackAllowedHosts", hostsErr == nil},
		{"StatusCallbackRetrySchedule", cbSchedErr == nil},
		{"StatusCallbackConcurrency", between(c.StatusCallbackConcurrency, 1, 1000)},
	}
	for _, ch := range checks {
		if ch.ok {
			continue
		}
		f, _ := reflect.TypeFor[Config]().FieldByName(ch.field)
		v, set := vars[f.Tag.Get("env")]
		if !set {
			v = fmt.Sprint(reflect.ValueOf(*c).FieldByName(ch.field).Interface())
		}
		return fieldError(f, v)
	}
	c.LogLevel = strings.ToUpper(c.LogLevel)
	for i, cc := range c.AllowedCountries {
		c.AllowedCountries[i] = strings.ToUpper(strings.TrimSpace(cc))
	}
	c.LogFormat = strings.ToLower(c.LogFormat)
	if !maxSet {
		// One call per step, plus the first: every step is used.
		c.MaxAttempts = len(sched) + 1
	}
	return c.loadProviders(vars)
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// readKey accepts an unset API_READ_KEY, or one set together with a
// different API_KEY: a read key alone would guard nothing (without API_KEY
// everything is open), and one equal to API_KEY would grant full access.
func readKey(full, read string) bool {
	full, read = strings.TrimSpace(full), strings.TrimSpace(read)
	return read == "" || full != "" && read != full
}

func between(v, lo, hi int) bool { return v >= lo && v <= hi }

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func postgresURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// headerName accepts an RFC 9110 token, which is what net/http will send.
func headerName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// webhookSecret accepts "whsec_" followed by non-empty standard base64.
func webhookSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	return err == nil && len(b) > 0
}

// proxies accepts a list of IP addresses and CIDR ranges.
func proxies(list []string) bool {
	for _, p := range list {
		p = strings.TrimSpace(p)
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			return false
		}
	}
	return true
}

// countries accepts ISO 3166 alpha-2 codes, in any case, that the phone
// library has numbering data for (so UK, which is not ISO 3166, is
// refused: GB is).
func countries(list []string) bool {
	for _, c := range list {
		if !message.KnownRegion(strings.ToUpper(strings.TrimSpace(c))) {
			return false
		}
	}
	return true
}

func queueName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// CronIntervalDuration is the time between dispatch ticks.
func (c Config) CronIntervalDuration() time.Duration { return c.CronInterval }

// GracePeriod bounds how long a program waits for in-flight work at shutdown.
func (c Config) GracePeriod() time.Duration { return c.ServerGracePeriod }

// WebhookTimeoutDuration bounds one webhook call, connection to last byte.
func (c Config) WebhookTimeoutDuration() time.Duration { return c.WebhookTimeout }

// SessionDuration is how long a console sign-in lasts.
func (c Config) SessionDuration() time.Duration { return c.SessionTTL }

// DefaultValidity is how long a created message stays sendable when its
// create names no validity_period; 0 means forever.
func (c Config) DefaultValidity() time.Duration { return c.DefaultValidityPeriod }

// Retention is how long a finished message is kept; 0 means forever.
func (c Config) Retention() time.Duration { return time.Duration(c.RetentionPeriod) }

// CacheTTL is how long a sent record stays in Redis.
func (c Config) CacheTTL() time.Duration { return c.RedisTTL }

// LeaseDuration is how long a claimed message stays reserved for its worker.
// It outlives one webhook call with room to record the outcome, so a live
// worker never loses its claim, while a dead worker's rows come back soon.
func (c Config) LeaseDuration() time.Duration {
	return 2*c.MaxProviderTimeout() + 10*time.Second
}

// RedisAddr is the host:port go-redis dials.
func (c Config) RedisAddr() string { return fmt.Sprintf("%s:%d", c.RedisHost, c.RedisPort) }

// Retry is RETRY_SCHEDULE parsed: the delay before each retry.
func (c Config) Retry() retry.Schedule {
	s, err := retry.Parse(c.RetrySchedule)
	if err != nil {
		return nil // Load rejected it; a Config built by hand gets the doubling backoff
	}
	return s
}

// CallbackRetry is STATUS_CALLBACK_RETRY_SCHEDULE parsed: the delay before
// each new try of a status callback; after the last step the event fails.
func (c Config) CallbackRetry() retry.Schedule {
	s, err := retry.Parse(c.StatusCallbackRetrySchedule)
	if err != nil {
		return retry.MustParse(DefaultCallbackRetrySchedule) // Load rejected it; a Config built by hand
	}
	return s
}

// DefaultCallbackRetrySchedule is STATUS_CALLBACK_RETRY_SCHEDULE's default:
// first 1, 10, 30 and 90 s, then hours; its steps add up to 24 h 37 min.
const DefaultCallbackRetrySchedule = "1s,10s,30s,90s,5m,30m,1h,2h,4h,8h,9h"

// CallbackHosts are the hosts a message's status_callback may name:
// STATUS_CALLBACK_ALLOWED_HOSTS, or else the host of STATUS_CALLBACK_URL,
// or else none.
func (c Config) CallbackHosts() []string {
	if hosts, err := ParseHosts(c.StatusCallbackAllowedHosts); err == nil && len(hosts) > 0 {
		return hosts
	}
	if u, err := url.Parse(c.StatusCallbackURL); err == nil && u.Hostname() != "" {
		return []string{strings.ToLower(u.Hostname())}
	}
	return nil
}

// ParseHosts reads a comma-separated list of host names or IP addresses
// (an IPv6 address with or without brackets), lower-cased and trimmed;
// an empty text is an empty list. A host name is at most 253 characters
// of letters, digits, '-' and '.', in labels of 1 to 63.
func ParseHosts(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil && a.Zone() == "" {
			out = append(out, a.String())
			continue
		}
		if !hostName(h) {
			return nil, fmt.Errorf("%q is not a host name or IP address", h)
		}
		out = append(out, h)
	}
	return out, nil
}

func hostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' {
				return false
			}
		}
	}
	return true
}
