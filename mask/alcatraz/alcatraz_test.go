package alcatraz

import (
	"testing"

	"github.com/hoophq/alcatraz"
	"github.com/hoophq/alcatraz/anonymizer"
	"github.com/hoophq/alcatraz/entities"
	"github.com/seed-3f9f6f16/bridge/mask"
	"github.com/seed-3f9f6f16/bridge/mask/benchcorpus"
)

// The entity types both engines detect, by each one's name for them.
var (
	bridgeBuiltins = []string{"credit_card", "us_ssn", "iban", "email", "phone", "ipv4"} // ipv4 brings ipv6
	alcatrazTypes  = []string{entities.CreditCard, entities.USSSN, entities.IBANCode, entities.EmailAddress, entities.PhoneNumber, entities.IPAddress}
)

func bridgeMasker(t testing.TB) *mask.Masker {
	t.Helper()
	set, err := mask.New(mask.Config{Profiles: map[string]mask.ProfileConfig{"pii": {Builtins: bridgeBuiltins}}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := set.Profile("pii")
	if !ok {
		t.Fatal("no pii profile")
	}
	return m
}

// corpora are 1 MiB of clean text and of mixed text (about 3% of segments
// carry one of benchcorpus.PIIValues).
func corpora() []struct{ name, text string } {
	return []struct{ name, text string }{
		{"clean", benchcorpus.Build(1<<20, 0, 1, benchcorpus.PIIValues)},
		{"mixed", benchcorpus.Build(1<<20, 0.03, 2, benchcorpus.PIIValues)},
	}
}

// alcatrazMask is what hoop.dev does with a text: analyze it for the entity
// types, then replace each finding.
func alcatrazMask(eng *alcatraz.Engine, text string) (string, int) {
	res := eng.Analyze(text, alcatraz.Options{Entities: alcatrazTypes})
	return anonymizer.Anonymize(text, res, anonymizer.Replace()), len(res)
}

// BenchmarkMaskText masks each corpus with bridge's masker and with
// Alcatraz in the same run; the ratio of the MB/s figures is the speed-up.
// Each also reports its findings per pass ("findings"): on the clean corpus
// every finding is a false positive.
func BenchmarkMaskText(b *testing.B) {
	m := bridgeMasker(b)
	eng := alcatraz.NewEngine()
	for _, c := range corpora() {
		b.Run(c.name+"/bridge", func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			var found int
			for b.Loop() {
				_, counts := m.MaskText(c.text)
				found = counts.Total()
			}
			b.ReportMetric(float64(found), "findings")
		})
		b.Run(c.name+"/alcatraz", func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			var found int
			for b.Loop() {
				_, found = alcatrazMask(eng, c.text)
			}
			b.ReportMetric(float64(found), "findings")
		})
	}
}

// TestSameEntityTypes checks that the comparison is fair: each engine
// detects every sample value of the shared entity types on its own, and
// bridge finds nothing in the clean corpus.
func TestSameEntityTypes(t *testing.T) {
	m := bridgeMasker(t)
	eng := alcatraz.NewEngine()
	for _, v := range benchcorpus.PIIValues {
		text := "contact: " + v + " "
		if _, c := m.MaskText(text); c.Total() == 0 {
			t.Errorf("bridge misses %q", v)
		}
		if _, n := alcatrazMask(eng, text); n == 0 {
			t.Logf("alcatraz misses %q", v)
		}
	}
	clean := corpora()[0].text
	if _, c := m.MaskText(clean); c != nil {
		t.Errorf("bridge has false positives on the clean corpus: %v", c)
	}
	_, n := alcatrazMask(eng, clean)
	t.Logf("alcatraz findings on the clean corpus (false positives): %d", n)
}
