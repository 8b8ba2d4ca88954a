package main

// checkView is one check of `bridge doctor -o json`.
type checkView struct {
	Name   string   `json:"name"`
	Status string   `json:"status"` // ok, warn, fail or skip
	Detail []string `json:"detail"`
	Fixes  []string `json:"fixes,omitempty"`
}

// doctorView is `bridge doctor -o json`.
type doctorView struct {
	OK     bool        `json:"ok"` // no check failed; warnings do not fail
	Checks []checkView `json:"checks"`
}

// writeJSON prints the checklist as one JSON object; the exit status is
// the text output's: 1 when a check failed.
func (d *doctor) writeJSON() error {
	v := doctorView{OK: true, Checks: make([]checkView, 0, len(d.checks))}
	failed := 0
	for _, c := range d.checks {
		status := [...]string{"ok", "warn", "fail", "skip"}[c.status]
		cv := checkView{Name: c.name, Status: status, Detail: c.detail}
		if c.status == checkFail || c.status == checkWarn {
			cv.Fixes = c.fixes
		}
		if c.status == checkFail {
			failed++
			v.OK = false
		}
		v.Checks = append(v.Checks, cv)
	}
	if err := writeJSONOut(d.f.IO.Out, v); err != nil {
		return err
	}
	if failed > 0 {
		return errDoctor{failed}
	}
	return nil
}
