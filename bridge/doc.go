// Package bridge is the raw JSON-RPC relay at the heart of bridge.
//
// It moves MCP messages between an agent and an upstream server without
// rebuilding them: every request, response and notification, in either
// direction, passes through byte for byte unless a Filter acts on it. The
// package supplies the message envelope, newline-delimited stdio framing, the
// Streamable HTTP server and client, the legacy HTTP+SSE transport, and the
// upstream connectors (stdio subprocess, Streamable HTTP, SSE).
//
// Each transport is a Conn: a bidirectional stream of messages. A Session
// pairs the client side of an HTTP exchange with an upstream Conn and routes
// what the upstream sends to the right HTTP stream.
package bridge
