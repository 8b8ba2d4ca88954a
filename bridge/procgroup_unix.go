//go:build unix

package bridge

import (
	"os/exec"
	"syscall"
)

// startInGroup makes the subprocess the leader of a new process group, so
// that everything it starts (the node behind npx, the python behind uvx,
// their own children) can be ended together.
func startInGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup kills the subprocess's whole process group. It is called only
// while the leader is not yet reaped, so its pid, which is the group's id,
// cannot have been reused.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
