// Package merkle is the Merkle tree of RFC 6962 (and RFC 9162 §2.1) over
// SHA-256: leaf hashes, node hashes, a compact range that grows one leaf at
// a time, and inclusion and consistency proofs with their verification.
//
// It knows nothing about where leaves are stored, so the audit log's
// storage can change (bbolt today, an append-only segment log later)
// without touching it.
package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Size is the length of a hash.
const Size = sha256.Size

// Hash is a leaf, node or root hash.
type Hash [Size]byte

// String returns h in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses a lowercase or uppercase hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*Size {
		return h, fmt.Errorf("merkle: hash %q: want %d hex digits", truncate(s), 2*Size)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("merkle: hash %q: not hex", truncate(s))
	}
	return h, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// LeafHash is SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*Size]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+Size:], right[:])
	return sha256.Sum256(b[:])
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
func EmptyRoot() Hash { return sha256.Sum256(nil) }

// Tree is a compact range over leaves [0, Size()): the roots of the perfect
// subtrees that make up the tree, largest (leftmost) first, one per set bit
// of the size. It is enough to compute the root and to keep appending. The
// zero value is the empty tree. A Tree is not safe for concurrent use.
type Tree struct {
	size  uint64
	nodes []Hash
}

// FromFrontier rebuilds a tree of size leaves from its frontier (see
// [Tree.Frontier]).
func FromFrontier(size uint64, nodes []Hash) (*Tree, error) {
	if len(nodes) != bits.OnesCount64(size) {
		return nil, fmt.Errorf("merkle: a tree of %d leaves has %d frontier hashes, not %d", size, bits.OnesCount64(size), len(nodes))
	}
	return &Tree{size: size, nodes: append([]Hash(nil), nodes...)}, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.size }

// Append adds a leaf hash.
func (t *Tree) Append(leaf Hash) {
	t.nodes = append(t.nodes, leaf)
	for s := t.size; s&1 == 1; s >>= 1 {
		n := len(t.nodes)
		t.nodes[n-2] = NodeHash(t.nodes[n-2], t.nodes[n-1])
		t.nodes = t.nodes[:n-1]
	}
	t.size++
}

// Root returns the tree's root hash (RFC 6962 MTH).
func (t *Tree) Root() Hash {
	if t.size == 0 {
		return EmptyRoot()
	}
	h := t.nodes[len(t.nodes)-1]
	for i := len(t.nodes) - 2; i >= 0; i-- {
		h = NodeHash(t.nodes[i], h)
	}
	return h
}

// Frontier returns a copy of the perfect-subtree roots, largest first.
func (t *Tree) Frontier() []Hash { return append([]Hash(nil), t.nodes...) }

// Clone returns an independent copy of t.
func (t *Tree) Clone() *Tree { return &Tree{size: t.size, nodes: t.Frontier()} }

// RootOf returns the root of the tree over leaves (RFC 6962 MTH).
func RootOf(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := split(uint64(len(leaves)))
	return NodeHash(RootOf(leaves[:k]), RootOf(leaves[k:]))
}

// split returns the largest power of two smaller than n (n > 1).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// InclusionProof returns the audit path of leaf index in the tree over
// leaves (RFC 9162 §2.1.3.1).
func InclusionProof(index uint64, leaves []Hash) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("merkle: leaf %d is not in a tree of %d", index, len(leaves))
	}
	return path(index, leaves), nil
}

func path(m uint64, d []Hash) []Hash {
	n := uint64(len(d))
	if n == 1 {
		return nil
	}
	k := split(n)
	if m < k {
		return append(path(m, d[:k]), RootOf(d[k:]))
	}
	return append(path(m-k, d[k:]), RootOf(d[:k]))
}

// ConsistencyProof returns the proof that the tree over leaves[:m] is a
// prefix of the tree over leaves (RFC 9162 §2.1.4.1).
func ConsistencyProof(m uint64, leaves []Hash) ([]Hash, error) {
	n := uint64(len(leaves))
	if m > n {
		return nil, fmt.Errorf("merkle: a tree of %d cannot be a prefix of one of %d", m, n)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	return subproof(m, leaves, true), nil
}

func subproof(m uint64, d []Hash, b bool) []Hash {
	n := uint64(len(d))
	if m == n {
		if b {
			return nil
		}
		return []Hash{RootOf(d)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, d[:k], b), RootOf(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), RootOf(d[:k]))
}

// ErrProof is wrapped by every proof that does not verify.
var ErrProof = errors.New("merkle: proof does not verify")

// VerifyInclusion checks that leaf is leaf index of the tree of size with
// root (RFC 9162 §2.1.3.2).
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d is beyond size %d", ErrProof, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: proof too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return ErrProof
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 with root1 is a prefix
// of the tree of size2 with root2 (RFC 9162 §2.1.4.2).
func VerifyConsistency(size1, size2 uint64, proof []Hash, root1, root2 Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: size %d is larger than %d", ErrProof, size1, size2)
	case size1 == size2:
		if len(proof) != 0 || root1 != root2 {
			return ErrProof
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return ErrProof
		}
		return nil // the empty tree is a prefix of every tree
	}
	if len(proof) == 0 {
		return ErrProof
	}
	if size1&(size1-1) == 0 { // a power of two: root1 is part of the path
		proof = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: proof too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || fr != root1 || sr != root2 {
		return ErrProof
	}
	return nil
}
