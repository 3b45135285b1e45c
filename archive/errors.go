package archive

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is wrapped by ReadSeq and ReadIndex when the archive holds
	// no such record.
	ErrNotFound = errors.New("archive: record not found")
	// ErrClosed is returned by every method of a closed Archive, and by an
	// ExportWriter used after Close.
	ErrClosed = errors.New("archive: closed")
	// ErrLocked is wrapped by Open when another Archive (in this process or
	// another) holds the directory.
	ErrLocked = errors.New("archive: directory is locked by another open archive")
	// ErrNotExport is wrapped by NewExportReader when the input does not
	// start with ExportMagic.
	ErrNotExport = errors.New("archive: not a Dominus ledger export")
)

// CorruptError reports archived or exported data that cannot be trusted: a
// complete record whose checksum does not match, a malformed frame that is
// not a torn tail, or records in an impossible order. Nothing is dropped to
// get past it; an operator repairs the archive (for example by backfilling
// from a peer) or the export.
type CorruptError struct {
	// Path is the segment file, or "" for an export stream.
	Path string
	// Offset is the byte offset of the bad frame (or header) in Path or in
	// the export stream.
	Offset int64
	// AfterSeq is the seq of the last good record before the bad one. For
	// an export whose first record is bad it is FromSeq-1 (0 when FromSeq
	// is 0); for a bad export header, or a bad first record of an archive,
	// it is 0. The first seq that cannot be trusted is AfterSeq+1.
	AfterSeq uint64
	// Reason says what is wrong, in words.
	Reason string
}

func (e *CorruptError) Error() string {
	where := "export"
	if e.Path != "" {
		where = e.Path
	}
	return fmt.Sprintf("archive: corrupt data in %s at offset %d (after seq %d): %s", where, e.Offset, e.AfterSeq, e.Reason)
}
