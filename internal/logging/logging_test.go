package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/logging"
)

func TestTextHasNoColourOffATerminal(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	logging.New(&b, "DEBUG", "text").Debug("hello", "message_id", "m-1", "attempt", 2)
	out := b.String()
	if strings.Contains(out, "\x1b[") || !strings.Contains(out, "message_id=m-1") || !strings.Contains(out, "attempt=2") {
		t.Fatalf("got %q", out)
	}
}

func TestJSONAndLevels(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := logging.New(&b, "WARN", "json")
	l.Info("dropped")
	l.Warn("kept", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "kept" || rec["k"] != "v" {
		t.Fatalf("got %q (%v)", b.String(), err)
	}
}

func TestLevelMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    string
		slog  slog.Level
		asynq asynq.LogLevel
	}{
		{"DEBUG", slog.LevelDebug, asynq.DebugLevel},
		{"info", slog.LevelInfo, asynq.InfoLevel},
		{"WARN", slog.LevelWarn, asynq.WarnLevel},
		{"ERROR", slog.LevelError, asynq.ErrorLevel},
		{"", slog.LevelInfo, asynq.InfoLevel},
	}
	for _, c := range cases {
		if got := logging.ParseLevel(c.in); got != c.slog {
			t.Errorf("ParseLevel(%q) = %v", c.in, got)
		}
		if got := logging.AsynqLevel(c.in); got != c.asynq {
			t.Errorf("AsynqLevel(%q) = %v", c.in, got)
		}
	}
}

func TestAsynqAdapter(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	a := logging.Asynq{L: logging.New(&b, "DEBUG", "json")}
	a.Debug("d")
	a.Info("i ", 1)
	a.Warn("w")
	a.Error("e")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], `"msg":"i 1"`) || !strings.Contains(lines[3], `"lib":"asynq"`) {
		t.Fatalf("got %q", b.String())
	}
}
