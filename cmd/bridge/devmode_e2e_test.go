package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDevModeQuickstart runs what the README promises on a fresh machine:
// `bridge serve --dev`, then `bridge login` and `bridge connect demo` in a
// second terminal, with no other set-up; the sample policy masks, denies
// and holds as it says.
func TestDevModeQuickstart(t *testing.T) {
	serve := exec.Command(bridgeBin, "serve", "--dev", "--with-client", "--listen", "127.0.0.1:0")
	serve.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	var serveErr syncBuffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("bridge serve --dev:\n%s", serveErr.String())
		}
	})
	gw := listeningURL(t, &serveErr, 0)
	waitHTTP(t, gw+"/healthz")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(serveErr.String(), "bridge login --gateway "+gw); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve --dev does not say what to run next:\n%s", serveErr.String())
		}
	}

	// --with-client shows the product working in the one command.
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(serveErr.String(), "client: done"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || strings.Contains(serveErr.String(), "client: dev login") {
			t.Fatalf("the demo client did not finish:\n%s", serveErr.String())
		}
	}
	for _, want := range []string{"echo (allowed) → hello through bridge", "card [REDACTED:credit_card]", `rule "no-mass-delete"`} {
		if !strings.Contains(serveErr.String(), want) {
			t.Errorf("the demo client's output lacks %q", want)
		}
	}

	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "BRIDGE_HOME=" + home}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	login := exec.CommandContext(ctx, bridgeBin, "login", "--gateway", gw, "--no-browser", "--insecure-storage")
	login.Env = env
	out, err := login.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Logged in to "+gw+" as dev@example.com")) {
		t.Fatalf("bridge login: %v\n%s", err, out)
	}
	status := exec.CommandContext(ctx, bridgeBin, "status")
	status.Env = env
	out, err = status.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("dev@example.com")) || !bytes.Contains(out, []byte("eyJh…****")) {
		t.Errorf("bridge status: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("eyJhbGciOi")) {
		t.Error("bridge status printed a whole token")
	}

	w := &world{t: t, gwURL: gw}
	a := w.startAgent("BRIDGE_HOME=" + home)
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "hello dev"}))); got != "hello dev" {
		t.Errorf("echo = %q", got)
	}
	r := a.call("tools/call", toolCall("get_customers", nil))
	if bytes.Contains(r.Result, []byte("4111 1111 1111 1111")) || !bytes.Contains(r.Result, []byte("[REDACTED:credit_card]")) {
		t.Errorf("the sample policy did not mask cards: %s", r.Result)
	}
	if got := toolText(t, a.call("tools/call", toolCall("delete_records", map[string]any{"table": "customers"}))); !strings.Contains(got, "no-mass-delete") {
		t.Errorf("the sample policy did not deny a mass delete: %q", got)
	}
}
