package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
)

// productModule is the module path of the programs the bench measures.
const productModule = "github.com/messaging-server/messaging-server"

// repoRoot returns the repository root: the nearest directory at or above
// the working directory whose go.mod declares productModule. The bench is a
// module of its own (bench/go.mod), so the nearest go.mod is not enough:
// the walk passes over the bench's and the River peer's.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		switch {
		case err == nil:
			if modfile.ModulePath(b) == productModule {
				return dir, nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("find the repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s at or above the working directory: run from the repository", productModule)
		}
		dir = parent
	}
}
