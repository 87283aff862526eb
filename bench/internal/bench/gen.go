package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

// numTemplates is how many message texts the generator cycles through.
const numTemplates = 6

// template returns one of the message texts: the lengths the seed's sample
// data has, plus one near the 160-character SMS limit, so that bodies are
// realistic in size.
func template(k int) string {
	switch k {
	case 1:
		return "Your verification code is %06d"
	case 2:
		return "Your order #%06d has shipped."
	case 3:
		return "Reminder: your appointment %06d is tomorrow at 10:00."
	case 4:
		return "Thank you for your payment, reference %06d."
	case 5:
		return "Your password was changed. If this was not you, call us at once and quote case %06d so that we can lock the account before anything else happens."
	default:
		return "Welcome to Messaging Server!"
	}
}

// Generator makes the backlog: message i always has the same id length,
// content and phone number, so the drain (which inserts the rows) and the
// wire limit (which POSTs them directly) send byte-for-byte comparable
// requests. Prefix tells runs apart; keep it the same length across runs.
type Generator struct {
	Prefix string
}

// ID is message i's id (also the webhook's Idempotency-Key).
func (g Generator) ID(i int) string { return fmt.Sprintf("%s-%08d", g.Prefix, i) }

// Message is message i as the worker sends it.
func (g Generator) Message(i int) webhook.Request {
	content := template(i % numTemplates)
	if i%numTemplates != 0 {
		content = fmt.Sprintf(content, i%1000000)
	}
	return webhook.Request{ID: g.ID(i), To: fmt.Sprintf("+90555%07d", i%10000000), Content: content}
}

// Insert writes messages [0, n) as pending rows with COPY, the way another
// system's bulk load would, with created_at a microsecond apart in id order
// so the claim's age order is well defined.
func (g Generator) Insert(ctx context.Context, pool *pgxpool.Pool, n int) error {
	base := time.Now().Add(-time.Hour)
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		m := g.Message(i)
		row := []any{m.ID, m.Content, m.To, base.Add(time.Duration(i) * time.Microsecond)}
		i++
		return row, nil
	})
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"id", "content", "phone_number", "created_at"}, src)
	if err != nil {
		return fmt.Errorf("insert backlog: %w", err)
	}
	return nil
}

// insertSentSQL adds rows $1..$2 as already sent history, older than any
// pending row, the shape months of production leave behind.
const insertSentSQL = `
INSERT INTO messages (id, content, phone_number, is_sent, status, attempts,
                      next_attempt_at, remote_message_id, sent_at, created_at)
SELECT 'sent-' || lpad(i::text, 10, '0'),
       'Your order #' || lpad((i % 1000000)::text, 6, '0') || ' has shipped.',
       '+90555' || lpad((i % 10000000)::text, 7, '0'),
       TRUE, 'sent', 1,
       now() - interval '40 days' + i * interval '1 millisecond',
       md5(i::text),
       now() - interval '40 days' + i * interval '1 millisecond' + interval '1 second',
       now() - interval '40 days' + i * interval '1 millisecond'
FROM generate_series($1::bigint, $2::bigint) AS i`

// InsertSent adds sent history rows numbered [from, to).
func InsertSent(ctx context.Context, pool *pgxpool.Pool, from, to int) error {
	if to <= from {
		return nil
	}
	if _, err := pool.Exec(ctx, insertSentSQL, from, to-1); err != nil {
		return fmt.Errorf("insert sent rows: %w", err)
	}
	return nil
}
