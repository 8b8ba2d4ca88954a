package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestExampleIsTheDocs keeps the embedded starting configuration and the
// one the documentation shows identical.
func TestExampleIsTheDocs(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "gateway.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, Example()) {
		t.Fatal("docs/gateway.example.yaml and approval/config/gateway.example.yaml differ: copy one over the other")
	}
}

// TestExampleLoads checks the example is a valid configuration once the
// variables it names are set, and only then.
func TestExampleLoads(t *testing.T) {
	vars := map[string]string{}
	for _, k := range ExampleEnv() {
		vars[k] = "https://hooks.example.com/" + k
	}
	cfg, err := Load("gateway.example.yaml", Example(), testEnv(vars, nil))
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("the example has warnings: %v", cfg.Warnings)
	}
	for _, missing := range ExampleEnv() {
		partial := map[string]string{}
		for k, v := range vars {
			if k != missing {
				partial[k] = v
			}
		}
		if _, err := Load("gateway.example.yaml", Example(), testEnv(partial, nil)); err == nil {
			t.Errorf("the example loads without %s; ExampleEnv is out of date", missing)
		}
	}
}
