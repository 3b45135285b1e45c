// Package sense is sensing under governance (DESIGN.md §5): behavioural
// baselines, trust and posture, as a pure fold that the deterministic
// ledger (fsm) owns and replays. It decides nothing by itself; its outputs
// are the policy context of the gate (tier, trust, posture, deviation) and
// evidence the caller ledgers.
//
// # What it owns
//
//   - Baselines: per-entity statistics over ledger-time windows
//     (Config.WindowNs, 10 s by default; window index ⌊t/WindowNs⌋). Only
//     windows with activity count: an idle entity's baseline does not
//     decay. Per window: event rate, deny ratio, error ratio, bytes
//     written, external effects, op mix (L1 distance of the window's op
//     shares from the baseline's), transition novelty (share of op→op
//     transitions never seen before) and novel ops (ops never seen
//     before). Each of the first seven has an EWMA mean, mean absolute
//     deviation and mean upper deviation (Stat); alpha is
//     AlphaNum/AlphaDen (1/8), the plain mean while the baseline is young.
//     An established baseline folds a window clipped to mean ±
//     ClipUnits×scale, so a transient spike barely moves it while a
//     sustained shift is followed within a few windows and slow drift is
//     absorbed. Bounded per entity: MaxOps ops (32; further ops count as
//     "other"), MaxTransitions transition counts (64; decayed by 1/8 per
//     window), and a 2048-bit seen-set of ops and transitions.
//   - Trust: 0..1000 points per entity (kept in milli-points), moved by
//     each decision and by deviation, and by governed adjustments.
//   - Posture: typed external signals folded into a sensitivity score and
//     a level with hysteresis; every accepted signal yields a
//     PostureChange to ledger.
//   - PostureArchive: a bounded ring of posture snapshots with
//     nearest-neighbour search and "what happened next".
//   - Sensor: all four, with the canonical encoding (Encode, Decode,
//     Digest) that fsm snapshots carry.
//
// # Scales and thresholds
//
// Fixed point: ratios and shares in ppm (Micro = 10^6 is one); counts per
// window in micro-units (3 events = 3 000 000); bytes in bytes.
//
// Deviation: a metric's deviation unit (scale) is max(MAD, 2×Up, an
// absolute floor, a fraction of the mean, and √mean for counts); Dev is
// (value − mean)/scale in hundredths. Window ratios, op shares and
// transition novelty are shrunk toward the baseline by ShrinkEvents
// pseudo-events, so a window's first events do not read as extremes. A
// metric's Score is max(0, Dev − tolerance); the tolerance is
// Config.Tolerance[posture] (hundredths: relaxed 500, normal 400,
// elevated 300, critical 200), widened by ×(1 + MinWindows/windows) while
// the baseline is young. Each novel op scores NovelOpScore (100) once the
// entity's vocabulary has been stable for MinWindows windows. The Report
// Score is the largest metric score: 0 = normal, 100 = one deviation unit
// beyond tolerance, capped at MaxScore. Scores are one-sided: only more
// (calls, denies, errors, bytes, effects, change) than usual scores.
// Nothing scores before the baseline is Established (MinWindows closed
// windows with activity, 8 by default). At critical posture a Report
// with Score > 0 has Escalate set: the call needs human review.
//
// Trust: new entities start at 500 (standard). Tiers: probation < 400 ≤
// standard < 800 ≤ trusted. Permit +0.2, deny −2, error −1 × posture
// weight, escalate 0; a window's peak deviation score charges 2 points
// per deviation unit (up to 100 points per window) × posture weight.
// Posture weights: relaxed 50 %, normal 100 %, elevated 200 %, critical
// 400 %. Governed adjustments move at most ±1000 points with a reason.
// Scores are clamped to 0..1000.
//
// Posture: signals incident_level 0..100, market_volatility 0..100,
// error_budget_burn 0..1000, threat_level 0..100 (unknown kinds and
// out-of-range values are *SignalError). Sensitivity (0..1000) is the
// loudest weighted signal plus a quarter of the weighted mean (see
// Sensitivity); incident_level 100 alone gives 1000. Levels: critical
// enter ≥ 800 / stay ≥ 700, elevated enter ≥ 500 / stay ≥ 400, relaxed
// enter < 100 / stay < 200, normal otherwise; before any signal the level
// is normal.
//
// # Invariants
//
//   - Pure: every method is a function of the state and its arguments. No
//     clock (time is ledger time passed in, unix ns), randomness,
//     environment, files, network, goroutines or select; map order never
//     reaches output (entities are encoded in sorted order); no floating
//     point anywhere.
//   - A rejected input (bad name, op, decision, bytes, time, signal kind or
//     value, adjustment, or an entity beyond the limit) returns an error
//     and changes nothing.
//   - Every collection is bounded: MaxEntities baselines and, separately,
//     MaxEntities trust scores (100 000 by default, at most
//     HardMaxEntities); a new entity beyond the bound is refused
//     (ErrEntityLimit), never evicting an existing one, so no entity can
//     shed its history by crowding others out. Forget removes one
//     deliberately. The archive holds ArchiveCap snapshots (1024) and
//     drops the oldest.
//   - Encode is canonical: equal states give equal bytes. Decode accepts
//     only canonical bytes of a state that satisfies every invariant
//     checked on write (sorted names, counts within bounds, op counts that
//     sum to the window's events, ops and transitions in the seen-set,
//     posture consistent with its signals and its archive), so
//     Decode(b).Encode() == b; a Sensor decoded mid-stream continues
//     exactly as the original would. (Model 1 only: model-2 entities
//     are checked for bounds and consistent sums, not every derived
//     invariant.)
//   - Numbers in this package (Decision, Level, SignalKind, Metric, the
//     scoring constants and the encoding) are protocol: they decide
//     policy inputs, so changing one needs a new rules version.
//
// # Model 2 (fsm protocol 6; issue 25)
//
// Contract: a harness drives it without a cluster exactly as the FSM
// does. s, _ := sense.New(sense.DefaultConfig()); at the gate
// s.Judge(entity, Call{Time, Op, Resource, Bytes, Peer, Parent}) Report
// scores the entity's recent behaviour with the call under evaluation
// included (it learns nothing from it); after the decision
// s.Observe(entity, Outcome{Time, Op, Resource, Decision, Bytes, Effect,
// Error, Seq, Peer, Parent}) Report folds the outcome; s.Signal(kind,
// value, time) moves the posture. Report.Alert is the one definition of
// an alert: trust is charged for it (once per minute) and, at critical
// posture, it sets Report.Escalate (a permit becomes ESCALATE). Report
// also names the Metric, the Observed value, the Expected range, the
// tail probability P (parts per PScale = 10^15; Surprise = −log₂ P in
// millibits), the Threshold (millibits) and the Evidence (seqs of the
// entity's recent outcomes within the metric's horizon), and the Call.
// Report.Err is set, and nothing changes, for a rejected input.
// Deviation(entity, now) reports a model-2 entity as its recent
// behaviour stands (no call; a read on a copy) for services outside the
// ledger (baseline show, the cortex).
//
// What it observes, per entity: the calls, denies, errors (Outcome.Error
// or DecisionError), argument bytes of every op, active 10-second
// windows, per op its count, recent count, share, argument size and its
// first call, per resource prefix (up to the first '/' or ':') its first
// call and recent count, in one-minute buckets with a ring of the last
// ten minutes and six 10-minute buckets.
//
// Metrics and their tails (Q16 bits of surprise, Chernoff upper bounds
// on the probability, so never more surprised than the model):
//   - counts over 1, 10 and 60 minutes (calls, active windows): Poisson
//     with the learned variance-to-mean ratio D (quasi-Poisson), and for
//     a sparse count (r = λ/(D−1) < 1) the negative-binomial tail
//     r·p·q^c/c when smaller (countBits);
//   - argument bytes over 10 and 60 minutes against what the calls' ops
//     usually carry: a compound count in 64-byte units whose D is the
//     size variance over the expected bytes (at least a CV of 1.5),
//     widened by the error of the learned sizes, common to an op's calls
//     (n·Σ share·σ² / 2·SizeDen for n calls);
//   - deny and error ratios over 10 and 60 minutes: binomial KL bound with
//     the beta-binomial design effect n/(1 + n/RatioPriorEvents);
//   - denies over 10 and 60 minutes against the deny ratio × the expected
//     calls, which the ratios miss when calls rise with their denials
//     (probing): a random thinning of the calls' negative binomial, of
//     the same size r = λ/(D−1) (thinnedBits, bounded above);
//   - the call's bytes: empirical quantile of a half-octave histogram
//     (one pseudo-call), halving per half-octave beyond the largest seen;
//   - never-seen ops and resource prefixes: Good-Turing, the novelties
//     per call of the entity and its peers after establishment (an
//     eighth of a pseudo-novelty); two or more in an hour as a Poisson
//     count; and the recent count of an op or prefix first seen within
//     the hour against an eighth of a pseudo-call (for an op, with the
//     dispersion of a randomly thinned count, 1 + share·(D−1): nearly
//     Poisson, however bursty the entity's calls);
//   - an op's recent count (30-minute half-life) against the largest of
//     its long share, its fast share (op-mix drift) and its streak share
//     (its share of recent calls at its own calls: runs, batch jobs).
//
// Correction and threshold: the report's metric is the one whose
// surprise most exceeds its threshold; Bonferroni over the
// NumModel2Metrics metrics and over the tests of a day: threshold =
// lg(tests per day) + lg(NumModel2Metrics) − lg(target per day ×
// PostureTargetPct/100), where tests per day are the entity's expected
// calls per day (at least 24), and for window metrics at most 1440 (one
// a minute); for the call and active-window counts, which only grow
// within a minute (an alerting minute is one whose last test alerts),
// the minutes with calls, at most expected calls × actRatio. The target is the governed AlertsPerDayMilli
// (SetAlertTarget; default 100 = 0.1 per entity-day). Score (the Cedar
// deviation) is graded: centibits above the suspicion level
// (AdaptMarginBits below the threshold), at least 1 for a never-seen op
// or resource of an established entity; Alert means Score > 600.
//
// Time structure and learning: expected calls per minute = max(the
// hour-of-day profile (slow: 1/HourDen per minute), the fast scale
// (1/FastDen per minute, counted up to 1.5× the base: drift of ×3 in
// about 70 minutes is followed, a ×10 burst is not), a floor) + the
// minute-of-hour excess above its noise (a job at the same minute every
// hour becomes expected). A suspicious minute (within AdaptMarginBits of
// an alert) teaches only its dispersion and its minute-of-hour slot; a
// suspicious call teaches no share or ratio (sizes learn from every call,
// each clipped to 4× its op's mean). Dispersions learn from
// every minute, slowly (DispMinuteDen, DispDen); the 10-minute ones
// (calls over 10 and 60 minutes, active windows) are a plain mean of
// DispPrior and their samples until they have DispDen samples.
//
// Peers: an entity borrows the novelty counts of its peer group (Peer,
// its capability shape) once it is established (EstablishedCalls calls
// and EstablishedNs since its first); its own delegates (Parent == it)
// and entities not yet established never count in its peers. Peer
// groups are sums over their members, rebuilt on Decode.
//
// Everything is integer: log₂ by table (lg), 2^−x by table (probOf),
// mulDiv through 128-bit products. Model-2 state is encoded after model
// 1's only once model 2 is used, so a model-1 ledger's bytes are
// unchanged.
//
// # Use from the FSM
//
// Protocols 2 to 4 (model 1): for a syscall at ledger time now:
// Deviation(entity, now) and Trust(entity) give the Cedar context
// (Report.Score, TrustStatus.Score and Tier, Posture().Level.String());
// Report.Escalate forces approval. After the decision, Fold(entity,
// Observation{...}) records it. Protocol 6 on (model 2): Judge before
// Cedar, Observe after (see above); sense.target sets the target.
// Signal, AdjustTrust, SetAlertTarget and Forget are applied by governed
// commands, and their returned changes are the events' evidence.
//
// # Imports
//
// Standard library only: cmp, slices, maps (sorted keys only), errors,
// fmt, bytes, encoding/binary, crypto/sha256, math/bits, strings,
// unicode/utf8 (the seen-set
// hash is FNV-1a written out, pinned to hash/fnv by a test). No
// I/O, no time, no randomness. Tests add math/rand/v2 (seeded) and
// internal/detcheck.
package sense
