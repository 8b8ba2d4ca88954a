package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Command describes an upstream MCP server started as a subprocess that
// speaks JSON-RPC on its stdin and stdout.
type Command struct {
	Path string
	Args []string
	// Env is the subprocess's whole environment, NAME=value. The gateway's
	// own environment is not inherited, so its secrets stay its own.
	Env []string
	Dir string
	// MaxMessageBytes bounds one message from the subprocess.
	MaxMessageBytes int
	// Logger receives the subprocess's stderr, line by line.
	Logger *slog.Logger
	// StopTimeout is how long Close waits after closing stdin before it
	// kills the process.
	StopTimeout time.Duration
	// Redact are secret values (the credentials in Env) replaced by
	// [REDACTED] in the captured stderr, in case the server prints them.
	Redact []string
}

// commandConn is a running subprocess as a Conn.
type commandConn struct {
	*StreamConn
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{}
	waitErr  error
	stop     time.Duration
	stopOnce sync.Once
}

// Start starts the subprocess; ctx bounds only the start. Closing the returned Conn closes its stdin,
// waits up to StopTimeout, then kills and reaps it.
func (c Command) Start(ctx context.Context) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Path == "" {
		return nil, errors.New("bridge: upstream command is empty")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = c.Dir
	startInGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, Errorf(CodeUnavailable, "bridge: the upstream MCP server could not be started", err)
	}
	stop := c.StopTimeout
	if stop <= 0 {
		stop = 3 * time.Second
	}
	cc := &commandConn{cmd: cmd, stdin: stdin, exited: make(chan struct{}), stop: stop}
	cc.StreamConn = NewStreamConn(stdout, stdin, StreamOptions{
		MaxMessageBytes: c.MaxMessageBytes,
		AnswerOversized: true,
		OnInvalid: func(err error) {
			log.Warn("upstream wrote an invalid message; skipped", "pid", cmd.Process.Pid, "err", err)
		},
	})
	var pairs []string
	for _, v := range c.Redact {
		if len(v) >= 4 {
			pairs = append(pairs, v, "[REDACTED]")
		}
	}
	redact := strings.NewReplacer(pairs...)
	var stderrDone sync.WaitGroup
	stderrDone.Add(1)
	go func() {
		defer stderrDone.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		for sc.Scan() {
			line := redact.Replace(sc.Text())
			if len(line) > 2000 {
				line = line[:2000] + "…"
			}
			log.Info("upstream stderr", "pid", cmd.Process.Pid, "line", line)
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		// Wait closes the pipes: call it only after both readers stopped,
		// which is when every process holding them has closed them.
		stderrDone.Wait()
		<-cc.StreamConn.readDone
		// The output is over: end whatever of the group is still running
		// (a child that let go of the pipes) before the leader is reaped,
		// while its pid still names the group.
		killGroup(cmd)
		cc.waitErr = cmd.Wait()
		close(cc.exited)
	}()
	return cc, nil
}

// Recv returns io.EOF once the process has exited and its output is read.
func (cc *commandConn) Recv(ctx context.Context) (*Message, error) {
	m, err := cc.StreamConn.Recv(ctx)
	if err == io.EOF {
		select {
		case <-cc.exited:
			if cc.waitErr != nil {
				return nil, fmt.Errorf("upstream process exited: %w", cc.waitErr)
			}
		default:
		}
	}
	return m, err
}

// Close closes stdin, gives the process StopTimeout to exit, then kills its
// whole process group (the children it started too, which may hold its
// output open), and reaps it either way.
func (cc *commandConn) Close() error {
	cc.stopOnce.Do(func() {
		_ = cc.StreamConn.Close() // stops the reader, so Wait can run
		_ = cc.stdin.Close()
		timer := time.NewTimer(cc.stop)
		defer timer.Stop()
		select {
		case <-cc.exited:
		case <-timer.C:
			killGroup(cc.cmd)
			<-cc.exited
		}
	})
	return nil
}
