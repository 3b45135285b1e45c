// Package archive owns the node-local, append-only, fsynced archive of the
// Raft entries a Dominus kernel has applied, and the ledger export format.
//
// Raft compacts its log; the ledger must not lose history. After applying a
// batch of entries the kernel appends one Record per entry here, and makes
// the archive durable before Raft may compact the entries away (see
// Durability). The archive is the source for `dominus ledger
// show` and `ledger export`, for offline `dominus audit replay`, and for
// backfilling a node that installed a snapshot. A record's Data is opaque to
// this package: the kernel stores the Raft entry bytes and the chain record
// in it, and verifies the chain itself.
//
// # Records and ordering
//
// Each Record carries the Raft Index, the ledger Seq after the entry, and a
// Kind. Across the whole archive Index strictly increases (gaps are allowed)
// and Seq moves by exactly one for KindEvent and not at all for KindNoop.
// The first record may start anywhere (a node's history may begin at a
// snapshot), except that Index >= 1 and an event's Seq >= 1. Append checks
// these rules before writing; Open checks them again, and so does every
// read of a record and the export reader.
//
// # Files
//
// A directory holds a LOCK file (an flock held while open, so one Archive
// per directory) and segment files NNNNNNNNNNNNNNNNNNNN.seg, named for the
// zero-padded Index of their first record. A segment is a sequence of
// frames; the layout is described in frame.go: a version byte (0xD1), kind,
// data length, index and seq, a CRC-32C of that header, the data, and a
// CRC-32C of the whole frame. A record that would take a segment past
// Options.SegmentBytes starts the next one. Every segment holds at least one
// record.
//
// # Durability and recovery
//
// Append is all-or-nothing: it writes every frame of a batch, fsyncs, and
// on any error removes and truncates what it wrote, newest first, so the
// archive is exactly as before (errors from the file system are wrapped, so
// errors.Is(err, syscall.ENOSPC) reports a full disk). AppendNoSync is the
// same without the final fsync; Sync (and Append, and Close) later makes
// everything appended so far durable, and Synced reports how far that
// goes. Either way, before a segment is created everything before it —
// data and directory entry — is durable, so records not yet durable are
// only ever a tail of the last segment, and a crash — during a batch,
// during its rollback, or with records appended but not synced — leaves a
// prefix of what was appended, with a partial frame only at the end of the
// last segment. Open relies on that:
//
//   - a torn tail — after the last complete frame of the last segment,
//     fewer bytes than a header, a header that checks out but whose frame
//     runs past the end of the file, or only zero bytes — is truncated away
//     with a logged warning, and a last segment left empty is removed;
//   - anything else — a complete frame whose checksum fails, a header whose
//     checksum fails followed by non-zero bytes, an unknown version or kind,
//     an ordering violation, a partial frame in a segment that is not the
//     last, an empty segment that is not the last — returns *CorruptError
//     naming the file, the offset and the last good seq, and changes
//     nothing on disk. Data is never dropped silently.
//
// Open fsyncs the last segment and the directory, so what it found is
// durable (a killed writer may have left records in the page cache only).
// A failed Sync, a failed rollback, or a failed fsync of an Append while
// unsynced records are pending leaves the archive refusing appends until
// it is reopened; so does a Sync during which such an fsync failed.
//
// # Memory
//
// Open builds an in-memory index of every record: 12 bytes per record (the
// index and seq as deltas from the segment's first record, and the frame
// offset; the kind follows from the seq deltas), plus about 100 bytes per
// segment, plus the slack of the active segment's growing slice (at most
// the same again for that segment). Record data is never held in memory
// beyond the call that reads or writes it.
//
// # Concurrency
//
// Append, AppendNoSync and Close are serialised. Sync is serialised with
// Close and with itself; it takes the append lock briefly before and after
// its fsync, not during it, so appends proceed while a Sync runs. Readers
// (Last, First, ReadSeq, ReadIndex, Iterate, IterateIndex) take no lock:
// they load an immutable snapshot of the index published by the last
// completed append, and read the segment files through their own file
// handles, checking each frame's checksum and that it is the record the
// index says. Synced takes the append lock briefly.
//
// # Export
//
// NewExportWriter and NewExportReader define the stream of `dominus ledger
// export` and `dominus audit replay --ledger`: a header (ExportMagic,
// version, FromSeq, opaque Meta), record frames in the segment layout, and a
// trailer with the record count, the last Index and Seq, and a checksum of
// the whole stream. The reader checks everything and reports damage as
// *CorruptError with AfterSeq set to the last good seq; a stream without a
// trailer is an error wrapping io.ErrUnexpectedEOF.
//
// # Imports
//
// Standard library only. The package knows nothing of Raft, the FSM or the
// chain; the kernel node and cmd import it, the pure core never does.
package archive
