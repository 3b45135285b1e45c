//go:build !canon_alt && !canon_tampered

package canon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompiledHashMatchesArticles guards the compiled constant: it must be the
// SHA-256 of articles.md as it is on disk. After editing articles.md, put the
// value this test prints into compiledHashHex in canon_default.go and
// canon_tampered.go.
func TestCompiledHashMatchesArticles(t *testing.T) {
	if got := fileHashHex(t, "articles.md"); got != compiledHashHex {
		t.Fatalf("articles.md hashes to %s but compiledHashHex is %s; set compiledHashHex to %s in canon_default.go and canon_tampered.go", got, compiledHashHex, got)
	}
}

func TestVerifyDefault(t *testing.T) {
	if err := Verify(); err != nil {
		t.Fatalf("Verify() = %v, want nil", err)
	}
}

// TestVerifyBinaries builds the verify command with each canon build tag and
// runs the real binaries.
func TestVerifyBinaries(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		}
		if _, statErr := os.Stat(goTool); goTool == "" || statErr != nil {
			t.Skipf("go tool not found: %v", err)
		}
	}
	defaultHash := fileHashHex(t, "articles.md")
	altHash := fileHashHex(t, filepath.Join("testdata", "articles_alt.md"))
	tamperedHash := fileHashHex(t, filepath.Join("testdata", "articles_tampered.md"))
	dir := t.TempDir()

	build := func(t *testing.T, tags string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out := filepath.Join(dir, "verify-"+tags)
		args := []string{"build"}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		args = append(args, "-o", out, "./internal/verifycmd")
		cmd := exec.CommandContext(ctx, goTool, args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return out
	}
	run := func(t *testing.T, bin string) (stdout, stderr string, exitCode int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var o, e bytes.Buffer
		cmd := exec.CommandContext(ctx, bin)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			exitCode = 0
		case errors.As(err, &ee) && ee.Exited():
			exitCode = ee.ExitCode()
		default:
			t.Fatalf("run %s: %v", bin, err)
		}
		return strings.TrimSpace(o.String()), strings.TrimSpace(e.String()), exitCode
	}

	t.Run("default", func(t *testing.T) {
		stdout, stderr, code := run(t, build(t, ""))
		if code != 0 {
			t.Fatalf("exit %d, stderr %q; want exit 0", code, stderr)
		}
		if stdout != defaultHash {
			t.Fatalf("printed %q, want default canon hash %s", stdout, defaultHash)
		}
	})
	t.Run("canon_alt", func(t *testing.T) {
		stdout, stderr, code := run(t, build(t, "canon_alt"))
		if code != 0 {
			t.Fatalf("exit %d, stderr %q; want exit 0", code, stderr)
		}
		if stdout != altHash {
			t.Fatalf("printed %q, want alternative canon hash %s", stdout, altHash)
		}
		if stdout == defaultHash {
			t.Fatalf("alternative build prints the default canon hash %s", defaultHash)
		}
	})
	t.Run("canon_tampered", func(t *testing.T) {
		stdout, stderr, code := run(t, build(t, "canon_tampered"))
		if code == 0 {
			t.Fatalf("exit 0 (stdout %q); a tampered canon must fail verification", stdout)
		}
		t.Logf("tampered binary: exit %d, stderr %q", code, stderr)
		if !strings.Contains(stderr, tamperedHash) {
			t.Errorf("stderr %q does not name the computed hash %s", stderr, tamperedHash)
		}
		if !strings.Contains(stderr, defaultHash) {
			t.Errorf("stderr %q does not name the compiled hash %s", stderr, defaultHash)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
	})
}
