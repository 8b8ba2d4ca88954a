// Package releasecheck holds the test of release artifacts that
// .ci/release-check runs after a goreleaser snapshot build: it signs the
// checksums of the snapshot's archive with a throwaway cosign-compatible
// key, verifies them as a user would, and checks that tampering is
// caught. The test is skipped unless BRIDGE_RELEASE_TEST=1.
package releasecheck
