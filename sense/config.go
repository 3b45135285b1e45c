package sense

import (
	"errors"
	"fmt"
)

// Fixed-point and input limits. Every number in the state is an integer;
// these bounds keep every product in int64 (metric values stay below
// 2^53, so value×100 and value×ClipUnits never overflow).
const (
	// Micro is the fixed-point one of ratios, shares and per-window counts:
	// a ratio of 1 is 1_000_000 ppm, 3 events are 3_000_000 micro-events.
	Micro = 1_000_000

	MaxEntityLen  = 256     // bytes in an entity name
	MaxOpLen      = 128     // bytes in an op name
	MaxReasonLen  = 256     // bytes in a trust-adjustment reason
	MaxEventBytes = 1 << 40 // bytes one observation may report

	// HardMaxEntities, HardMaxOps, HardMaxTransitions and HardMaxArchive
	// cap the corresponding Config fields.
	HardMaxEntities    = 1_000_000
	HardMaxOps         = 256
	HardMaxTransitions = 1024
	HardMaxArchive     = 65536

	maxWindowCount = 1 << 32 // events counted in one window; further events only move time and last op
	maxWindowBytes = 1 << 52 // bytes summed in one window, saturating
)

// Config holds the parameters of a Sensor. It is part of the encoded state,
// so a decoded Sensor judges with the parameters it was built with.
type Config struct {
	// WindowNs is the length of a baseline window in ledger nanoseconds.
	WindowNs int64
	// MinWindows is the number of closed windows with activity before an
	// entity's baseline is Established and its deviations are scored.
	MinWindows uint32
	// AlphaNum/AlphaDen is the EWMA weight of a new window (during the
	// first windows the weight is max(alpha, 1/(n+1)), a plain mean).
	AlphaNum uint32
	AlphaDen uint32
	// MaxEntities bounds the entities with a baseline and, separately, the
	// entities with a trust score. A new entity beyond it is refused.
	MaxEntities uint32
	// MaxOps bounds the distinct ops tracked per entity; further ops count
	// in the entity's "other" bucket until a slot frees.
	MaxOps uint32
	// MaxTransitions bounds the op→op transition counts kept per entity.
	MaxTransitions uint32
	// ArchiveCap bounds the posture archive; the oldest snapshot is dropped.
	ArchiveCap uint32
	// Tolerance is, per posture level, the deviation (in hundredths of a
	// deviation unit) a metric may reach before it scores. It must not
	// rise with the level: thresholds drop as posture tightens.
	Tolerance [NumLevels]int64
}

// DefaultConfig returns the parameters Dominus runs with: 10 s windows,
// established after 8 windows, alpha 1/8, 100 000 entities, 32 ops and 64
// transitions per entity, 1024 archived posture snapshots, and tolerances
// of 5, 4, 3 and 2 deviation units at relaxed, normal, elevated and
// critical.
func DefaultConfig() Config {
	return Config{
		WindowNs:       10_000_000_000,
		MinWindows:     8,
		AlphaNum:       1,
		AlphaDen:       8,
		MaxEntities:    100_000,
		MaxOps:         32,
		MaxTransitions: 64,
		ArchiveCap:     1024,
		Tolerance:      [NumLevels]int64{500, 400, 300, 200},
	}
}

// ErrConfig is wrapped by every Validate error.
var ErrConfig = errors.New("sense: invalid config")

// Validate reports the first parameter out of range, naming it and its value.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.WindowNs < 1_000_000 || c.WindowNs > 86_400_000_000_000:
		return bad("WindowNs = %d, want 1ms..24h in ns", c.WindowNs)
	case c.MinWindows < 1 || c.MinWindows > 10_000:
		return bad("MinWindows = %d, want 1..10000", c.MinWindows)
	case c.AlphaDen < 2 || c.AlphaDen > 1024:
		return bad("AlphaDen = %d, want 2..1024", c.AlphaDen)
	case c.AlphaNum < 1 || c.AlphaNum >= c.AlphaDen:
		return bad("AlphaNum = %d, want 1..AlphaDen-1 (AlphaDen = %d)", c.AlphaNum, c.AlphaDen)
	case c.MaxEntities < 1 || c.MaxEntities > HardMaxEntities:
		return bad("MaxEntities = %d, want 1..%d", c.MaxEntities, HardMaxEntities)
	case c.MaxOps < 1 || c.MaxOps > HardMaxOps:
		return bad("MaxOps = %d, want 1..%d", c.MaxOps, HardMaxOps)
	case c.MaxTransitions > HardMaxTransitions:
		return bad("MaxTransitions = %d, want 0..%d", c.MaxTransitions, HardMaxTransitions)
	case c.ArchiveCap < 1 || c.ArchiveCap > HardMaxArchive:
		return bad("ArchiveCap = %d, want 1..%d", c.ArchiveCap, HardMaxArchive)
	}
	for l := Level(0); l < NumLevels; l++ {
		if t := c.Tolerance[l]; t < 0 || t > MaxScore {
			return bad("Tolerance[%s] = %d, want 0..%d", l, t, MaxScore)
		}
		if l > 0 && c.Tolerance[l] > c.Tolerance[l-1] {
			return bad("Tolerance[%s] = %d exceeds Tolerance[%s] = %d, want non-increasing with level",
				l, c.Tolerance[l], l-1, c.Tolerance[l-1])
		}
	}
	return nil
}
