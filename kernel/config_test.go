package kernel

import (
	"strings"
	"testing"
)

// Validate accepts the defaults and names each out-of-range value.
func TestConfigValidateNamesOffendingValues(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Name, c.DataDir, c.BindAddr = "n1", t.TempDir(), "127.0.0.1:7000"
		return c
	}
	ok := base()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if ok.RaftLogCache != DefaultRaftLogCache {
		t.Fatalf("default raft log cache %d, want %d", ok.RaftLogCache, DefaultRaftLogCache)
	}
	off := base()
	off.RaftLogCache = 0 // disabled is valid
	if err := off.Validate(); err != nil {
		t.Fatalf("raft log cache 0: %v", err)
	}
	for _, c := range []struct {
		what string
		edit func(*Config)
	}{
		{"raft log cache -1", func(c *Config) { c.RaftLogCache = -1 }},
		{"raft log cache 65537", func(c *Config) { c.RaftLogCache = 1<<16 + 1 }},
		{"snapshot threshold 15", func(c *Config) { c.SnapshotThreshold = 15 }},
	} {
		cfg := base()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.what) {
			t.Errorf("%s: Validate() = %v, want an error naming it", c.what, err)
		}
	}
}
