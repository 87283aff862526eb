package store_test

import (
	"context"
	"regexp"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// schema describes a database's public schema as sorted lines, so that two
// databases can be compared whatever order they were built in.
func schema(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	const q = `
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || COALESCE('(' || character_maximum_length || ')', '')
       || ' null=' || is_nullable || ' default=' || COALESCE(column_default, '-')
       || ' pos=' || ordinal_position
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name <> 'goose_db_version'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'goose_db_version'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename <> 'goose_db_version'
UNION ALL
SELECT 'row dispatch_control ' || running || ' ' || budget FROM dispatch_control`
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestInitScriptsMatchMigrations(t *testing.T) {
	t.Parallel()
	_, migrated, _ := testenv.MigratedStore(t)

	initPool := testenv.NewPool(t, testenv.NewDatabase(t))
	testenv.RunInitScripts(t, initPool)
	if diff := cmp.Diff(schema(t, migrated), schema(t, initPool)); diff != "" {
		t.Fatalf("init/ and the migrations build different schemas (-migrated +init):\n%s", diff)
	}

	// The programs migrate a database init/ made: nothing changes, and the
	// sample rows are still pending.
	if err := store.Migrate(context.Background(), initPool, testenv.Logger(t)); err != nil {
		t.Fatalf("migrate over init/: %v", err)
	}
	if diff := cmp.Diff(schema(t, migrated), schema(t, initPool)); diff != "" {
		t.Fatalf("migrating over init/ changed the schema (-migrated +init):\n%s", diff)
	}
	var pending int
	if err := initPool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'pending' AND NOT is_sent`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("init/ sample rows are missing or not pending")
	}
}

// The schema's CHECK constraints accept exactly the statuses and attempt
// kinds internal/messaging names, in the same order.
func TestSchemaChecksMatchTheDomain(t *testing.T) {
	t.Parallel()
	_, pool, _ := testenv.MigratedStore(t)
	quoted := regexp.MustCompile(`'([a-z_]+)'`)
	for _, c := range []struct {
		table, column string
		want          []string
	}{
		{"messages", "status", messaging.Statuses},
		{"message_attempts", "outcome", messaging.Kinds},
	} {
		rows, err := pool.Query(context.Background(), `
SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND a.attname = $2`, c.table, c.column)
		if err != nil {
			t.Fatal(err)
		}
		defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(defs) != 1 {
			t.Fatalf("%s.%s: %d CHECK constraints %q, want 1", c.table, c.column, len(defs), defs)
		}
		var got []string
		for _, m := range quoted.FindAllStringSubmatch(defs[0], -1) {
			got = append(got, m[1])
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s.%s CHECK %s differs from internal/messaging (-want +got):\n%s", c.table, c.column, defs[0], diff)
		}
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	uri := testenv.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(context.Background(), uri)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- store.Migrate(context.Background(), pool, testenv.Logger(t))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	pool := testenv.NewPool(t, uri)
	before := schema(t, pool)
	if err := store.Migrate(context.Background(), pool, testenv.Logger(t)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if diff := cmp.Diff(before, schema(t, pool)); diff != "" {
		t.Fatalf("second migrate changed the schema:\n%s", diff)
	}
}

// A deployment made from the seed has only the four original columns and
// may already have sent rows; migrating must keep them sent.
func TestMigrateSeedEraDatabase(t *testing.T) {
	t.Parallel()
	pool := testenv.NewPool(t, testenv.NewDatabase(t))
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
CREATE TABLE messages (
    id VARCHAR(36) PRIMARY KEY, content VARCHAR(255) NOT NULL,
    phone_number VARCHAR(20) NOT NULL, is_sent BOOLEAN NOT NULL DEFAULT FALSE);
INSERT INTO messages VALUES ('old-sent', 'hi', '+905551111111', true), ('old-new', 'hi', '+905551111112', false)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	s := store.New(pool)
	for id, want := range map[string]string{"old-sent": messaging.StatusSent, "old-new": messaging.StatusPending} {
		m, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != want {
			t.Errorf("%s: status %q, want %q", id, m.Status, want)
		}
	}
}
