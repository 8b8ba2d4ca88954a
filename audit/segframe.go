package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The segment log's on-disk format.
//
// A segment file is named after the seq of the first record it may hold,
// as 20 decimal digits and ".seg". It is preallocated (zero-filled) to the
// segment size when created, and starts with a 32-byte header:
//
//	magic     16 bytes  "BRIDGE-AUDIT-SEG"
//	version    4 bytes  little-endian 1
//	first      8 bytes  little-endian seq of the file's name
//	crc        4 bytes  CRC-32C (Castagnoli) of the 28 bytes before it
//
// Frames follow, one after another; a frame header of all zeros (the
// preallocated space) ends the segment:
//
//	length     4 bytes  little-endian length of the payload (> 0)
//	crc        4 bytes  CRC-32C of the 12 bytes after it and the payload
//	seq        8 bytes  the record's seq, or the checkpoint's Seq
//	kind       1 byte   1 record (payload: its stored form, see [Record]),
//	                    2 checkpoint (payload: its JSON)
//	flags      1 byte   1: the last frame of a commit
//	reserved   2 bytes  zero
//	payload
//
// A commit (one [Store.Append]) is the frames up to and including the one
// flagged as its last. Frames after the last flagged one are a commit that
// never finished (torn by a crash) and are not part of the log.
const (
	segMagic        = "BRIDGE-AUDIT-SEG"
	segVersion      = 1
	segHeaderSize   = 32
	frameHeaderSize = 20
	frameRecord     = 1
	frameCheckpoint = 2
	flagCommitEnd   = 1
	// maxFramePayload bounds a frame's length field, so a damaged length is
	// recognised as damage rather than read as a huge allocation.
	maxFramePayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segHeader returns the header of the segment named first.
func segHeader(first uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint32(h[16:], segVersion)
	binary.LittleEndian.PutUint64(h[20:], first)
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return h
}

// checkSegHeader checks that h is the header of the segment named first.
func checkSegHeader(h []byte, first uint64) error {
	switch {
	case len(h) < segHeaderSize:
		return errors.New("the segment file is shorter than its header")
	case string(h[:16]) != segMagic:
		return errors.New("the segment file does not start with the segment magic")
	case binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli):
		return errors.New("the segment header fails its checksum")
	case binary.LittleEndian.Uint32(h[16:]) != segVersion:
		return fmt.Errorf("unsupported segment version %d", binary.LittleEndian.Uint32(h[16:]))
	case binary.LittleEndian.Uint64(h[20:]) != first:
		return fmt.Errorf("the segment header says it starts at record %d, its name says %d", binary.LittleEndian.Uint64(h[20:]), first)
	}
	return nil
}

// frameHeader is a decoded frame header.
type frameHeader struct {
	length uint32
	crc    uint32
	seq    uint64
	kind   byte
	flags  byte
}

// appendFrame appends one frame holding payload to buf.
func appendFrame(buf []byte, kind byte, seq uint64, last bool, payload []byte) []byte {
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:], seq)
	h[16] = kind
	if last {
		h[17] = flagCommitEnd
	}
	c := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:], c)
	buf = append(buf, h[:]...)
	return append(buf, payload...)
}

// parseFrameHeader decodes h. zero is true for an all-zero header (the end
// of the segment's data).
func parseFrameHeader(h []byte) (fh frameHeader, zero bool, err error) {
	zero = true
	for _, b := range h[:frameHeaderSize] {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		return fh, true, nil
	}
	fh = frameHeader{
		length: binary.LittleEndian.Uint32(h[0:]),
		crc:    binary.LittleEndian.Uint32(h[4:]),
		seq:    binary.LittleEndian.Uint64(h[8:]),
		kind:   h[16],
		flags:  h[17],
	}
	switch {
	case fh.length == 0 || fh.length > maxFramePayload:
		return fh, false, fmt.Errorf("frame length %d is out of range", fh.length)
	case fh.kind != frameRecord && fh.kind != frameCheckpoint:
		return fh, false, fmt.Errorf("unknown frame kind %d", fh.kind)
	case fh.flags&^flagCommitEnd != 0 || h[18] != 0 || h[19] != 0:
		return fh, false, errors.New("reserved frame header bits are set")
	}
	return fh, false, nil
}

// checkFrame checks the frame's CRC over its header h and payload.
func checkFrame(h []byte, fh frameHeader, payload []byte) error {
	if crc32.Update(crc32.Checksum(h[8:frameHeaderSize], castagnoli), castagnoli, payload) != fh.crc {
		return errors.New("the frame fails its checksum (a changed or torn byte)")
	}
	return nil
}
