package mask

import (
	"unicode"
	"unicode/utf8"
)

// Detection sees text through a normalised view, so that a value written
// with look-alike characters is found like its plain ASCII form:
//
//   - every Unicode decimal digit (full-width U+FF10…, Arabic-Indic,
//     Devanagari, mathematical, …) and the super- and subscript digits
//     become the ASCII digit of the same value;
//   - full-width ASCII (U+FF01…U+FF5E: letters, '@', '.', '-', …) becomes
//     ASCII;
//   - Unicode spaces (NBSP, thin and narrow spaces, U+3000, …) become ' ',
//     line and paragraph separators '\n';
//   - hyphens, dashes and minus signs become '-', ideographic and small full
//     stops '.', the small commercial at '@';
//   - invisible characters (format characters such as the zero-width space,
//     joiners, the soft hyphen, bidi controls and the BOM, plus variation
//     selectors and the combining grapheme joiner) are dropped.
//
// A finding in the view is mapped back to its span in the original text, and
// it is the original span that is replaced: the output keeps every byte the
// detectors did not find, look-alikes included.

// Actions of foldRune.
const (
	foldKeep = iota // detection sees the rune as it is
	foldByte        // detection sees one ASCII byte
	foldDrop        // detection does not see the rune
)

// foldRune tells how detection sees the non-ASCII rune r.
func foldRune(r rune) (byte, int) {
	switch {
	case r < 0x80:
		return byte(r), foldByte
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		return byte(r - 0xFEE0), foldByte
	case r == 0x00B2 || r == 0x00B3:
		return byte('2' + r - 0x00B2), foldByte
	case r == 0x00B9:
		return '1', foldByte
	case r == 0x2070:
		return '0', foldByte
	case r >= 0x2074 && r <= 0x2079:
		return byte('4' + r - 0x2074), foldByte
	case r >= 0x2080 && r <= 0x2089:
		return byte('0' + r - 0x2080), foldByte
	case r >= 0x2010 && r <= 0x2015, r == 0x2212, r == 0xFE58, r == 0xFE63:
		return '-', foldByte
	case r == 0x3002, r == 0xFF61, r == 0xFE52, r == 0x2024:
		return '.', foldByte
	case r == 0xFE6B:
		return '@', foldByte
	case r == 0x2028 || r == 0x2029:
		return '\n', foldByte
	case r == 0x034F, r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF:
		return 0, foldDrop
	case r == utf8.RuneError:
		return 0, foldKeep
	}
	if unicode.Is(unicode.Zs, r) {
		return ' ', foldByte
	}
	if unicode.Is(unicode.Cf, r) {
		return 0, foldDrop
	}
	if d, ok := digitValue(r); ok {
		return '0' + d, foldByte
	}
	return 0, foldKeep
}

// digitValue returns the value of a Unicode decimal digit (category Nd).
// Every Nd range in the Unicode tables holds whole runs of ten digits that
// start at a zero, so the value is the distance from the range start mod 10.
func digitValue(r rune) (byte, bool) {
	if r <= 0xFFFF {
		for _, rg := range unicode.Nd.R16 {
			if uint16(r) < rg.Lo {
				return 0, false
			}
			if uint16(r) <= rg.Hi {
				return byte((uint16(r) - rg.Lo) % 10), true
			}
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if uint32(r) < rg.Lo {
			return 0, false
		}
		if uint32(r) <= rg.Hi {
			return byte((uint32(r) - rg.Lo) % 10), true
		}
	}
	return 0, false
}

// needsFold reports whether the rune starting at s[i] (a lead byte of a
// multi-byte sequence) is one detection sees differently, and the rune's
// size.
func needsFold(s string, i int) (bool, int) {
	r, size := utf8.DecodeRuneInString(s[i:])
	_, act := foldRune(r)
	return act != foldKeep, size
}

// view is the normalised text detection runs on. offs maps each byte of
// norm, and the end of norm, to the offset in the original text; offs is nil
// when norm is the original.
type view struct {
	orig, norm string
	offs       []int32
}

// maxFoldLen bounds the texts fold accepts, so offsets fit in an int32.
const maxFoldLen = 1<<31 - 2

// fold builds the normalised view of s (valid UTF-8, at most maxFoldLen
// bytes).
func fold(s string) view {
	norm := make([]byte, 0, len(s))
	offs := make([]int32, 0, len(s)+1)
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			norm = append(norm, c)
			offs = append(offs, int32(i))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch b, act := foldRune(r); act {
		case foldByte:
			norm = append(norm, b)
			offs = append(offs, int32(i))
		case foldKeep:
			norm = append(norm, s[i:i+size]...)
			for k := 0; k < size; k++ {
				offs = append(offs, int32(i+k))
			}
		}
		i += size
	}
	offs = append(offs, int32(len(s)))
	return view{orig: s, norm: string(norm), offs: offs}
}

// span maps the normalised byte range [a, b) (a < b) to the original text:
// from the first original byte of a through the last of b-1, so invisible
// characters inside the range are replaced with it and those around it are
// kept.
func (v *view) span(a, b int) (int, int) {
	if v.offs == nil {
		return a, b
	}
	from, o := int(v.offs[a]), int(v.offs[b-1])
	if c := v.orig[o]; c < utf8.RuneSelf || !utf8.RuneStart(c) {
		return from, o + 1 // ASCII, or one byte of a rune kept as it is
	}
	_, size := utf8.DecodeRuneInString(v.orig[o:])
	return from, o + size
}
