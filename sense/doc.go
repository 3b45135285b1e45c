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
//     exactly as the original would.
//   - Numbers in this package (Decision, Level, SignalKind, Metric, the
//     scoring constants and the encoding) are protocol: they decide
//     policy inputs, so changing one needs a new rules version.
//
// # Use from the FSM
//
// For a syscall at ledger time now: Deviation(entity, now) and
// Trust(entity) give the Cedar context (Report.Score, TrustStatus.Score
// and Tier, Posture().Level.String()); Report.Escalate forces approval.
// After the decision, Observe(entity, Observation{...}) records it.
// Signal, AdjustTrust and Forget are applied by governed commands, and
// their returned changes are the events' evidence.
//
// # Imports
//
// Standard library only: cmp, slices, maps (sorted keys only), errors,
// fmt, bytes, encoding/binary, crypto/sha256, unicode/utf8 (the seen-set
// hash is FNV-1a written out, pinned to hash/fnv by a test). No
// I/O, no time, no randomness. Tests add math/rand/v2 (seeded) and
// internal/detcheck.
package sense
