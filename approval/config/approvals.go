package config

// Approvals bounds what one requester can hold in the approval queue.
// Zero fields take the queue's defaults (20 pending requests per
// requester, 64 KiB of canonical arguments per held call).
type Approvals struct {
	// MaxPendingPerRequester bounds the calls one person may have waiting
	// for approval at once; the next is refused with a message saying so.
	MaxPendingPerRequester int `yaml:"max_pending_per_requester"`
	// MaxArgsBytes bounds the canonical arguments of a held call (and of
	// a reviewer's edit), in bytes; a larger call is refused, not stored.
	MaxArgsBytes int `yaml:"max_args_bytes"`
}

// validate reports values out of range.
func (a Approvals) validate(l *loader) {
	if a.MaxPendingPerRequester < 0 || a.MaxPendingPerRequester > 10000 {
		l.errorf("approvals.max_pending_per_requester", "must be between 1 and 10000 (0 for the default, 20)")
	}
	if a.MaxArgsBytes < 0 || a.MaxArgsBytes > 16<<20 {
		l.errorf("approvals.max_args_bytes", "must be between 1 and 16777216 (0 for the default, 65536)")
	}
}
