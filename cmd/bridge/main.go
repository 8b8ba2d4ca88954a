// Command bridge puts a human approval gate, response masking and a
// tamper-evident audit log between AI agents and MCP servers.
package main

import "os"

func main() {
	os.Exit(int(Main(newFactory())))
}
