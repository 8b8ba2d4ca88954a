//go:build !unix

package bridge

import "os/exec"

// startInGroup does nothing here: without process groups only the
// subprocess itself is ended (a job object would end its children too).
func startInGroup(*exec.Cmd) {}

// killGroup kills the subprocess.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
