// Package mask finds sensitive values (payment cards, national ids, cloud keys,
// tokens, private keys, custom patterns) in text and in JSON-RPC messages, and
// replaces them before anything reaches the agent.
package mask
