package merkle

import (
	"encoding/hex"
	"fmt"
	"testing"
)

// The leaves and roots of the RFC 6962 test tree used by Certificate
// Transparency implementations.
var (
	vectorLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	vectorRoots  = []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
)

func vectorLeafHashes(t *testing.T) []Hash {
	t.Helper()
	var out []Hash
	for _, l := range vectorLeaves {
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, LeafHash(b))
	}
	return out
}

func TestRootsMatchRFC6962Vectors(t *testing.T) {
	leaves := vectorLeafHashes(t)
	if got := EmptyRoot().String(); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root %s", got)
	}
	var tr Tree
	for i, want := range vectorRoots {
		tr.Append(leaves[i])
		if got := tr.Root().String(); got != want {
			t.Errorf("compact root of %d leaves = %s, want %s", i+1, got, want)
		}
		if got := RootOf(leaves[:i+1]).String(); got != want {
			t.Errorf("RootOf %d leaves = %s, want %s", i+1, got, want)
		}
	}
}

func leavesN(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = LeafHash([]byte(fmt.Sprint(i)))
	}
	return out
}

func TestCompactTreeAndFrontier(t *testing.T) {
	leaves := leavesN(70)
	var tr Tree
	for i := range leaves {
		tr.Append(leaves[i])
		if tr.Root() != RootOf(leaves[:i+1]) {
			t.Fatalf("size %d: compact root differs", i+1)
		}
		re, err := FromFrontier(tr.Size(), tr.Frontier())
		if err != nil || re.Root() != tr.Root() {
			t.Fatalf("size %d: frontier round trip: %v", i+1, err)
		}
	}
	if _, err := FromFrontier(5, tr.Frontier()[:1]); err == nil {
		t.Error("a frontier of the wrong length was accepted")
	}
}

func TestInclusionProofs(t *testing.T) {
	leaves := leavesN(33)
	for n := 1; n <= len(leaves); n++ {
		root := RootOf(leaves[:n])
		for i := 0; i < n; i++ {
			p, err := InclusionProof(uint64(i), leaves[:n])
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root); err != nil {
				t.Fatalf("leaf %d of %d: %v", i, n, err)
			}
			// Any other leaf, a wrong index or a damaged proof fails.
			if VerifyInclusion(uint64(i), uint64(n), leaves[(i+1)%len(leaves)], p, root) == nil {
				t.Fatalf("leaf %d of %d: wrong leaf verified", i, n)
			}
			if n > 1 && VerifyInclusion(uint64((i+1)%n), uint64(n), leaves[i], p, root) == nil && (i+1)%n != i {
				t.Fatalf("leaf %d of %d: wrong index verified", i, n)
			}
			if len(p) > 0 {
				p[0][0] ^= 1
				if VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root) == nil {
					t.Fatalf("leaf %d of %d: damaged proof verified", i, n)
				}
			}
		}
	}
	if _, err := InclusionProof(3, leaves[:3]); err == nil {
		t.Error("proof for a leaf beyond the tree")
	}
}

func TestConsistencyProofs(t *testing.T) {
	leaves := leavesN(33)
	for n := 1; n <= len(leaves); n++ {
		rootN := RootOf(leaves[:n])
		for m := 0; m <= n; m++ {
			rootM := RootOf(leaves[:m])
			p, err := ConsistencyProof(uint64(m), leaves[:n])
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), p, rootM, rootN); err != nil {
				t.Fatalf("%d → %d: %v", m, n, err)
			}
			if m > 0 && m < n {
				// A rewritten old tree is not consistent.
				other := append([]Hash(nil), leaves[:n]...)
				other[m-1] = LeafHash([]byte("rewritten"))
				if VerifyConsistency(uint64(m), uint64(n), p, rootM, RootOf(other)) == nil {
					t.Fatalf("%d → %d: rewritten tree accepted", m, n)
				}
				if VerifyConsistency(uint64(m), uint64(n), p, RootOf(other[:m]), rootN) == nil {
					t.Fatalf("%d → %d: forged old root accepted", m, n)
				}
			}
		}
	}
	if VerifyConsistency(5, 4, nil, Hash{}, Hash{}) == nil {
		t.Error("shrinking tree accepted")
	}
}

func TestParseHash(t *testing.T) {
	h := LeafHash(nil)
	for _, tc := range []struct {
		in string
		ok bool
	}{{h.String(), true}, {"", false}, {h.String()[:62] + "zz", false}, {h.String() + "00", false}} {
		got, err := ParseHash(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != h) {
			t.Errorf("ParseHash(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add(LeafHash(nil).String())
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err == nil {
			if back, err := ParseHash(h.String()); err != nil || back != h {
				t.Fatalf("round trip of %q", s)
			}
		}
	})
}
