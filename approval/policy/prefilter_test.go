package policy

import (
	"reflect"
	"regexp"
	"testing"
)

func TestRequiredLiterals(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{`(?i)\b(drop|truncate)\b`, []string{"drop", "truncate"}},
		{`(?i)forbidden\d+`, []string{"forbidden"}},
		{`DROP TABLE`, []string{"drop table"}},
		{`(?i)rm -rf`, []string{"rm -rf"}},
		{`(?i)secret_key`, []string{"ecret_"}}, // k and s are cut out
		{`(?i)ask`, nil},
		{`ab`, nil}, // too short
		{`a.*b`, nil},
		{`(?i)(drop|x)`, nil},
		{`(?:abc)+`, []string{"abc"}},
		{`(?:abc)*`, nil},
		{`(?:abc){2,}`, []string{"abc"}},
		{`é+xyz`, []string{"xyz"}},
		{`héllo`, []string{"héllo"}},
		{`(?i)héllo`, []string{"llo"}},
	}
	for _, tt := range tests {
		var got []string
		if pf := newPrefilter(tt.re); pf != nil {
			for _, l := range pf.literals {
				got = append(got, string(l))
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: literals %q, want %q", tt.re, got, tt.want)
		}
	}
}

// FuzzPrefilter checks soundness: whenever the regexp matches, the
// prefilter must let the text through.
func FuzzPrefilter(f *testing.F) {
	seeds := [][2]string{
		{`(?i)\b(drop|truncate)\b`, "DROP table"},
		{`(?i)kill`, "\u212Aill"}, // Kelvin sign folds to k
		{`(?i)ask`, "a\u017Fk"},   // long s folds to s
		{`(?i)bread`, "BREAD"},
		{`x(?i:ab+c)y`, "xABBCy"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, text string) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		pf := newPrefilter(expr)
		if pf == nil || !re.MatchString(text) {
			return
		}
		if !pf.mayMatch(appendASCIILower(nil, []byte(text))) {
			t.Fatalf("%q matches %q but the prefilter %q rejects it", expr, text, pf.literals)
		}
	})
}
