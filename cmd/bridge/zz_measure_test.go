package main

import (
	"os"
	"strings"
	"testing"
)

func TestConformanceMeasure(t *testing.T) {
	cliEnv, serverBin := os.Getenv(conformanceCLIEnv), os.Getenv(conformanceServerEnv)
	if cliEnv == "" || os.Getenv("MEASURE") == "" {
		t.Skip()
	}
	cli := strings.Fields(cliEnv)
	upstream := startConformanceServer(t, serverBin)
	gw := startConformanceGateway(t, upstream)
	relay := startConformanceConnect(t, gw)
	for _, sc := range []string{"tools-call-with-logging", "tools-call-with-progress"} {
		for _, tgt := range []struct{ l, u string }{{"direct", upstream}, {"bridge", relay.url}} {
			pass := 0
			for i := 0; i < 20; i++ {
				r := runConformance(t, cli, tgt.u, sc, t.TempDir())
				if r.results[sc].passed() {
					pass++
				}
			}
			t.Logf("%s %s: %d/20 passed", sc, tgt.l, pass)
		}
	}
}
