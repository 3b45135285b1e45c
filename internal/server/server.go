// Package server composes a kernel node with the services every Dominus
// node runs: the one place that imports both kernel and the packages that
// plug into it. The agent command and the tests that run whole nodes
// start nodes here.
package server

import (
	"github.com/dominus-kernel/dominus/evolution"
	"github.com/dominus-kernel/dominus/gatewayapi"
	"github.com/dominus-kernel/dominus/history"
	"github.com/dominus-kernel/dominus/kernel"
	"github.com/dominus-kernel/dominus/sensing"
	"github.com/dominus-kernel/dominus/transparency"
)

// Services are the services of a node configured by cfg, in start order.
func Services(cfg kernel.Config) []kernel.Service {
	tc := transparency.DefaultConfig(cfg.DataDir)
	tc.Logger = cfg.Logger
	every := uint64(history.DefaultEvery)
	if cfg.HistoryEvery != nil {
		every = *cfg.HistoryEvery
	}
	hc := history.Config{Every: every, Logger: cfg.Logger}
	return []kernel.Service{sensing.New(), gatewayapi.New(0), transparency.New(tc), history.New(hc), evolution.New()}
}

// New starts a kernel node with its services (kernel.New).
func New(cfg kernel.Config) (*kernel.Node, error) {
	return kernel.New(cfg, Services(cfg)...)
}
