package deploytest

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"

	"github.com/messaging-server/messaging-server/internal/config"
)

// testWebhookURL is what the tests put in the loader's environment, the way
// an operator's .env would.
const testWebhookURL = "https://webhook.example.test/hook"

// shutdownMargin is how much longer than SERVER_GRACE_PERIOD Docker must
// wait before SIGKILL: a worker cuts webhook calls at the grace period and
// then still records their outcomes in PostgreSQL.
const shutdownMargin = 10 * time.Second

// appServices names the compose services that run one of our programs,
// each with the binary it must start.
func appServices() map[string]string {
	return map[string]string{"api": "/app/api", "scheduler": "/app/scheduler", "worker": "/app/worker"}
}

// seedEnv is the environment documented by the original deployment (the
// seed README's table); compose must keep these values so that an operator
// following that document gets the behaviour it describes. POSTGRES_URI
// differs only in the host: the database service is called postgres here
// (the seed's postgres_db).
func seedEnv() map[string]string {
	return map[string]string{
		"APP_NAME":            "Messaging Server V1",
		"LOG_LEVEL":           "DEBUG",
		"MESSAGE_FETCH_LIMIT": "2",
		"CRON_INTERVAL":       "120",
		"MAX_CONCURRENT_JOBS": "5",
		"SERVER_GRACE_PERIOD": "30",
		"REDIS_HOST":          "redis",
		"REDIS_PORT":          "6379",
		"REDIS_DB":            "0",
		"REDIS_TTL":           "3600",
		"POSTGRES_URI":        "postgres://sample_user:sample_password@postgres:5432/messaging_db?sslmode=disable",
	}
}

// configVar is one environment variable internal/config reads.
type configVar struct {
	name       string
	hasDefault bool
}

// configVars lists the variables config.Config reads, from its struct tags,
// so that a variable added to the code is checked here without editing this
// file.
func configVars(t *testing.T) []configVar {
	t.Helper()
	typ := reflect.TypeFor[config.Config]()
	var vars []configVar
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			t.Errorf("config.Config.%s has no env tag: this test cannot tell whether the deployment sets it", f.Name)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" { // derived by config.Load, not read from the environment
			continue
		}
		_, hasDefault := f.Tag.Lookup("envDefault")
		vars = append(vars, configVar{name: name, hasDefault: hasDefault})
	}
	if len(vars) == 0 {
		t.Fatal("found no env tags on config.Config")
	}
	return vars
}

// repoRoot is the repository root: go test runs in the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found two levels above the package: %v", err)
	}
	return root
}

// loadCompose loads docker-compose.yaml as `docker compose` would, with
// environ as the only variables for interpolation (neither the process
// environment nor a local .env file leaks in).
func loadCompose(t *testing.T, environ map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	var env []string
	for k, v := range environ {
		env = append(env, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yaml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(env))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(t.Context())
}

// mustLoadCompose loads the compose file with WEBHOOK_URL set, as after
// `cp .env.example .env`.
func mustLoadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, map[string]string{"WEBHOOK_URL": testWebhookURL})
	if err != nil {
		t.Fatalf("load docker-compose.yaml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yaml has no service %q", name)
	}
	return s
}

// serviceEnv flattens a service's environment. A variable listed without a
// value would be copied from the Docker host's environment, which makes the
// deployment depend on the shell it was started from, so it is an error.
func serviceEnv(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	out := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value (it would be taken from the host environment)", s.Name, k)
			continue
		}
		out[k] = *v
	}
	return out
}

func environ(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// loadServiceConfig runs a service's environment through config.Load: what
// the program in that container will do at start.
func loadServiceConfig(t *testing.T, s types.ServiceConfig) config.Config {
	t.Helper()
	cfg, err := config.Load(environ(serviceEnv(t, s)))
	if err != nil {
		t.Fatalf("service %s: its environment fails config.Load: %v", s.Name, err)
	}
	return cfg
}

// TestComposeServices checks each service's shape: what it runs, what it
// publishes and how Docker learns that it is healthy.
func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := mustLoadCompose(t)
	tests := []struct {
		name    string
		command []string
		image   string
		// health returns a text the healthcheck must contain; nil means
		// the service needs no healthcheck.
		health func(config.Config) string
		// published returns the host:container ports to publish.
		published func(config.Config) []string
	}{
		{
			name:   "postgres",
			image:  "postgres:15-alpine",
			health: func(config.Config) string { return "pg_isready" },
		},
		{
			name:   "redis",
			image:  "redis:7-alpine",
			health: func(config.Config) string { return "redis-cli ping" },
		},
		{
			name:    "api",
			command: []string{"/app/api"},
			health: func(c config.Config) string {
				return fmt.Sprintf("http://127.0.0.1:%d/healthz", c.HTTPPort)
			},
			published: func(c config.Config) []string { return []string{fmt.Sprintf("%d:%d", c.HTTPPort, c.HTTPPort)} },
		},
		{
			name:    "scheduler",
			command: []string{"/app/scheduler"},
		},
		{
			name:    "worker",
			command: []string{"/app/worker"},
			health: func(c config.Config) string {
				return fmt.Sprintf("http://127.0.0.1:%d/metrics", c.MetricsPort)
			},
		},
	}

	var want []string
	for _, tt := range tests {
		want = append(want, tt.name)
	}
	slices.Sort(want)
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Errorf("services = %v, want exactly %v (a new service needs its checks here)", got, want)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, tt.name)
			var cfg config.Config
			if tt.command != nil {
				cfg = loadServiceConfig(t, s)
			}

			// A fixed container name allows one container per host,
			// which breaks --scale and a second checkout.
			if s.ContainerName != "" {
				t.Errorf("container_name = %q, want none", s.ContainerName)
			}
			var wantPorts, gotPorts []string
			if tt.published != nil {
				wantPorts = tt.published(cfg)
			}
			for _, port := range s.Ports {
				gotPorts = append(gotPorts, fmt.Sprintf("%s:%d", port.Published, port.Target))
			}
			if !slices.Equal(gotPorts, wantPorts) {
				t.Errorf("published ports = %v, want %v", gotPorts, wantPorts)
			}
			if tt.image != "" && s.Image != tt.image {
				t.Errorf("image = %q, want %q", s.Image, tt.image)
			}
			if tt.command != nil && !slices.Equal([]string(s.Command), tt.command) {
				t.Errorf("command = %q, want %q", s.Command, tt.command)
			}
			if s.Restart != types.RestartPolicyUnlessStopped {
				t.Errorf("restart = %q, want %q", s.Restart, types.RestartPolicyUnlessStopped)
			}

			if tt.health == nil {
				return
			}
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Fatalf("healthcheck = %+v, want one", hc)
			}
			if test := strings.Join(hc.Test, " "); !strings.Contains(test, tt.health(cfg)) {
				t.Errorf("healthcheck test %q does not contain %q", test, tt.health(cfg))
			}
			if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
				t.Errorf("healthcheck should set interval, timeout and retries: %+v", hc)
			}
		})
	}
}

// TestComposeAppServices checks what the three programs share: one image,
// a start after the databases are healthy and a stop that outlasts
// SERVER_GRACE_PERIOD.
func TestComposeAppServices(t *testing.T) {
	t.Parallel()
	p := mustLoadCompose(t)
	root := repoRoot(t)
	var images []string
	for name := range appServices() {
		images = append(images, service(t, p, name).Image)
	}
	if uniq := slices.Compact(slices.Sorted(slices.Values(images))); len(uniq) != 1 || uniq[0] == "" {
		t.Errorf("app services use images %q, want one shared name so compose builds the image once", images)
	}

	for name := range appServices() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, name)
			cfg := loadServiceConfig(t, s)

			if s.Build == nil || s.Build.Context != root {
				t.Errorf("build = %+v, want the repository root as context", s.Build)
			} else if s.Build.Dockerfile != "" && s.Build.Dockerfile != "Dockerfile" {
				t.Errorf("build.dockerfile = %q, want the root Dockerfile", s.Build.Dockerfile)
			}

			for _, dep := range []string{"postgres", "redis"} {
				d, ok := s.DependsOn[dep]
				if !ok {
					t.Errorf("depends_on lacks %s", dep)
					continue
				}
				if d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s: condition = %q, want %q", dep, d.Condition, types.ServiceConditionHealthy)
				}
			}

			if s.StopGracePeriod == nil {
				t.Fatalf("stop_grace_period is unset; Docker's 10 s default is shorter than SERVER_GRACE_PERIOD=%s", cfg.GracePeriod())
			}
			if got, least := time.Duration(*s.StopGracePeriod), cfg.GracePeriod()+shutdownMargin; got < least {
				t.Errorf("stop_grace_period = %s, want at least SERVER_GRACE_PERIOD (%s) + %s", got, cfg.GracePeriod(), shutdownMargin)
			}
		})
	}
}

// TestComposeEnvironment checks each program's environment against the
// variables internal/config reads, the seed's documented values and the
// postgres and redis services it must reach.
func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	p := mustLoadCompose(t)
	vars := configVars(t)
	pg := serviceEnv(t, service(t, p, "postgres"))

	for name := range appServices() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, name)
			env := serviceEnv(t, s)

			known := map[string]bool{}
			for _, v := range vars {
				known[v.name] = true
				if _, set := env[v.name]; !set && !v.hasDefault {
					t.Errorf("%s has no default in internal/config and is not set", v.name)
				}
			}
			for k := range env {
				if !known[k] {
					t.Errorf("%s is set but internal/config does not read it (a typo?)", k)
				}
			}
			if got := env["WEBHOOK_URL"]; got != testWebhookURL {
				t.Errorf("WEBHOOK_URL = %q, want the value from the environment %q", got, testWebhookURL)
			}
			for k, want := range seedEnv() {
				if got, ok := env[k]; !ok || got != want {
					t.Errorf("%s = %q (set %v), want the documented %q", k, got, ok, want)
				}
			}

			cfg := loadServiceConfig(t, s)
			if cfg.WebhookURL != testWebhookURL || cfg.WebhookAuthKey != "" {
				t.Errorf("config webhook = %q key %q, want %q and no key", cfg.WebhookURL, cfg.WebhookAuthKey, testWebhookURL)
			}

			// The programs must reach the databases compose starts.
			u, err := url.Parse(cfg.PostgresURI)
			if err != nil {
				t.Fatalf("POSTGRES_URI: %v", err)
			}
			pass, _ := u.User.Password()
			host, port, _ := net.SplitHostPort(u.Host)
			if _, ok := p.Services[host]; !ok || port != "5432" {
				t.Errorf("POSTGRES_URI host %q, want a compose service on port 5432", u.Host)
			}
			if u.User.Username() != pg["POSTGRES_USER"] || pass != pg["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] {
				t.Errorf("POSTGRES_URI user/password/database do not match the postgres service's POSTGRES_USER/PASSWORD/DB %v", pg)
			}
			if _, ok := p.Services[cfg.RedisHost]; !ok || cfg.RedisPort != 6379 {
				t.Errorf("redis address %s, want a compose service on port 6379", cfg.RedisAddr())
			}
		})
	}
}

// TestComposeOperatorSettings checks the variables an operator supplies
// through .env: WEBHOOK_URL is required, the optional secrets pass through
// unchanged and are empty when not given.
func TestComposeOperatorSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{name: "WEBHOOK_URL unset", env: map[string]string{}, wantErr: true},
		{name: "WEBHOOK_URL empty", env: map[string]string{"WEBHOOK_URL": ""}, wantErr: true},
		{name: "WEBHOOK_URL only", env: map[string]string{"WEBHOOK_URL": testWebhookURL}},
		{name: "every optional secret", env: map[string]string{
			"WEBHOOK_URL":      testWebhookURL,
			"WEBHOOK_AUTH_KEY": "auth-key",
			"WEBHOOK_SECRET":   "whsec_c2VjcmV0LWZvci10ZXN0cw==",
			"API_KEY":          "api-key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := loadCompose(t, tt.env)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "WEBHOOK_URL") {
					t.Fatalf("load error = %v, want one naming WEBHOOK_URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			for name := range appServices() {
				cfg := loadServiceConfig(t, service(t, p, name))
				got := map[string]string{
					"WEBHOOK_URL":      cfg.WebhookURL,
					"WEBHOOK_AUTH_KEY": cfg.WebhookAuthKey,
					"WEBHOOK_SECRET":   cfg.WebhookSecret,
					"API_KEY":          cfg.APIKey,
				}
				for k, v := range got {
					if v != tt.env[k] {
						t.Errorf("%s: %s = %q, want %q", name, k, v, tt.env[k])
					}
				}
			}
		})
	}
}

// TestComposePostgresStorage checks that the schema scripts reach the
// container's init directory and that data survives a restart.
func TestComposePostgresStorage(t *testing.T) {
	t.Parallel()
	p := mustLoadCompose(t)
	root := repoRoot(t)
	s := service(t, p, "postgres")
	byTarget := map[string]types.ServiceVolumeConfig{}
	for _, v := range s.Volumes {
		byTarget[v.Target] = v
	}

	t.Run("init scripts", func(t *testing.T) {
		t.Parallel()
		v, ok := byTarget["/docker-entrypoint-initdb.d"]
		if !ok {
			t.Fatalf("no volume targets /docker-entrypoint-initdb.d: %+v", s.Volumes)
		}
		if v.Type != types.VolumeTypeBind || v.Source != filepath.Join(root, "init") || !v.ReadOnly {
			t.Errorf("init mount = %+v, want a read-only bind of %s", v, filepath.Join(root, "init"))
		}
		sql, err := filepath.Glob(filepath.Join(root, "init", "*.sql"))
		if err != nil || len(sql) == 0 {
			t.Errorf("init/ has no .sql scripts (err %v)", err)
		}
	})
	t.Run("data volume", func(t *testing.T) {
		t.Parallel()
		v, ok := byTarget["/var/lib/postgresql/data"]
		if !ok || v.Type != types.VolumeTypeVolume {
			t.Fatalf("data mount = %+v, want a named volume on /var/lib/postgresql/data", v)
		}
		if _, ok := p.Volumes[v.Source]; !ok {
			t.Errorf("volume %q is not declared under volumes:", v.Source)
		}
	})
	t.Run("healthcheck matches the database", func(t *testing.T) {
		t.Parallel()
		env := serviceEnv(t, s)
		test := strings.Join(s.HealthCheck.Test, " ")
		for _, want := range []string{"-U " + env["POSTGRES_USER"], "-d " + env["POSTGRES_DB"], "-h 127.0.0.1"} {
			if !strings.Contains(test, want) {
				t.Errorf("healthcheck %q lacks %q", test, want)
			}
		}
	})
}

// dockerfile is the parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	warnings []string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	var df dockerfile
	for _, w := range res.Warnings {
		df.warnings = append(df.warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		df.warnings = append(df.warnings, fmt.Sprintf("%s: %s %v", rule, msg, loc))
	}})
	df.stages, _, err = instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(df.stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return df
}

func (df dockerfile) final() instructions.Stage { return df.stages[len(df.stages)-1] }

// runs returns the command lines of a stage's RUN instructions.
func runs(s instructions.Stage) []string {
	var out []string
	for _, c := range s.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			out = append(out, strings.Join(r.CmdLine, " "))
		}
	}
	return out
}

// goBuild returns the stage's `go build` command line.
func goBuild(t *testing.T, s instructions.Stage) string {
	t.Helper()
	for _, r := range runs(s) {
		if strings.Contains(r, "go build") {
			return r
		}
	}
	t.Fatalf("stage %q has no RUN go build", s.Name)
	return ""
}

func goVersion(t *testing.T) string {
	t.Helper()
	path := filepath.Join(repoRoot(t), "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Go == nil {
		t.Fatal("go.mod has no go line")
	}
	return f.Go.Version
}

// imagePrograms are the programs the image must hold: the three the compose
// services run, and the sink, so that a container can stand in for the
// webhook when trying the system out. Other cmd/ programs (benchmarks,
// tools) may stay out of the image.
func imagePrograms() []string { return []string{"api", "worker", "scheduler", "sink"} }

// built returns the programs a go build command line builds (its ./cmd/X
// arguments).
func built(cmd string) []string {
	var out []string
	for _, f := range strings.Fields(cmd) {
		if name, ok := strings.CutPrefix(f, "./cmd/"); ok {
			out = append(out, name)
		}
	}
	return out
}

// dockerignore parses .dockerignore the way the Docker CLI does. Each
// caller gets its own matcher: patternmatcher compiles patterns lazily on
// first use and is not safe for concurrent use.
func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func excluded(t *testing.T, pm *patternmatcher.PatternMatcher, path string) bool {
	t.Helper()
	ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestDockerfile checks the image build: toolchain, static binaries, layer
// order, user and what the compose services expect to find in it.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	root := repoRoot(t)
	build, final := df.stages[0], df.final()

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"no parser or lint warnings", func(t *testing.T) {
			if len(df.warnings) > 0 {
				t.Errorf("warnings:\n%s", strings.Join(df.warnings, "\n"))
			}
		}},
		{"multi-stage", func(t *testing.T) {
			if len(df.stages) < 2 {
				t.Fatalf("%d stage(s), want a build stage and a run stage", len(df.stages))
			}
			if build.Name == "" {
				t.Errorf("the build stage has no name to copy from")
			}
			var from []string
			for _, c := range final.Commands {
				if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
					from = append(from, cp.From)
				}
			}
			if !slices.Contains(from, build.Name) {
				t.Errorf("final stage copies from %v, want from %q", from, build.Name)
			}
		}},
		{"build image matches go.mod", func(t *testing.T) {
			if want := "golang:" + goVersion(t) + "-alpine"; build.BaseName != want {
				t.Errorf("build stage FROM %s, want %s (go.mod's go line)", build.BaseName, want)
			}
		}},
		{"run image is a pinned alpine", func(t *testing.T) {
			if !regexp.MustCompile(`^alpine:\d+\.\d+(\.\d+)?$`).MatchString(final.BaseName) {
				t.Errorf("final stage FROM %s, want alpine:X.Y", final.BaseName)
			}
			if !slices.ContainsFunc(runs(final), func(r string) bool { return strings.Contains(r, "ca-certificates") }) {
				t.Errorf("final stage does not install ca-certificates (https webhooks need it)")
			}
		}},
		{"static, trimmed build", func(t *testing.T) {
			cgoOff := strings.Contains(goBuild(t, build), "CGO_ENABLED=0")
			for _, c := range build.Commands {
				if e, ok := c.(*instructions.EnvCommand); ok {
					for _, kv := range e.Env {
						cgoOff = cgoOff || kv.Key == "CGO_ENABLED" && kv.Value == "0"
					}
				}
			}
			if !cgoOff {
				t.Errorf("build stage does not set CGO_ENABLED=0")
			}
			cmd := goBuild(t, build)
			for _, want := range []string{"-trimpath", `-ldflags "-s -w"`, "-o /out/"} {
				if !strings.Contains(cmd, want) {
					t.Errorf("go build %q lacks %s", cmd, want)
				}
			}
		}},
		{"builds the programs", func(t *testing.T) {
			got := built(goBuild(t, build))
			for _, p := range imagePrograms() {
				if !slices.Contains(got, p) {
					t.Errorf("go build does not build ./cmd/%s", p)
				}
			}
			for _, p := range got {
				if _, err := os.Stat(filepath.Join(root, "cmd", p, "main.go")); err != nil {
					t.Errorf("go build names ./cmd/%s, which has no main.go: %v", p, err)
				}
			}
		}},
		{"modules downloaded in their own layer", func(t *testing.T) {
			modCopy, download, srcCopy := -1, -1, -1
			for i, c := range build.Commands {
				switch c := c.(type) {
				case *instructions.CopyCommand:
					if slices.Equal(c.SourcePaths, []string{"go.mod", "go.sum"}) {
						modCopy = i
					} else if srcCopy < 0 {
						srcCopy = i
					}
				case *instructions.RunCommand:
					if strings.Contains(strings.Join(c.CmdLine, " "), "go mod download") {
						download = i
					}
				}
			}
			if modCopy < 0 || download < 0 || srcCopy < 0 || modCopy > download || download > srcCopy {
				t.Errorf("want COPY go.mod go.sum, then RUN go mod download, then COPY of the sources; got positions %d, %d, %d", modCopy, download, srcCopy)
			}
		}},
		{"runs as a non-root user", func(t *testing.T) {
			user := ""
			for _, c := range final.Commands {
				if u, ok := c.(*instructions.UserCommand); ok {
					user = u.User
				}
			}
			name, _, _ := strings.Cut(user, ":")
			if name == "" || name == "root" || name == "0" {
				t.Errorf("final stage USER = %q, want a non-root user", user)
			}
		}},
		{"default command is the api", func(t *testing.T) {
			var cmd *instructions.CmdCommand
			for _, c := range final.Commands {
				if cc, ok := c.(*instructions.CmdCommand); ok {
					cmd = cc
				}
			}
			if cmd == nil || !slices.Equal(cmd.CmdLine, []string{"/app/api"}) {
				t.Fatalf("CMD = %+v, want [\"/app/api\"]", cmd)
			}
			// Shell form would put /bin/sh between Docker's SIGTERM and
			// the program's graceful shutdown.
			if cmd.PrependShell {
				t.Errorf("CMD is in shell form, want exec form [\"/app/api\"]")
			}
		}},
		{"compose commands are built into /app", func(t *testing.T) {
			programs := built(goBuild(t, build))
			dest := ""
			for _, c := range final.Commands {
				if cp, ok := c.(*instructions.CopyCommand); ok && cp.From == build.Name {
					dest = cp.DestPath
				}
			}
			if strings.TrimSuffix(dest, "/") != "/app" {
				t.Errorf("binaries are copied to %q, want /app", dest)
			}
			for svc, bin := range appServices() {
				if !slices.Contains(programs, strings.TrimPrefix(bin, "/app/")) {
					t.Errorf("service %s runs %s, which the image does not build", svc, bin)
				}
			}
		}},
		{"copied sources exist and are in the context", func(t *testing.T) {
			pm := dockerignore(t)
			for _, s := range df.stages {
				for _, c := range s.Commands {
					cp, ok := c.(*instructions.CopyCommand)
					if !ok || cp.From != "" {
						continue
					}
					for _, src := range cp.SourcePaths {
						matches, err := filepath.Glob(filepath.Join(root, src))
						if err != nil || len(matches) == 0 {
							t.Errorf("COPY source %q does not exist in the repository", src)
							continue
						}
						if src != "." && excluded(t, pm, src) {
							t.Errorf("COPY source %q is excluded by .dockerignore", src)
						}
					}
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t)
		})
	}
}

// TestDockerignore checks that the build context keeps every source and
// drops secrets and local junk.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	tests := []struct {
		path string
		want bool // excluded
	}{
		{"go.mod", false},
		{"go.sum", false},
		{"cmd", false},
		{"internal", false},
		{"docs", false},
		{"docs/docs.go", false},
		{"docs/swagger.json", false},
		{"init", false},
		{".git", true},
		{".env", true},
		{"bin/api", true},
		{"internal/store/store.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			if got := excluded(t, dockerignore(t), tt.path); got != tt.want {
				t.Errorf("excluded(%s) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}

	// Every source file the build compiles or embeds must be sent.
	t.Run("every source file", func(t *testing.T) {
		t.Parallel()
		pm := dockerignore(t)
		for _, dir := range []string{"cmd", "internal", "docs", "init"} {
			err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					if os.IsNotExist(err) && path == filepath.Join(root, dir) {
						return filepath.SkipDir // docs/ may not be generated yet
					}
					return err
				}
				switch filepath.Ext(path) {
				case ".go", ".sql", ".json", ".yaml", ".yml":
				default:
					return nil
				}
				rel, err := filepath.Rel(root, path)
				if err != nil {
					return err
				}
				if excluded(t, pm, rel) {
					t.Errorf("%s is excluded by .dockerignore", rel)
				}
				return nil
			})
			if err != nil {
				t.Errorf("walk %s: %v", dir, err)
			}
		}
	})
}

// TestEnvExample checks that .env.example, copied to .env unchanged, gives
// a deployment whose programs start.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not KEY=value", line)
			continue
		}
		env[k] = v
	}
	if _, ok := env["WEBHOOK_URL"]; !ok {
		t.Fatal(".env.example does not set WEBHOOK_URL")
	}
	// The example, copied to .env unchanged, must give a deployment that
	// starts: compose interpolates and every program's config loads.
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatalf("docker-compose.yaml with .env.example: %v", err)
	}
	for name := range appServices() {
		loadServiceConfig(t, service(t, p, name))
	}
	if !strings.Contains(string(data), "WEBHOOK_AUTH_KEY") {
		t.Errorf(".env.example does not mention WEBHOOK_AUTH_KEY")
	}
}
