package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// faultUpstreamEnv, set to 1 in a stdio server's env, makes this test binary
// serve as the fault upstream instead of running tests.
const faultUpstreamEnv = "BRIDGE_FAULT_UPSTREAM"

// runFaultUpstream is a small line-delimited JSON-RPC MCP server whose tools
// misbehave on purpose: crash exits mid-call, hang never answers, flood
// sends a burst of notifications before answering. At start it writes its
// whole environment and its arguments to stderr, as a careless server
// would, so the canary test can check the gateway keeps them out of its
// log. It returns the process exit code.
func runFaultUpstream(in io.Reader, out, errOut io.Writer) int {
	fmt.Fprintf(errOut, "fault upstream args: %s\n", strings.Join(os.Args, " "))
	for _, kv := range os.Environ() {
		fmt.Fprintf(errOut, "fault upstream env: %s\n", kv)
	}
	var mu sync.Mutex
	write := func(v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.Write(append(b, '\n'))
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string         `json:"protocolVersion"`
				Name            string         `json:"name"`
				Arguments       map[string]any `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.ID == nil || m.Method == "" {
			continue // notifications and responses need no answer
		}
		answer := func(result any) { write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result}) }
		text := func(s string) { answer(map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}) }
		switch m.Method {
		case "initialize":
			answer(map[string]any{"protocolVersion": m.Params.ProtocolVersion, "capabilities": map[string]any{"tools": map[string]any{}},
				"serverInfo": map[string]any{"name": "fault-upstream", "version": "1"}})
		case "ping":
			answer(map[string]any{})
		case "tools/list":
			var tools []any
			for _, n := range []string{"echo", "crash", "hang", "flood"} {
				tools = append(tools, map[string]any{"name": n, "inputSchema": map[string]any{"type": "object"}})
			}
			answer(map[string]any{"tools": tools})
		case "tools/call":
			switch m.Params.Name {
			case "echo":
				msg, _ := m.Params.Arguments["message"].(string)
				fmt.Fprintf(errOut, "fault upstream echo: %s\n", msg)
				text(msg)
			case "crash":
				fmt.Fprintln(errOut, "fault upstream: crashing mid-call")
				return 3
			case "hang":
				// never answered
			case "flood":
				n, _ := m.Params.Arguments["count"].(float64)
				size, _ := m.Params.Arguments["size"].(float64)
				pad := strings.Repeat("x", int(size))
				for i := 0; i < int(n); i++ {
					write(map[string]any{"jsonrpc": "2.0", "method": "notifications/message",
						"params": map[string]any{"level": "info", "data": fmt.Sprintf("flood %d %s", i, pad)}})
				}
				text(fmt.Sprintf("flooded %d", int(n)))
			default:
				write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32602, "message": "unknown tool"}})
			}
		default:
			write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
		}
	}
	return 0
}
