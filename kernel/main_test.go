package kernel

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/driver"
)

// The test binary doubles as an effect driver: with DOMINUS_TEST_DRIVER
// set it serves the driver protocol on stdin/stdout and exits.
func TestMain(m *testing.M) {
	if mode := os.Getenv("DOMINUS_TEST_DRIVER"); mode != "" {
		_ = driver.Serve(context.Background(), os.Stdin, os.Stdout, func(ctx context.Context, req driver.Request) driver.Response {
			switch {
			case strings.Contains(req.Resource, "hang"):
				time.Sleep(time.Hour)
			case strings.Contains(req.Resource, "crash"):
				os.Exit(3)
			case strings.Contains(req.Resource, "fail"):
				return driver.Response{Status: "failed", Code: 500}
			}
			return driver.Response{Status: "ok", Code: 200, OutputDigest: "00"}
		})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testDriver(t *testing.T, prefix string, timeout time.Duration) DriverConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return DriverConfig{Prefix: prefix, Command: []string{"/usr/bin/env", "DOMINUS_TEST_DRIVER=1", exe}, Timeout: timeout}
}
