//go:build !dominus_protocol2

package fsm

// ProtocolVersion is the newest rule set this binary implements. Genesis
// seals the version a ledger starts under, an operator moves it forward
// with a protocol upgrade (protocol.go), and handlers consult
// State.Meta.Protocol, so every entry replays under the rules in force
// when it was written. A binary built with the tag dominus_protocol2
// implements only up to protocol 2 (protocol_version2.go): it stands in
// for an older release in upgrade tests.
const ProtocolVersion uint16 = ProtocolEvolution
