// Package mask finds sensitive values (payment cards, national ids, cloud keys,
// tokens, private keys, custom patterns) in text and in JSON-RPC messages, and
// replaces them before anything reaches the agent.
//
// New compiles the `masking:` section of the gateway configuration (Config)
// into a Set of named profiles; each profile is a Masker. MaskText masks
// plain text, MaskMessage masks one MCP JSON-RPC message flowing to the
// client and MaskJSONValue masks arbitrary JSON such as tool arguments before
// they are logged. Each returns Counts (detector name → findings), never the
// values found.
//
// The builtin detectors validate what they find, so look-alikes stay: card
// numbers need a known issuer prefix and the Luhn digit, SSNs the area, group
// and serial rules, IBANs the country length and mod-97, JWTs a header that
// decodes to JSON naming an algorithm. See Builtins for their names.
//
// Text is scanned once: a 256-entry table marks the few bytes at which a
// detector can fire (digits, '@', '=', ':', '-', '_', 'A', 'J', and the lead
// bytes of multi-byte runes), and each detector validates only around those
// bytes, without regular expressions. Custom rules (RE2 patterns and word
// lists) run after that scan. Text holding a rune that normalisation changes
// (Unicode digits, spaces, dashes, full-width forms, invisible characters) is
// scanned through a normalised view instead, and the original spans of the
// findings are replaced.
//
// MaskMessage masks every string of a message, keys and protocol fields
// included, decodes binary content, and returns a *WithheldError when a
// field the protocol needs unchanged holds a finding.
//
// Masking is idempotent: masking the output again changes nothing.
package mask
