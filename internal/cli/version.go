package cli

// Version is the dominus release, set at build time with
// -ldflags "-X github.com/dominus-kernel/dominus/internal/cli.Version=...".
var Version = "dev"
