package bridge

import (
	"errors"
	"net/url"
)

// redactURLError returns err with the URL of any *url.Error in it cut to
// its scheme and host. An upstream's URL may carry a credential in its
// userinfo, path or query (?token=…), and net/http puts the whole URL in
// its errors, which reach logs; the host is enough to say what failed.
func redactURLError(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	short := "the upstream URL"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		short = (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() + "/…"
	}
	return &url.Error{Op: ue.Op, URL: short, Err: ue.Err}
}
