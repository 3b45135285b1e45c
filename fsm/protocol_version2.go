//go:build dominus_protocol2

package fsm

// ProtocolVersion of a binary built with the tag dominus_protocol2: it
// implements the rules up to protocol 2 and stops at an upgrade to 3,
// like a release from before protocol 3 (see protocol_version.go).
const ProtocolVersion uint16 = 2
