package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// FileWitness keeps every signed head it is given as one JSON line appended
// to a file, which should live outside the data file's reach (another disk,
// a log shipper's spool, an append-only mount). `bridge audit verify --head
// FILE` reads it back.
type FileWitness struct {
	path string
	mu   sync.Mutex
}

// NewFileWitness returns a witness appending to path (created 0600).
func NewFileWitness(path string) *FileWitness { return &FileWitness{path: path} }

// Name implements Witness.
func (w *FileWitness) Name() string { return "file " + w.path }

// Publish implements Witness: one line, written with O_APPEND and synced.
func (w *FileWitness) Publish(ctx context.Context, head Checkpoint) error {
	head.Frontier = nil
	b, err := json.Marshal(&head)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: witness file: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: witness file: %w", err)
	}
	return nil
}

// witnessTail is how much of the end of a witness file Latest reads.
const witnessTail = 64 << 10

// Latest returns the last head in the file, or nil when the file does not
// exist yet. A file whose last line is not a head is an error: the gateway
// refuses to start over a witness it cannot read.
func (w *FileWitness) Latest() (*Checkpoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: witness file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: witness file: %w", err)
	}
	off := max(fi.Size()-witnessTail, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("audit: witness file: %w", err)
	}
	buf = bytes.TrimRight(buf, "\n")
	if len(buf) == 0 {
		return nil, nil
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	heads, err := ParseHeads(bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("audit: witness file %s: the last line is not a signed head: %w", w.path, err)
	}
	return &heads[0], nil
}
