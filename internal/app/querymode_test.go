package app_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// A plain POSTGRES_URI to a direct server gets prepared statements (the
// tests reach PostgreSQL over TCP with nothing between; through PgBouncer
// the scaleout tests see the pooler-safe mode); a default_query_exec_mode
// in the URI wins, on the pool and on the migrations' own pool alike (the
// migrations must succeed with either).
func TestQueryExecMode(t *testing.T) {
	t.Parallel()
	with := func(uri, mode string) string {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("default_query_exec_mode", mode)
		u.RawQuery = q.Encode()
		return u.String()
	}
	cases := []struct {
		name    string
		mode    string // in the URI; "" for none
		migrate bool   // POSTGRES_MIGRATE_URI set too
		want    pgx.QueryExecMode
	}{
		{"plain URI, direct", "", false, pgx.QueryExecModeCacheStatement},
		{"plain URI, direct, separate migrations", "", true, pgx.QueryExecModeCacheStatement},
		{"explicit cache_describe", "cache_describe", false, pgx.QueryExecModeCacheDescribe},
		{"explicit cache_statement", "cache_statement", false, pgx.QueryExecModeCacheStatement},
		{"explicit exec", "exec", true, pgx.QueryExecModeExec},
		{"explicit simple_protocol", "simple_protocol", false, pgx.QueryExecModeSimpleProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			uri := testenv.NewDatabase(t)
			if tc.mode != "" {
				uri = with(uri, tc.mode)
			}
			vars := []string{"WEBHOOK_URL=http://127.0.0.1:1/hook", "METRICS_PORT=0"}
			if tc.migrate {
				vars = append(vars, "POSTGRES_MIGRATE_URI="+uri)
			}
			cfg := testenv.Config(t, uri, testenv.Queue(t), vars...)
			d, err := app.Open(context.Background(), cfg, testenv.Logger(t), 4, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.Pool.Config().ConnConfig.DefaultQueryExecMode; got != tc.want {
				t.Fatalf("mode %v, want %v", got, tc.want)
			}
			// The statement that records outcomes passes arrays; it must
			// work in the chosen mode.
			var n int
			if err := d.Pool.QueryRow(context.Background(),
				`SELECT cardinality($1::text[]) + cardinality($2::int[]) + cardinality($3::timestamptz[])`,
				[]string{"a", "b"}, []int32{1}, []time.Time{time.Now()}).Scan(&n); err != nil || n != 4 {
				t.Fatalf("arrays: %d, %v", n, err)
			}
		})
	}
}
