package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckBinariesNamesTheReferenceBinary checks that a missing or
// untagged reference binary stops the run before any cluster starts, with
// an error that says how to get one, and that nothing asks for it when
// no reference cluster will run. (A tagged binary is exercised by
// TestRealRunReference.)
func TestCheckBinariesNamesTheReferenceBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), ReferenceBinaryName)
	for _, c := range []struct {
		name    string
		edit    func(*Config)
		wantErr []string
	}{
		{"missing", func(c *Config) { c.ReferenceExe = missing }, []string{missing, "-tags benchreference", "--reference-binary", "--targets gate"}},
		{"untagged", func(c *Config) { c.ReferenceExe = os.Args[0] }, []string{os.Args[0], "not built with -tags benchreference"}},
		{"gate only", func(c *Config) { c.ReferenceExe, c.Targets = missing, []string{TargetGate} }, nil},
		{"no load mode", func(c *Config) { c.ReferenceExe, c.Modes = missing, []string{ModeFailover} }, nil},
		{"existing cluster", func(c *Config) { c.ReferenceExe, c.Addr = missing, []string{"http://127.0.0.1:8101"} }, nil},
	} {
		cfg := DefaultConfig()
		cfg.Exe = os.Args[0]
		c.edit(&cfg)
		err := cfg.checkBinaries()
		if c.wantErr == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
}
