package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
)

// callOK sends a request with a string id of the caller's choosing and
// waits at most limit for its answer; it never calls t.Fatal, so load
// goroutines can use it.
func (a *agent) callOK(id, method string, params any, limit time.Duration) (rpcResponse, error) {
	raw, _ := json.Marshal(id)
	ch := a.expect(string(raw))
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return rpcResponse{}, err
	}
	if _, err := a.stdin.Write(append(b, '\n')); err != nil {
		return rpcResponse{}, err
	}
	select {
	case line := <-ch:
		var r rpcResponse
		err := json.Unmarshal(line, &r)
		return r, err
	case <-time.After(limit):
		return rpcResponse{}, fmt.Errorf("no answer to %s %s in %s", method, id, limit)
	}
}

// initOK is initialize without t.Fatal.
func (a *agent) initOK(id string) error {
	r, err := a.callOK(id, "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "reliability", "version": "1"},
	}, 60*time.Second)
	if err != nil {
		return err
	}
	if r.Error != nil {
		return fmt.Errorf("initialize: %s", r.Error.Message)
	}
	a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return nil
}

// resultText is the text of a tools/call result and whether it is an error.
func resultText(r rpcResponse) (string, bool) {
	if r.Error != nil {
		return r.Error.Message, true
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	_ = json.Unmarshal(r.Result, &res)
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text)
	}
	return b.String(), res.IsError
}

// proc is one process in this test's tree.
type proc struct {
	pid     int
	cmdline string
	rssKiB  int
}

// descendants lists the live processes below this one (children,
// grandchildren…), read from /proc; zombies are counted, since a process
// nobody reaped is a leak too.
func descendants() []proc {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	self := os.Getpid()
	var out []proc
	for pid := range parent {
		for p, hops := parent[pid], 0; p != 0 && hops < 64; p, hops = parent[p], hops+1 {
			if p == self {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				out = append(out, proc{pid: pid, cmdline: string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})), rssKiB: rssKiB(pid)})
				break
			}
		}
	}
	return out
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// rssOf sums the resident memory of the processes whose command line
// contains substr, and counts them.
func rssOf(ps []proc, substr string) (kib, n int) {
	for _, p := range ps {
		if strings.Contains(p.cmdline, substr) {
			kib += p.rssKiB
			n++
		}
	}
	return kib, n
}

// heapInUse is the gateway process's live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// settle polls cond (every 50 ms, for at most limit) and reports whether it
// came to hold: for counts that go back to baseline once cleanup ends.
func settle(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// pendingCount is how many approval requests are pending.
func (w *world) pendingCount() int {
	rs, err := w.queue.List(context.Background(), queue.Filter{States: []queue.State{queue.StatePending}})
	if err != nil {
		return -1
	}
	return len(rs)
}

// goroutines counts this process's goroutines, leaving out the test fake
// clock's waiters (fakeClock.After polls until its deadline, which a hold
// answered early never reaches; time.After in production leaves nothing),
// and returns their stacks for a report.
func goroutines() (int, string) {
	buf := make([]byte, 8<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	n := 0
	var kept []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "(*fakeClock).After") {
			continue
		}
		n++
		kept = append(kept, g)
	}
	return n, strings.Join(kept, "\n\n")
}

// listeningURL is the URL in the newest "gateway listening" line of a
// `bridge serve` log after the first seen such lines. Gateways under test
// listen on 127.0.0.1:0 and the test reads the port back: a port picked
// by a listener closed before the start could be taken in between.
func listeningURL(t *testing.T, log *syncBuffer, seen int) string {
	t.Helper()
	var url string
	waitFor(t, "the gateway to listen", func() bool {
		m := listeningLine.FindAllStringSubmatch(log.String(), -1)
		if len(m) > seen {
			url = m[len(m)-1][1]
			return true
		}
		return false
	})
	return url
}

// listenings counts the "gateway listening" lines of a log so far.
func listenings(log *syncBuffer) int {
	return len(listeningLine.FindAllStringSubmatch(log.String(), -1))
}

var listeningLine = regexp.MustCompile(`gateway listening.*?url[=":]+(http://127\.0\.0\.1:[0-9]+)`)
