package audit

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary stored bytes to the decoder: it must not
// panic, and whatever it accepts must re-encode canonically (encoding is
// idempotent), which is what hashing relies on.
func FuzzDecodeRecord(f *testing.F) {
	for i := 1; i <= 3; i++ {
		r := sampleRecord(i)
		r.Seq = uint64(i)
		r.Masked = map[string]int{"email": i}
		b, _ := r.seal()
		f.Add(b)
	}
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00+14:00","kind":"anchor","identity":{},"anchor":{"pruned_from":1,"pruned_through":2,"pruned_count":2,"pruned_hash":"x","before":"0001-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"seq":1,"kind":"request","identity":{},"message":null,"time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"seq":1,"seq":2,"kind":"request"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			return
		}
		enc, err := EncodeRecord(&r)
		if err != nil {
			return // e.g. a time that leaves year 0-9999 in UTC
		}
		r2, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		enc2, err := EncodeRecord(&r2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not idempotent:\n%s\n%s", enc, enc2)
		}
		h1, _ := r.ComputeHash()
		h2, _ := r2.ComputeHash()
		if h1 != h2 {
			t.Fatal("hash changed across a round trip")
		}
	})
}
