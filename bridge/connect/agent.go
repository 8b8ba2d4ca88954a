package connect

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// AgentLink lets bridge connect speak to the agent itself, not only relay:
// to tell it that a login is needed and where.
type AgentLink interface {
	// Notify sends a notifications/message log line to the agent.
	Notify(level, text string)
	// OpenURL asks the agent to show the user a URL (MCP URL-mode
	// elicitation) and reports whether the agent supports that.
	OpenURL(url, message string) bool
}

// stdioLink is the AgentLink of a stdio relay.
type stdioLink struct {
	agent *bridge.StreamConn
	n     atomic.Int64

	mu     sync.Mutex
	urlOK  bool   // the agent declared URL-mode elicitation
	ourIDs string // prefix of the ids of our own requests
}

// noteInitialize reads the agent's capabilities from its initialize.
func (l *stdioLink) noteInitialize(m *bridge.Message) {
	var p struct {
		Capabilities struct {
			Elicitation *struct {
				URL json.RawMessage `json:"url"`
			} `json:"elicitation"`
		} `json:"capabilities"`
	}
	if json.Unmarshal(m.Params, &p) != nil {
		return
	}
	l.mu.Lock()
	l.urlOK = p.Capabilities.Elicitation != nil && p.Capabilities.Elicitation.URL != nil
	l.mu.Unlock()
}

// ours reports whether a response from the agent answers one of our own
// requests; those are not relayed.
func (l *stdioLink) ours(m *bridge.Message) bool {
	var id string
	if m.Kind != bridge.KindResponse || json.Unmarshal(m.ID, &id) != nil {
		return false
	}
	return len(id) > len(ownIDPrefix) && id[:len(ownIDPrefix)] == ownIDPrefix
}

const ownIDPrefix = "bridge-connect-"

func (l *stdioLink) Notify(level, text string) {
	m, err := bridge.NewNotification("notifications/message", map[string]any{"level": level, "logger": "bridge", "data": text})
	if err == nil {
		_ = l.agent.WriteRaw(m.Raw)
	}
}

func (l *stdioLink) OpenURL(url, message string) bool {
	l.mu.Lock()
	ok := l.urlOK
	l.mu.Unlock()
	if !ok {
		return false
	}
	id := ownIDPrefix + strconv.FormatInt(l.n.Add(1), 10)
	m, err := bridge.NewRequest(json.RawMessage(strconv.Quote(id)), "elicitation/create", map[string]any{
		"mode": "url", "url": url, "message": message, "elicitationId": id,
	})
	if err != nil {
		return false
	}
	return l.agent.WriteRaw(m.Raw) == nil
}
