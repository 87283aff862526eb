package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
)

var base = []string{"WEBHOOK_URL=https://example.test/hook"}

func TestDefaultsMatchTheSeed(t *testing.T) {
	t.Parallel()
	c, err := config.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"MESSAGE_FETCH_LIMIT", c.MessageFetchLimit, 2},
		{"CRON_INTERVAL", c.CronInterval, 120 * time.Second},
		{"MAX_CONCURRENT_JOBS", c.MaxConcurrentJobs, 5},
		{"SERVER_GRACE_PERIOD", c.ServerGracePeriod, 30 * time.Second},
		{"REDIS_PORT", c.RedisPort, 6379},
		{"REDIS_DB", c.RedisDB, 0},
		{"REDIS_TTL", c.RedisTTL, time.Hour},
		{"HTTP_PORT", c.HTTPPort, 8080},
		{"WEBHOOK_TIMEOUT", c.WebhookTimeout, 10 * time.Second},
		{"WEBHOOK_AUTH_HEADER", c.WebhookAuthHeader, "x-ins-auth-key"},
		{"MAX_ATTEMPTS", c.MaxAttempts, 11},
		{"RETRY_SCHEDULE", c.Retry().String(), "5s,30s,2m0s,10m0s,30m0s,1h0m0s,2h0m0s,4h0m0s,8h0m0s,9h0m0s"},
		{"BREAKER_WINDOW", c.BreakerWindow, 30 * time.Second},
		{"BREAKER_MIN_CALLS", c.BreakerMinCalls, 20},
		{"BREAKER_FAILURE_RATE", c.BreakerFailureRate, 0.5},
		{"BREAKER_COOLDOWN", c.BreakerCooldown, 30 * time.Second},
		{"LOG_FORMAT", c.LogFormat, "text"},
		{"LOG_LEVEL", c.LogLevel, "INFO"},
		{"SESSION_TTL", c.SessionTTL, 12 * time.Hour},
		{"TRUSTED_PROXIES", len(c.TrustedProxies), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestSeedValuesLoad(t *testing.T) {
	t.Parallel()
	env := []string{
		"APP_NAME=Messaging Server V1", "LOG_LEVEL=DEBUG", "MESSAGE_FETCH_LIMIT=2", "CRON_INTERVAL=120",
		"MAX_CONCURRENT_JOBS=5", "SERVER_GRACE_PERIOD=30",
		"WEBHOOK_URL=https://webhook.site/ddd0be6e-d6c5-4859-a90f-9f72801bb182",
		"REDIS_HOST=redis", "REDIS_PORT=6379", "REDIS_DB=0", "REDIS_TTL=3600",
		"POSTGRES_URI=postgres://sample_user:sample_password@postgres_db:5432/messaging_db?sslmode=disable",
		"LOG_FORMAT=json", "WEBHOOK_AUTH_KEY=secret",
	}
	c, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AppName != "Messaging Server V1" || c.RedisAddr() != "redis:6379" || c.LogFormat != "json" || c.WebhookAuthKey != "secret" {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want string // the variable the error must name
	}{
		{"missing webhook", nil, "WEBHOOK_URL"},
		{"empty webhook", []string{"WEBHOOK_URL="}, "WEBHOOK_URL"},
		{"relative webhook", []string{"WEBHOOK_URL=/hook"}, "WEBHOOK_URL"},
		{"ftp webhook", []string{"WEBHOOK_URL=ftp://x/y"}, "WEBHOOK_URL"},
		{"cron not a number", append(base, "CRON_INTERVAL=abc"), "CRON_INTERVAL"},
		{"cron zero", append(base, "CRON_INTERVAL=0"), "CRON_INTERVAL"},
		{"cron huge", append(base, "CRON_INTERVAL=99999999999999999999"), "CRON_INTERVAL"},
		{"cron empty", append(base, "CRON_INTERVAL="), "CRON_INTERVAL"},
		{"negative limit", append(base, "MESSAGE_FETCH_LIMIT=-1"), "MESSAGE_FETCH_LIMIT"},
		{"limit float", append(base, "MESSAGE_FETCH_LIMIT=2.5"), "MESSAGE_FETCH_LIMIT"},
		{"zero jobs", append(base, "MAX_CONCURRENT_JOBS=0"), "MAX_CONCURRENT_JOBS"},
		{"grace negative", append(base, "SERVER_GRACE_PERIOD=-30"), "SERVER_GRACE_PERIOD"},
		{"timeout zero", append(base, "WEBHOOK_TIMEOUT=0"), "WEBHOOK_TIMEOUT"},
		{"attempts zero", append(base, "MAX_ATTEMPTS=0"), "MAX_ATTEMPTS"},
		{"bad header", append(base, "WEBHOOK_AUTH_HEADER=x y"), "WEBHOOK_AUTH_HEADER"},
		{"redis port", append(base, "REDIS_PORT=70000"), "REDIS_PORT"},
		{"redis db", append(base, "REDIS_DB=16"), "REDIS_DB"},
		{"redis ttl", append(base, "REDIS_TTL=-5"), "REDIS_TTL"},
		{"redis host", append(base, "REDIS_HOST="), "REDIS_HOST"},
		{"postgres scheme", append(base, "POSTGRES_URI=mysql://x"), "POSTGRES_URI"},
		{"log level", append(base, "LOG_LEVEL=LOUD"), "LOG_LEVEL"},
		{"log format", append(base, "LOG_FORMAT=xml"), "LOG_FORMAT"},
		{"http port", append(base, "HTTP_PORT=0"), "HTTP_PORT"},
		{"metrics port", append(base, "METRICS_PORT=-1"), "METRICS_PORT"},
		{"queue name", append(base, "QUEUE_NAME=a b"), "QUEUE_NAME"},
		{"session ttl", append(base, "SESSION_TTL=59"), "SESSION_TTL"},
		{"trusted proxy", append(base, "TRUSTED_PROXIES=10.0.0.1,proxy.local"), "TRUSTED_PROXIES"},
		{"secret prefix", append(base, "WEBHOOK_SECRET=MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "WEBHOOK_SECRET"},
		{"secret base64", append(base, "WEBHOOK_SECRET=whsec_%%%"), "WEBHOOK_SECRET"},
		{"sentinel no port", append(base, "REDIS_SENTINEL_ADDRS=a,b:1", "REDIS_SENTINEL_MASTER=m"), "REDIS_SENTINEL_ADDRS"},
		{"sentinel bad port", append(base, "REDIS_SENTINEL_ADDRS=a:0", "REDIS_SENTINEL_MASTER=m"), "REDIS_SENTINEL_ADDRS"},
		{"sentinel empty item", append(base, "REDIS_SENTINEL_ADDRS=a:1,,b:2", "REDIS_SENTINEL_MASTER=m"), "REDIS_SENTINEL_ADDRS"},
		{"sentinel no master", append(base, "REDIS_SENTINEL_ADDRS=a:26379"), "REDIS_SENTINEL_MASTER"},
		{"master without sentinels", append(base, "REDIS_SENTINEL_MASTER=m"), "REDIS_SENTINEL_ADDRS"},
		{"sentinel and cluster", append(base, "REDIS_SENTINEL_ADDRS=a:26379", "REDIS_SENTINEL_MASTER=m", "REDIS_CLUSTER_ADDRS=b:7000"), "REDIS_CLUSTER_ADDRS"},
		{"cluster bad addr", append(base, "REDIS_CLUSTER_ADDRS=b:x"), "REDIS_CLUSTER_ADDRS"},
		{"cluster db", append(base, "REDIS_CLUSTER_ADDRS=b:7000", "REDIS_DB=1"), "REDIS_DB"},
		{"tls not bool", append(base, "REDIS_TLS=yes please"), "REDIS_TLS"},
		{"tls empty", append(base, "REDIS_TLS="), "REDIS_TLS"},
		{"ca without tls", append(base, "REDIS_TLS_CA=/etc/hostname"), "REDIS_TLS"},
		{"ca missing", append(base, "REDIS_TLS=true", "REDIS_TLS_CA=/nonexistent/ca.pem"), "REDIS_TLS_CA"},
		{"ca not pem", append(base, "REDIS_TLS=true", "REDIS_TLS_CA=/etc/hostname"), "REDIS_TLS_CA"},
		{"ca a directory", append(base, "REDIS_TLS=true", "REDIS_TLS_CA=/etc"), "REDIS_TLS_CA"},
		{"migrate uri scheme", append(base, "POSTGRES_MIGRATE_URI=mysql://x"), "POSTGRES_MIGRATE_URI"},
		{"attempts empty", append(base, "MAX_ATTEMPTS="), "MAX_ATTEMPTS"},
		{"attempts huge", append(base, "MAX_ATTEMPTS=101"), "MAX_ATTEMPTS"},
		{"schedule empty", append(base, "RETRY_SCHEDULE="), "RETRY_SCHEDULE"},
		{"schedule bad unit", append(base, "RETRY_SCHEDULE=5,30x"), "RETRY_SCHEDULE"},
		{"schedule zero step", append(base, "RETRY_SCHEDULE=5s,0s"), "RETRY_SCHEDULE"},
		{"schedule negative step", append(base, "RETRY_SCHEDULE=-5s"), "RETRY_SCHEDULE"},
		{"schedule empty step", append(base, "RETRY_SCHEDULE=5s,,1m"), "RETRY_SCHEDULE"},
		{"schedule step too long", append(base, "RETRY_SCHEDULE=5s,200h"), "RETRY_SCHEDULE"},
		{"schedule too many steps", append(base, "RETRY_SCHEDULE="+strings.Repeat("1s,", 99)+"1s"), "RETRY_SCHEDULE"},
		{"window too short", append(base, "BREAKER_WINDOW=10ms"), "BREAKER_WINDOW"},
		{"window too long", append(base, "BREAKER_WINDOW=2h"), "BREAKER_WINDOW"},
		{"window empty", append(base, "BREAKER_WINDOW="), "BREAKER_WINDOW"},
		{"min calls zero", append(base, "BREAKER_MIN_CALLS=0"), "BREAKER_MIN_CALLS"},
		{"min calls text", append(base, "BREAKER_MIN_CALLS=many"), "BREAKER_MIN_CALLS"},
		{"rate zero", append(base, "BREAKER_FAILURE_RATE=0"), "BREAKER_FAILURE_RATE"},
		{"rate above one", append(base, "BREAKER_FAILURE_RATE=1.01"), "BREAKER_FAILURE_RATE"},
		{"rate percent", append(base, "BREAKER_FAILURE_RATE=50%"), "BREAKER_FAILURE_RATE"},
		{"rate NaN", append(base, "BREAKER_FAILURE_RATE=NaN"), "BREAKER_FAILURE_RATE"},
		{"rate Inf", append(base, "BREAKER_FAILURE_RATE=Inf"), "BREAKER_FAILURE_RATE"},
		{"cooldown zero", append(base, "BREAKER_COOLDOWN=0s"), "BREAKER_COOLDOWN"},
		{"cooldown too long", append(base, "BREAKER_COOLDOWN=25h"), "BREAKER_COOLDOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(tc.env)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			msg := err.Error()
			if ce.Var != tc.want || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "want ") {
				t.Fatalf("error %q does not name %s and what it accepts", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
		})
	}
}

func TestLevelAndFormatAreCaseInsensitive(t *testing.T) {
	t.Parallel()
	c, err := config.Load(append(base, "LOG_LEVEL=debug", "LOG_FORMAT=JSON"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "DEBUG" || c.LogFormat != "json" {
		t.Fatalf("got %q %q", c.LogLevel, c.LogFormat)
	}
}

// FuzzLoad feeds arbitrary values to every numeric and enumerated variable:
// Load must either accept them or fail with a one-line *config.Error, never
// panic.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{"", "0", "-1", "abc", "99999999999999999999", "1e3", " 5", "DEBUG", "\x00"} {
		f.Add("CRON_INTERVAL", s)
		f.Add("MESSAGE_FETCH_LIMIT", s)
		f.Add("LOG_LEVEL", s)
		f.Add("WEBHOOK_URL", s)
		f.Add("TRUSTED_PROXIES", s)
		f.Add("REDIS_SENTINEL_ADDRS", s)
		f.Add("REDIS_CLUSTER_ADDRS", s)
		f.Add("REDIS_TLS", s)
		f.Add("REDIS_TLS_CA", s)
		f.Add("POSTGRES_MIGRATE_URI", s)
		f.Add("RETRY_SCHEDULE", s)
		f.Add("MAX_ATTEMPTS", s)
		f.Add("BREAKER_WINDOW", s)
		f.Add("BREAKER_MIN_CALLS", s)
		f.Add("BREAKER_FAILURE_RATE", s)
		f.Add("BREAKER_COOLDOWN", s)
		f.Add("SERVER_GRACE_PERIOD", s)
		f.Add("WEBHOOK_TIMEOUT", s)
		f.Add("REDIS_TTL", s)
		f.Add("SESSION_TTL", s)
		f.Add("DEFAULT_VALIDITY_PERIOD", s)
		f.Add("PROVIDERS", s)
		f.Add("ROUTES", s)
	}
	for _, s := range []string{"5s", "2m", "1500ms", "1.5m", "-5s", "9223372036854775807", "9223372036854775808", "24h0m1s"} {
		f.Add("CRON_INTERVAL", s)
		f.Add("BREAKER_WINDOW", s)
	}
	f.Add("REDIS_CLUSTER_ADDRS", "a:1,[::1]:2, b:3")
	f.Add("REDIS_SENTINEL_ADDRS", "a:1,b:2,c:3")
	f.Add("RETRY_SCHEDULE", "5s,1m,,")
	for _, s := range []string{"", "http://h/x", "ftp://h", "https://", "/rel", "1,2", "a..b", "[::1]", "fe80::1%eth0", "whsec_AA=="} {
		f.Add("STATUS_CALLBACK_URL", s)
		f.Add("STATUS_CALLBACK_SECRET", s)
		f.Add("STATUS_CALLBACK_ALLOWED_HOSTS", s)
		f.Add("STATUS_CALLBACK_RETRY_SCHEDULE", s)
		f.Add("STATUS_CALLBACK_CONCURRENCY", s)
	}
	f.Add("BREAKER_FAILURE_RATE", "NaN")
	f.Add("BREAKER_COOLDOWN", "9223372036854775807ns")
	f.Fuzz(func(t *testing.T, name, value string) {
		c, err := config.Load(append([]string{"WEBHOOK_URL=https://example.test/hook"}, name+"="+value))
		if err == nil {
			// Whatever was accepted is usable: a schedule with steps, a
			// bounded attempt count, a breaker that can trip and recover.
			if len(c.CallbackRetry()) == 0 || c.StatusCallbackConcurrency < 1 || c.StatusCallbackConcurrency > 1000 {
				t.Fatalf("%s=%q accepted into an unusable callback config %+v", name, value, c)
			}
			if len(c.Retry()) == 0 || c.MaxAttempts < 1 || c.MaxAttempts > 100 || c.BreakerMinCalls < 1 ||
				!(c.BreakerFailureRate > 0 && c.BreakerFailureRate <= 1) || c.BreakerWindow <= 0 || c.BreakerCooldown <= 0 {
				t.Fatalf("%s=%q accepted into an unusable config %+v", name, value, c)
			}
			// Every duration is positive (or 0 for no expiry) and, where
			// the unit was always seconds, whole.
			for _, d := range []time.Duration{c.CronInterval, c.ServerGracePeriod, c.WebhookTimeout, c.RedisTTL, c.SessionTTL} {
				if d < time.Second || d%time.Second != 0 {
					t.Fatalf("%s=%q accepted as %s", name, value, d)
				}
			}
			if c.DefaultValidityPeriod < 0 || c.DefaultValidityPeriod%time.Second != 0 {
				t.Fatalf("%s=%q accepted as %s", name, value, c.DefaultValidityPeriod)
			}
			return
		}
		var ce *config.Error
		if errors.As(err, &ce) && strings.Contains(err.Error(), ce.Var) {
			return
		}
		if !strings.HasPrefix(err.Error(), "config: ") {
			t.Fatalf("unexpected error shape: %v", err)
		}
	})
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	for _, env := range [][]string{
		{"WEBHOOK_URL=ftp://user:hunter2@example.test/"},
		append(base, "POSTGRES_URI=mysql://user:hunter2@db/x"),
		append(base, "WEBHOOK_SECRET=whsec_hunter2!"),
	} {
		_, err := config.Load(env)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error %v leaks the secret", err)
		}
	}
}

// Every numeric variable, set to an empty, negative, huge or non-numeric
// value, stops the program with an error that names it.
func TestEveryNumberRejectsNonsense(t *testing.T) {
	t.Parallel()
	vars := []string{
		"MESSAGE_FETCH_LIMIT", "CRON_INTERVAL", "MAX_CONCURRENT_JOBS", "SERVER_GRACE_PERIOD", "MAX_ATTEMPTS",
		"WEBHOOK_TIMEOUT", "REDIS_PORT", "REDIS_DB", "REDIS_TTL", "HTTP_PORT", "METRICS_PORT",
		"MAX_CONTENT_LENGTH", "RATE_LIMIT", "SESSION_TTL", "BREAKER_MIN_CALLS",
	}
	for _, v := range vars {
		for _, bad := range []string{"", " ", "-1", "-99999", "99999999999", "99999999999999999999999", "abc", "1.5", "0x10", "1e3"} {
			_, err := config.Load(append([]string{"WEBHOOK_URL=https://example.test/hook"}, v+"="+bad))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != v {
				t.Errorf("%s=%q: got %v, want an error naming %s", v, bad, err, v)
			}
		}
	}
}

func TestRedisModes(t *testing.T) {
	t.Parallel()
	c, err := config.Load(append(base, "REDIS_SENTINEL_ADDRS=10.0.0.1:26379, 10.0.0.2:26379,s3:26379",
		"REDIS_SENTINEL_MASTER=mymaster", "REDIS_SENTINEL_PASSWORD=sp", "REDIS_DB=3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RedisSentinelAddrs) != 3 || c.RedisSentinelMaster != "mymaster" || c.RedisSentinelPassword != "sp" || c.RedisDB != 3 {
		t.Fatalf("sentinel config %+v", c)
	}
	c, err = config.Load(append(base, "REDIS_CLUSTER_ADDRS=n1:7000,n2:7000", "REDIS_DB=0", "POSTGRES_MIGRATE_URI=postgres://direct:5432/db"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RedisClusterAddrs) != 2 || c.PostgresMigrateURI == "" {
		t.Fatalf("cluster config %+v", c)
	}
	c, err = config.Load(append(base, "REDIS_TLS=true"))
	if err != nil || !c.RedisTLS || c.RedisTLSCAPEM != nil {
		t.Fatalf("tls without CA: %+v %v", c, err)
	}
}

func TestCAFileIsReadAndChecked(t *testing.T) {
	t.Parallel()
	caPEM := selfSignedPEM(t)
	path := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(path, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(append(base, "REDIS_TLS=true", "REDIS_TLS_CA="+path))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.RedisTLSCAPEM) != string(caPEM) {
		t.Fatal("CA file content not kept")
	}
}

// A METRICS_PORT the operator wrote is bound exactly; the default may move
// to the next free port. Load records which one it is.
func TestMetricsPortSetIsRecorded(t *testing.T) {
	t.Parallel()
	c, err := config.Load(base)
	if err != nil || c.MetricsPortSet || c.MetricsPort != 9090 {
		t.Fatalf("default: %+v %v", c, err)
	}
	c, err = config.Load(append(base, "METRICS_PORT=9090"))
	if err != nil || !c.MetricsPortSet {
		t.Fatalf("explicit: %+v %v", c, err)
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// MAX_ATTEMPTS keeps its meaning when set; unset, it follows the schedule.
func TestMaxAttemptsFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  []string
		want int
	}{
		{nil, 11},
		{[]string{"RETRY_SCHEDULE=1s,2s"}, 3},
		{[]string{"RETRY_SCHEDULE=1s,2s", "MAX_ATTEMPTS=7"}, 7},
		{[]string{"MAX_ATTEMPTS=5"}, 5},
		{[]string{"MAX_ATTEMPTS=1"}, 1},
		{[]string{"RETRY_SCHEDULE=" + strings.Repeat("1s,", 98) + "1s"}, 100},
	}
	for _, tc := range cases {
		c, err := config.Load(append(append([]string{}, base...), tc.env...))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.MaxAttempts != tc.want {
			t.Errorf("%v: MaxAttempts %d, want %d", tc.env, c.MaxAttempts, tc.want)
		}
	}
}

func TestBreakerSettingsLoad(t *testing.T) {
	t.Parallel()
	c, err := config.Load(append(append([]string{}, base...), "BREAKER_WINDOW=1m", "BREAKER_MIN_CALLS=5",
		"BREAKER_FAILURE_RATE=1", "BREAKER_COOLDOWN=2", "RETRY_SCHEDULE= 1, 1m "))
	if err != nil {
		t.Fatal(err)
	}
	if c.BreakerWindow != time.Minute || c.BreakerMinCalls != 5 || c.BreakerFailureRate != 1 ||
		c.BreakerCooldown != 2*time.Second || c.Retry().String() != "1s,1m0s" {
		t.Fatalf("unexpected %+v", c)
	}
}

// Every duration variable takes whole seconds ("5") or a Go duration ("5s",
// "2m"), within its range; the variables whose unit was always seconds
// refuse a fraction of a second.
func TestDurations(t *testing.T) {
	t.Parallel()
	get := map[string]func(config.Config) time.Duration{
		"CRON_INTERVAL":           func(c config.Config) time.Duration { return c.CronIntervalDuration() },
		"SERVER_GRACE_PERIOD":     func(c config.Config) time.Duration { return c.GracePeriod() },
		"WEBHOOK_TIMEOUT":         func(c config.Config) time.Duration { return c.WebhookTimeoutDuration() },
		"REDIS_TTL":               func(c config.Config) time.Duration { return c.CacheTTL() },
		"SESSION_TTL":             func(c config.Config) time.Duration { return c.SessionDuration() },
		"DEFAULT_VALIDITY_PERIOD": func(c config.Config) time.Duration { return c.DefaultValidity() },
		"BREAKER_WINDOW":          func(c config.Config) time.Duration { return c.BreakerWindow },
		"BREAKER_COOLDOWN":        func(c config.Config) time.Duration { return c.BreakerCooldown },
	}
	const bad = -1
	cases := []struct {
		name, value string
		want        time.Duration // bad: rejected
	}{
		{"CRON_INTERVAL", "5", 5 * time.Second},
		{"CRON_INTERVAL", "5s", 5 * time.Second},
		{"CRON_INTERVAL", "2m", 2 * time.Minute},
		{"CRON_INTERVAL", " 2m ", 2 * time.Minute},
		{"CRON_INTERVAL", "1.5m", 90 * time.Second},
		{"CRON_INTERVAL", "86400", 24 * time.Hour},
		{"CRON_INTERVAL", "24h", 24 * time.Hour},
		{"CRON_INTERVAL", "24h0m1s", bad},
		{"CRON_INTERVAL", "86401", bad},
		{"CRON_INTERVAL", "1500ms", bad},
		{"CRON_INTERVAL", "0", bad},
		{"CRON_INTERVAL", "0s", bad},
		{"CRON_INTERVAL", "-5s", bad},
		{"CRON_INTERVAL", "5x", bad},
		{"CRON_INTERVAL", "5 s", bad},
		{"CRON_INTERVAL", "+5", bad},
		{"CRON_INTERVAL", "9223372036854775807", bad},
		{"SERVER_GRACE_PERIOD", "5", 5 * time.Second},
		{"SERVER_GRACE_PERIOD", "5s", 5 * time.Second},
		{"SERVER_GRACE_PERIOD", "2m", 2 * time.Minute},
		{"SERVER_GRACE_PERIOD", "1h", time.Hour},
		{"SERVER_GRACE_PERIOD", "61m", bad},
		{"SERVER_GRACE_PERIOD", "2.5s", bad},
		{"SERVER_GRACE_PERIOD", "abc", bad},
		{"WEBHOOK_TIMEOUT", "5", 5 * time.Second},
		{"WEBHOOK_TIMEOUT", "5s", 5 * time.Second},
		{"WEBHOOK_TIMEOUT", "2m", 2 * time.Minute},
		{"WEBHOOK_TIMEOUT", "300", 5 * time.Minute},
		{"WEBHOOK_TIMEOUT", "301", bad},
		{"WEBHOOK_TIMEOUT", "6m", bad},
		{"WEBHOOK_TIMEOUT", "500ms", bad},
		{"REDIS_TTL", "5", 5 * time.Second},
		{"REDIS_TTL", "5s", 5 * time.Second},
		{"REDIS_TTL", "2m", 2 * time.Minute},
		{"REDIS_TTL", "31536000", 365 * 24 * time.Hour},
		{"REDIS_TTL", "8761h", bad},
		{"REDIS_TTL", "0", bad},
		{"SESSION_TTL", "60", time.Minute},
		{"SESSION_TTL", "2m", 2 * time.Minute},
		{"SESSION_TTL", "720h", 30 * 24 * time.Hour},
		{"SESSION_TTL", "5", bad},
		{"SESSION_TTL", "5s", bad},
		{"SESSION_TTL", "721h", bad},
		{"DEFAULT_VALIDITY_PERIOD", "0", 0},
		{"DEFAULT_VALIDITY_PERIOD", "5", 5 * time.Second},
		{"DEFAULT_VALIDITY_PERIOD", "5s", 5 * time.Second},
		{"DEFAULT_VALIDITY_PERIOD", "2m", 2 * time.Minute},
		{"DEFAULT_VALIDITY_PERIOD", "2592000", 30 * 24 * time.Hour},
		{"DEFAULT_VALIDITY_PERIOD", "2592001", bad},
		{"DEFAULT_VALIDITY_PERIOD", "-1s", bad},
		{"DEFAULT_VALIDITY_PERIOD", "100ms", bad},
		{"BREAKER_WINDOW", "5", 5 * time.Second},
		{"BREAKER_WINDOW", "5s", 5 * time.Second},
		{"BREAKER_WINDOW", "2m", 2 * time.Minute},
		{"BREAKER_WINDOW", "1500ms", 1500 * time.Millisecond},
		{"BREAKER_WINDOW", "3600", time.Hour},
		{"BREAKER_WINDOW", "3601", bad},
		{"BREAKER_WINDOW", "0", bad},
		{"BREAKER_WINDOW", "999ms", bad},
		{"BREAKER_COOLDOWN", "5", 5 * time.Second},
		{"BREAKER_COOLDOWN", "5s", 5 * time.Second},
		{"BREAKER_COOLDOWN", "2m", 2 * time.Minute},
		{"BREAKER_COOLDOWN", "86400", 24 * time.Hour},
		{"BREAKER_COOLDOWN", "86401", bad},
		{"BREAKER_COOLDOWN", "soon", bad},
	}
	for _, tc := range cases {
		c, err := config.Load(append(append([]string{}, base...), tc.name+"="+tc.value))
		if tc.want == bad {
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tc.name || !strings.Contains(err.Error(), "whole seconds or a Go duration, from ") {
				t.Errorf("%s=%q: got %v, want an error naming it and what it accepts", tc.name, tc.value, err)
			}
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.value)) {
				t.Errorf("%s=%q: the error does not quote the value as written: %v", tc.name, tc.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s=%q: %v", tc.name, tc.value, err)
			continue
		}
		if got := get[tc.name](c); got != tc.want {
			t.Errorf("%s=%q: %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{"0", 0, true},
		{"007", 7 * time.Second, true},
		{"5s", 5 * time.Second, true},
		{"2m", 2 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"1500ms", 1500 * time.Millisecond, true},
		{" 5 ", 5 * time.Second, true},
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"5 s", 0, false},
		{"five", 0, false},
	}
	for _, tc := range cases {
		got, err := config.ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5", "5s", "2m", "9223372037", "1.5m", "-0", " 1 ", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := config.ParseDuration(s)
		if err != nil && d != 0 {
			t.Fatalf("ParseDuration(%q) = %s with error %v", s, d, err)
		}
		if err == nil && strings.Trim(strings.TrimSpace(s), "0123456789") == "" && (d < 0 || d%time.Second != 0) {
			t.Fatalf("ParseDuration(%q) = %s: whole seconds read as something else", s, d)
		}
	})
}

func TestSMSSettings(t *testing.T) {
	t.Parallel()
	base := []string{"WEBHOOK_URL=http://127.0.0.1:1/hook"}
	cfg, err := config.Load(base)
	if err != nil || cfg.MaxSegments != 10 || len(cfg.AllowedCountries) != 0 {
		t.Fatalf("defaults: %+v %v", cfg.AllowedCountries, err)
	}
	cfg, err = config.Load(append(base, "ALLOWED_COUNTRIES=us, gb", "MAX_SEGMENTS=3"))
	if err != nil || cfg.MaxSegments != 3 || strings.Join(cfg.AllowedCountries, ",") != "US,GB" {
		t.Fatalf("set: %v %d %v", cfg.AllowedCountries, cfg.MaxSegments, err)
	}
	for _, bad := range []string{"ALLOWED_COUNTRIES=UK", "ALLOWED_COUNTRIES=US,,GB", "ALLOWED_COUNTRIES=USA", "MAX_SEGMENTS=0", "MAX_SEGMENTS=256"} {
		var ce *config.Error
		if _, err := config.Load(append(base, bad)); !errors.As(err, &ce) || !strings.HasPrefix(bad, ce.Var+"=") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// The status callback variables: defaults, accepted values and the
// variable a refusal names.
func TestStatusCallbackSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusCallbackURL != "" || c.StatusCallbackConcurrency != 8 || len(c.CallbackHosts()) != 0 ||
		c.CallbackRetry().String() != config.DefaultCallbackRetrySchedule && c.CallbackRetry().Total() < 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	if c.CallbackRetry().Total() < 24*time.Hour || c.StatusCallbackRetrySchedule != config.DefaultCallbackRetrySchedule {
		t.Fatalf("the default schedule spans %s, want at least 24 h", c.CallbackRetry().Total())
	}
	for _, ok := range []struct {
		vars  []string
		hosts string
	}{
		{[]string{"STATUS_CALLBACK_URL=https://Hooks.Example.com:8443/cb"}, "hooks.example.com"},
		{[]string{"STATUS_CALLBACK_URL=http://127.0.0.1:9/cb", "STATUS_CALLBACK_ALLOWED_HOSTS= a.example.com ,[::1],127.0.0.1"}, "a.example.com,::1,127.0.0.1"},
		{[]string{"STATUS_CALLBACK_ALLOWED_HOSTS=only.example.com"}, "only.example.com"},
		{[]string{"STATUS_CALLBACK_SECRET=whsec_c2VjcmV0", "STATUS_CALLBACK_RETRY_SCHEDULE=1,2s", "STATUS_CALLBACK_CONCURRENCY=1000"}, ""},
	} {
		c, err := config.Load(append(append([]string{}, base...), ok.vars...))
		if err != nil {
			t.Fatalf("%v: %v", ok.vars, err)
		}
		if got := strings.Join(c.CallbackHosts(), ","); got != ok.hosts {
			t.Errorf("%v: hosts %q, want %q", ok.vars, got, ok.hosts)
		}
	}
	for _, bad := range []struct{ v, name string }{
		{"STATUS_CALLBACK_URL=ftp://h/x", "STATUS_CALLBACK_URL"},
		{"STATUS_CALLBACK_URL=/relative", "STATUS_CALLBACK_URL"},
		{"STATUS_CALLBACK_URL=https://", "STATUS_CALLBACK_URL"},
		{"STATUS_CALLBACK_SECRET=secret", "STATUS_CALLBACK_SECRET"},
		{"STATUS_CALLBACK_SECRET=whsec_", "STATUS_CALLBACK_SECRET"},
		{"STATUS_CALLBACK_ALLOWED_HOSTS=a,,b", "STATUS_CALLBACK_ALLOWED_HOSTS"},
		{"STATUS_CALLBACK_ALLOWED_HOSTS=a_b.example.com", "STATUS_CALLBACK_ALLOWED_HOSTS"},
		{"STATUS_CALLBACK_ALLOWED_HOSTS=host:80", "STATUS_CALLBACK_ALLOWED_HOSTS"},
		{"STATUS_CALLBACK_RETRY_SCHEDULE=0", "STATUS_CALLBACK_RETRY_SCHEDULE"},
		{"STATUS_CALLBACK_RETRY_SCHEDULE=", "STATUS_CALLBACK_RETRY_SCHEDULE"},
		{"STATUS_CALLBACK_RETRY_SCHEDULE=169h", "STATUS_CALLBACK_RETRY_SCHEDULE"},
		{"STATUS_CALLBACK_CONCURRENCY=0", "STATUS_CALLBACK_CONCURRENCY"},
		{"STATUS_CALLBACK_CONCURRENCY=1001", "STATUS_CALLBACK_CONCURRENCY"},
	} {
		_, err := config.Load(append(append([]string{}, base...), bad.v))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != bad.name {
			t.Errorf("%s: %v, want an error naming %s", bad.v, err, bad.name)
		}
		if ce != nil && strings.Contains(bad.name, "SECRET") && strings.Contains(err.Error(), "secret") && bad.v != "STATUS_CALLBACK_SECRET=whsec_" {
			t.Errorf("%s: the error shows the secret: %v", bad.v, err)
		}
	}
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"", "a", "a.b,c", "[::1]", "::1", "1.2.3.4", "a..b", "a b", "x:1", "\x00", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := config.ParseHosts(s)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, ", []%") {
				t.Fatalf("ParseHosts(%q) gave %q", s, h)
			}
		}
	})
}
