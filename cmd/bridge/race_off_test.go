//go:build !race

package main

// raceEnabled reports that the tests run under the race detector, so the
// bridge binary the end-to-end tests start is built with it too.
const raceEnabled = false
