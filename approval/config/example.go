package config

import _ "embed"

// example is docs/gateway.example.yaml; TestExampleIsTheDocs keeps the two
// identical.
//
//go:embed gateway.example.yaml
var example []byte

// Example returns the annotated starting configuration that `bridge init`
// writes and docs/gateway.example.yaml shows. It loads once the secrets it
// names (GITHUB_TOKEN, WAREHOUSE_TOKEN, SLACK_WEBHOOK, HOOK_SECRET) are set.
func Example() []byte { return append([]byte(nil), example...) }

// ExampleEnv names the environment variables Example refers to.
func ExampleEnv() []string {
	return []string{"GITHUB_TOKEN", "WAREHOUSE_TOKEN", "SLACK_WEBHOOK", "HOOK_SECRET"}
}
