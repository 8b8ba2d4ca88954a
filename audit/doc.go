// Package audit keeps the gateway's tamper-evident, hash-chained, append-only
// record of every exchange, and verifies, queries and replays it.
package audit
