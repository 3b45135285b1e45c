package cortex

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MasterAlphaDen is the denominator of the baselines' EWMA weight: each
// sample moves the mean and deviation by 1/MasterAlphaDen of the way.
const MasterAlphaDen = 8

// MasterMaxScore caps a score (hundredths of a deviation unit).
const MasterMaxScore = 10000

// masterRelFloorPct is the smallest deviation unit as a share of |mean|.
const masterRelFloorPct = 10

// masterFloor is each kind's smallest deviation unit, in the kind's unit.
var masterFloor = [...]int64{
	TrustVelocity:    2,
	AnomalyIndicator: 200,
	OperationalTempo: 5,
	ResourcePressure: 200,
	DenyRate:         200,
}

var _ = [1]struct{}{}[len(kindTable)-len(masterFloor)] // every kind has a floor

// masterDir is +1 when a rise is the concern, −1 when a fall is.
func masterDir(k Kind) int64 {
	if k == TrustVelocity {
		return -1
	}
	return 1
}

// MasterConfig tunes the detector. Zero fields take DefaultMasterConfig's
// values.
type MasterConfig struct {
	// MinSamples is how many samples of a (domain, kind) are folded before
	// its samples are scored.
	MinSamples int
	// Threshold is the score (hundredths of a deviation unit) at which a
	// sample is an exceedance.
	Threshold int64
	// MinDomains is how many domains must exceed together for a finding;
	// at least 2.
	MinDomains int
	// WindowNs is the coincidence window: exceedances whose signal windows
	// lie within it of each other count as together.
	WindowNs int64
	// QuietNs ends an episode after this long (signal windows) without a
	// candidate it covers.
	QuietNs int64
	// ClipUnits bounds how far from the mean a scored sample is folded, in
	// deviation units.
	ClipUnits int64
	// MaxDomains bounds the domains tracked.
	MaxDomains int
	// MaxEpisodes bounds the live episodes per kind.
	MaxEpisodes int
}

// DefaultMasterConfig returns the default detector parameters.
func DefaultMasterConfig() MasterConfig {
	return MasterConfig{
		MinSamples:  8,
		Threshold:   400,
		MinDomains:  2,
		WindowNs:    10e9,
		QuietNs:     30e9,
		ClipUnits:   4,
		MaxDomains:  256,
		MaxEpisodes: 16,
	}
}

func (c MasterConfig) withDefaults() MasterConfig {
	d := DefaultMasterConfig()
	if c.MinSamples == 0 {
		c.MinSamples = d.MinSamples
	}
	if c.Threshold == 0 {
		c.Threshold = d.Threshold
	}
	if c.MinDomains == 0 {
		c.MinDomains = d.MinDomains
	}
	if c.WindowNs == 0 {
		c.WindowNs = d.WindowNs
	}
	if c.QuietNs == 0 {
		c.QuietNs = d.QuietNs
	}
	if c.ClipUnits == 0 {
		c.ClipUnits = d.ClipUnits
	}
	if c.MaxDomains == 0 {
		c.MaxDomains = d.MaxDomains
	}
	if c.MaxEpisodes == 0 {
		c.MaxEpisodes = d.MaxEpisodes
	}
	return c
}

// Validate names every offending value.
func (c MasterConfig) Validate() error {
	var errs []string
	if c.MinSamples < 1 || c.MinSamples > 1<<16 {
		errs = append(errs, fmt.Sprintf("min samples %d is outside 1..65536", c.MinSamples))
	}
	if c.Threshold < 1 || c.Threshold > MasterMaxScore {
		errs = append(errs, fmt.Sprintf("threshold %d is outside 1..%d", c.Threshold, MasterMaxScore))
	}
	if c.MinDomains < 2 || c.MinDomains > 256 {
		errs = append(errs, fmt.Sprintf("min domains %d is outside 2..256", c.MinDomains))
	}
	if c.WindowNs < 1e6 || c.WindowNs > 3600e9 {
		errs = append(errs, fmt.Sprintf("window %d ns is outside 1ms..1h", c.WindowNs))
	}
	if c.QuietNs < c.WindowNs || c.QuietNs > 24*3600e9 {
		errs = append(errs, fmt.Sprintf("quiet %d ns is outside window (%d ns)..24h", c.QuietNs, c.WindowNs))
	}
	if c.ClipUnits < 1 || c.ClipUnits > 100 {
		errs = append(errs, fmt.Sprintf("clip units %d is outside 1..100", c.ClipUnits))
	}
	if c.MaxDomains < 2 || c.MaxDomains > 1<<16 {
		errs = append(errs, fmt.Sprintf("max domains %d is outside 2..65536", c.MaxDomains))
	}
	if c.MaxEpisodes < 1 || c.MaxEpisodes > 1024 {
		errs = append(errs, fmt.Sprintf("max episodes %d is outside 1..1024", c.MaxEpisodes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cortex master config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Evidence is one signal a finding rests on and its score.
type Evidence struct {
	Signal Signal
	Score  int64 // hundredths of a deviation unit
}

// Finding is a cross-domain anomaly: the same kind of signal left its
// baseline in several domains within the coincidence window.
type Finding struct {
	Kind       Kind
	Domains    []string   // sorted
	Evidence   []Evidence // one per domain, in Domains order
	Confidence int64      // 0..1000
	Window     int64      // the newest evidence window (unix ns)
}

// FindingKindPrefix starts the name of every finding kind.
const FindingKindPrefix = "cross_domain."

// Name is the finding's kind as the ledger records it:
// "cross_domain.<signal kind>".
func (f Finding) Name() string { return FindingKindPrefix + f.Kind.String() }

// EvidenceIDs returns the ids (SignalID) of the evidence signals.
func (f Finding) EvidenceIDs() []string {
	out := make([]string, len(f.Evidence))
	for i, e := range f.Evidence {
		out[i] = SignalID(e.Signal)
	}
	return out
}

// Summary is a one-line description of the finding, at most 1024 bytes.
func (f Finding) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s left its baseline in %d domains together:", f.Kind, len(f.Domains))
	for i, e := range f.Evidence {
		part := fmt.Sprintf(" %s=%d (%d.%02d units)", e.Signal.Domain, e.Signal.Value, e.Score/100, e.Score%100)
		if i > 0 {
			part = "," + part
		}
		if b.Len()+len(part) > 1000 {
			b.WriteString(" ...")
			break
		}
		b.WriteString(part)
	}
	return b.String()
}

// SignalID names a signal: "domain/node/kind/seq" (kind by name). Domain
// and node names may contain '/', so the id is for reading and matching,
// not for splitting.
func SignalID(s Signal) string {
	return s.Domain + "/" + s.Node + "/" + s.Kind.String() + "/" + strconv.FormatUint(s.Seq, 10)
}

// BaselineStatus is a read-only view of one (domain, kind) baseline.
type BaselineStatus struct {
	Samples   int   // samples folded (saturates at 1<<30)
	Mean      int64 // thousandths of the kind's unit
	Scale     int64 // deviation unit, thousandths of the kind's unit
	LastScore int64 // score of the last sample (0 while not yet scored)
	LastWin   int64 // window of the last sample
}

type masterKey struct {
	domain string
	kind   Kind
}

type series struct {
	n         int
	mean, mad int64 // thousandths
	last      int64 // window of the last sample; valid when n > 0
	lastScore int64
	exceed    *Evidence // the latest exceedance
}

type episode struct {
	domains []string // sorted
	window  int64
}

// Master is the sovereign's detector: a pure fold of the signals the pool
// accepts into findings that a sovereign leader proposes to its ledger as
// knowledge. It reads no clock and does no I/O; its output is a function
// of the signals it is given and their order. It decides nothing: a
// finding is evidence for a human or a planner, ledgered with the ids of
// the signals it rests on.
//
// Method. For every (domain, kind) the master keeps a robust running
// baseline of the domain's value, taking each domain's signals in window
// order (a signal whose window is not after the last one seen for its
// (domain, kind) is ignored, so replays, relays and a slower node of the
// same domain change nothing):
//
//   - mean m and mean absolute deviation d (of each sample from the mean
//     before it), as exponentially weighted moving averages with alpha
//     1/MasterAlphaDen (1/8), the plain running mean while fewer than
//     MasterAlphaDen samples have been folded. Values are held in
//     thousandths of the signal's unit; all arithmetic is integer.
//   - The deviation unit is scale = max(d, the kind's floor, |m|/10). The
//     floors (trust velocity 2 points; anomaly indicator, resource
//     pressure and deny rate 200 basis points; operational tempo 5
//     syscalls) keep a flat baseline from turning noise into alarms.
//   - A sample x is scored against the baseline before it is folded:
//     score = max(0, dir × (x − m)) × 100 / scale, in hundredths of a
//     unit, at most MasterMaxScore. dir is −1 for trust velocity (falling
//     trust is the concern) and +1 for every other kind (more anomalies,
//     tempo, pressure or denials). A (domain, kind) is scored only after
//     MinSamples samples.
//   - Once scored, a sample is folded clipped to m ± ClipUnits × scale,
//     so a spike barely moves the baseline while a sustained shift is
//     followed within a few samples.
//
// A sample whose score reaches Threshold is an exceedance; the master
// keeps the latest exceedance of each (domain, kind). On every new
// exceedance of kind k at window w, the domains whose latest exceedance
// of k lies within WindowNs of w are the candidate set. When it holds at
// least MinDomains domains, that is a cross-domain finding: the same
// measurement left its baseline in several independent kernels at once,
// which one kernel's own sensing cannot see. A spike in one domain alone
// is never a finding, however large.
//
// Confidence (0..1000) = min(1000, c̄/2 + 250 × (domains − 1)), where c̄
// is the mean of the evidence scores each capped at 1000 (ten units): two
// domains just over a threshold of four units give 450, three domains
// ten units out give 1000.
//
// Findings are not repeated. An episode is a reported (kind, domain set)
// and the newest window it covered. A candidate whose domains are a
// subset of a live episode of its kind is suppressed and extends that
// episode to its window; an episode ends once QuietNs of signal windows
// pass without such a candidate. A candidate with a domain the episode
// lacks is reported (the condition spread). At most MaxEpisodes episodes
// per kind are kept (the oldest ends first).
//
// Bounds: at most MaxDomains domains are tracked (signals of further
// domains are ignored and counted), so memory is bounded by MaxDomains ×
// kinds series and MaxEpisodes episodes per kind; a finding carries one
// evidence signal per domain.
//
// A Master is not safe for concurrent use.
type Master struct {
	cfg      MasterConfig
	series   map[masterKey]*series
	domains  []string // sorted, at most MaxDomains
	episodes [len(kindTable)][]episode
	ignored  uint64
}

// NewMaster returns an empty detector.
func NewMaster(cfg MasterConfig) (*Master, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Master{cfg: cfg, series: make(map[masterKey]*series)}, nil
}

// Config returns the detector's parameters.
func (m *Master) Config() MasterConfig { return m.cfg }

// Ignored counts signals of domains beyond MaxDomains.
func (m *Master) Ignored() uint64 { return m.ignored }

// Baseline returns the baseline of (domain, kind).
func (m *Master) Baseline(domain string, kind Kind) (BaselineStatus, bool) {
	s, ok := m.series[masterKey{domain, kind}]
	if !ok {
		return BaselineStatus{}, false
	}
	return BaselineStatus{Samples: s.n, Mean: s.mean, Scale: m.scale(kind, s), LastScore: s.lastScore, LastWin: s.last}, true
}

// Observe folds one signal and returns the findings it completes (at most
// one; nil for most signals). Signals of unknown kinds, out-of-bounds
// values and windows not after their (domain, kind)'s last are ignored.
func (m *Master) Observe(sig Signal) []Finding {
	lo, hi, ok := sig.Kind.Bounds()
	if !ok || sig.Value < lo || sig.Value > hi || sig.Domain == "" {
		return nil
	}
	k := masterKey{sig.Domain, sig.Kind}
	s := m.series[k]
	if s == nil {
		if !m.track(sig.Domain) {
			m.ignored++
			return nil
		}
		s = &series{}
		m.series[k] = s
	} else if sig.Window <= s.last {
		return nil
	}
	s.last = sig.Window
	x := sig.Value * 1000
	score := int64(0)
	if s.n >= m.cfg.MinSamples {
		score = m.score(sig.Kind, s, x)
	}
	s.lastScore = score
	m.fold(sig.Kind, s, x)
	if score < m.cfg.Threshold {
		return nil
	}
	s.exceed = &Evidence{Signal: sig, Score: score}
	if f, ok := m.detect(sig.Kind, sig.Window); ok {
		return []Finding{f}
	}
	return nil
}

// track adds domain to the tracked set; false when the set is full.
func (m *Master) track(domain string) bool {
	i, found := slices.BinarySearch(m.domains, domain)
	if found {
		return true
	}
	if len(m.domains) >= m.cfg.MaxDomains {
		return false
	}
	m.domains = slices.Insert(m.domains, i, domain)
	return true
}

func (m *Master) scale(kind Kind, s *series) int64 {
	sc := max(s.mad, masterFloor[kind]*1000, abs64(s.mean)*masterRelFloorPct/100)
	return max(sc, 1)
}

func (m *Master) score(kind Kind, s *series, x int64) int64 {
	dev := masterDir(kind) * (x - s.mean)
	if dev <= 0 {
		return 0
	}
	sc := m.scale(kind, s)
	if dev/sc >= MasterMaxScore/100 {
		return MasterMaxScore
	}
	return min(dev*100/sc, MasterMaxScore)
}

func (m *Master) fold(kind Kind, s *series, x int64) {
	if s.n == 0 {
		s.mean, s.mad, s.n = x, 0, 1
		return
	}
	if s.n >= m.cfg.MinSamples {
		c := m.cfg.ClipUnits * m.scale(kind, s)
		x = min(max(x, s.mean-c), s.mean+c)
	}
	w := int64(min(s.n+1, MasterAlphaDen))
	d := abs64(x - s.mean)
	s.mean += (x - s.mean) / w
	s.mad += (d - s.mad) / w
	if s.n < 1<<30 {
		s.n++
	}
}

// detect looks for a finding of kind around window w (see the method).
func (m *Master) detect(kind Kind, w int64) (Finding, bool) {
	var ev []Evidence
	for _, d := range m.domains {
		s := m.series[masterKey{d, kind}]
		if s == nil || s.exceed == nil || abs64(s.exceed.Signal.Window-w) > m.cfg.WindowNs {
			continue
		}
		ev = append(ev, *s.exceed)
	}
	if len(ev) < m.cfg.MinDomains {
		return Finding{}, false
	}
	f := Finding{Kind: kind, Evidence: ev}
	var sum int64
	for _, e := range ev {
		f.Domains = append(f.Domains, e.Signal.Domain)
		f.Window = max(f.Window, e.Signal.Window)
		sum += min(e.Score, 1000)
	}
	f.Confidence = min(1000, sum/int64(len(ev))/2+250*int64(len(ev)-1))
	// Episodes: end the quiet ones, then suppress what a live one covers.
	eps := m.episodes[kind][:0]
	for _, e := range m.episodes[kind] {
		if f.Window-e.window <= m.cfg.QuietNs {
			eps = append(eps, e)
		}
	}
	m.episodes[kind] = eps
	covered := false
	for i := range eps {
		if subset(f.Domains, eps[i].domains) {
			eps[i].window = max(eps[i].window, f.Window)
			covered = true
		}
	}
	if covered {
		return Finding{}, false
	}
	if len(eps) >= m.cfg.MaxEpisodes {
		oldest := 0
		for i := range eps {
			if eps[i].window < eps[oldest].window {
				oldest = i
			}
		}
		eps = slices.Delete(eps, oldest, oldest+1)
	}
	m.episodes[kind] = append(eps, episode{domains: slices.Clone(f.Domains), window: f.Window})
	return f, true
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
