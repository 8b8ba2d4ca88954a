package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// normalizeGateway turns what a user passes as --gateway into the gateway's
// base URL. A bare host or host:port means https, except on loopback, where
// development gateways (`bridge serve --dev`) serve plain http. Anything
// else that is not an http(s) URL with a host is a usage error that shows
// the form wanted.
func normalizeGateway(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	s := raw
	if !strings.Contains(s, "://") {
		host := s
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		scheme := "https://"
		if isLoopbackHost(hostOnly(host)) {
			scheme = "http://"
		}
		s = scheme + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError{fmt.Errorf("--gateway %q is not a gateway URL: want https://host[:port], such as https://mcp-gw.example.com", raw)}
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil && port == "" {
		return "", usageError{fmt.Errorf("--gateway %q has an empty port: want https://host[:port]", raw)}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// hostOnly strips a port from host:port (and brackets from [::1]:port).
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
