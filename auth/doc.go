// Package auth holds identity for both sides of bridge: the device-code login
// client, the token store and refresher used by `bridge connect`, and the
// gateway's access-token verifier.
package auth
