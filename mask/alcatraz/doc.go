// Package alcatraz benchmarks bridge's masking against Alcatraz
// (github.com/hoophq/alcatraz, the pattern-based engine hoop.dev masks
// with) on the same corpus and the same entity types. It holds only tests;
// run it from this directory:
//
//	go test -run '^$' -bench . -benchtime 3x
package alcatraz
