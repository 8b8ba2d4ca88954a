package mask

import (
	"encoding/json"
	"os"
	"sync"
)

// credentialFixtures are the fake credentials of testdata/credentials.json:
// detector cases and corpus samples in the shapes of real tokens and keys.
// They live in testdata so that secret scanners can tell fixtures from leaks.
var credentialFixtures = sync.OnceValue(func() fixtureFile {
	raw, err := os.ReadFile("testdata/credentials.json")
	if err != nil {
		panic("mask tests: " + err.Error())
	}
	var f struct {
		Detectors map[string][][2]string `json:"detectors"`
		Samples   []string               `json:"samples"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		panic("mask tests: testdata/credentials.json: " + err.Error())
	}
	out := fixtureFile{detectors: map[string][]detectorCase{}, samples: f.Samples}
	for name, cases := range f.Detectors {
		for _, c := range cases {
			out.detectors[name] = append(out.detectors[name], detectorCase{in: c[0], want: c[1]})
		}
	}
	return out
})

type fixtureFile struct {
	detectors map[string][]detectorCase
	samples   []string
}
