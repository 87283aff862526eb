package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// DefaultBaseline is the revision the baseline drain is built from by
// default: the delivery engine just before the lifecycle columns
// (send_at, expires_at, priority, the receipt columns, message_attempts and
// their indexes). The drain should lose no more than 10% against the same
// run without them. The engine fixes
// made after that revision that do not depend on those columns are carried
// to it by bench/baseline/5324d75.patch (see baselinePatchDir), so that the
// two drains differ by the lifecycle, not by those fixes.
const DefaultBaseline = "5324d75"

// baselinePatchDir holds, for a baseline revision REV, REV.patch: applied
// to the exported revision before it is built, when it exists.
const baselinePatchDir = "bench/baseline"

// targetVsBaseline is the lower bound of this code's drain / the baseline's.
const targetVsBaseline = 0.9

// baseline is an earlier revision's programs and schema.
type baseline struct {
	rev               string
	worker, scheduler string
	migrations        fs.FS
}

// buildBaseline exports revision rev of this repository (git archive, so
// the checkout is not touched) into dir, applies its patch from
// baselinePatchDir if there is one, and builds its worker and scheduler
// there; the drain migrates with the revision's own migrations.
func buildBaseline(ctx context.Context, rev, dir string) (*baseline, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	src := filepath.Join(dir, "baseline-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	tarball := filepath.Join(dir, "baseline.tar")
	steps := []*exec.Cmd{
		exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", "-o", tarball, rev),
		exec.CommandContext(ctx, "tar", "-xf", tarball, "-C", src),
		exec.CommandContext(ctx, "go", "build", "-C", src, "-o", filepath.Join(dir, "baseline")+string(os.PathSeparator),
			"./cmd/worker", "./cmd/scheduler"),
	}
	patch := filepath.Join(root, baselinePatchDir, rev+".patch")
	if _, err := os.Stat(patch); err == nil {
		apply := exec.CommandContext(ctx, "git", "apply", patch)
		apply.Dir = src
		steps = slices.Insert(steps, 2, apply)
	}
	for _, c := range steps {
		if out, err := c.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("baseline %s: %s: %w\n%s", rev, c.Args[0], err, out)
		}
	}
	return &baseline{
		rev:        rev,
		worker:     filepath.Join(dir, "baseline", "worker"),
		scheduler:  filepath.Join(dir, "baseline", "scheduler"),
		migrations: os.DirFS(filepath.Join(src, "internal", "store", "migrations")),
	}, nil
}
