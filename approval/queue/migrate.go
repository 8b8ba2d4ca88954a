package queue

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// migrateV1 rewrites a format 1 store, whose argument digests were plain
// SHA-256, to format 2 inside the caller's transaction:
//
//   - every request's arguments are stored in canonical form and its
//     ArgsDigest and EditedDigest become keyed digests of them, so a
//     pending request made before the upgrade is still found by the
//     identical call after it;
//   - each review keeps counting for the arguments it approved: its digest
//     is mapped from the old digest to the new one. A review whose digest
//     matches neither (which a format 1 store never wrote) is marked
//     "unkeyed:…" and so no longer counts;
//   - a pending or approved request whose arguments the strict decoding
//     refuses (a duplicate name, invalid UTF-8) is cancelled, with a
//     reason that says so: it was approved, or would be, on arguments
//     that the gateway and an upstream could read differently;
//   - the calls/ index is rebuilt over the new digests and deadlines/ is
//     built.
//
// Audit records written before the upgrade keep their unkeyed digests:
// they are hash-chained and cannot be rewritten.
func migrateV1(top *bolt.Bucket, d *policy.Digester, now time.Time) error {
	reqs := top.Bucket([]byte(bucketRequests))
	var all []*Request
	if err := reqs.ForEach(func(k, v []byte) error {
		r, err := decode(string(k), v)
		if err != nil {
			return err
		}
		all = append(all, r)
		return nil
	}); err != nil {
		return err
	}
	for _, name := range []string{bucketCalls, bucketDeadlines} {
		if err := top.DeleteBucket([]byte(name)); err != nil {
			return err
		}
		if _, err := top.CreateBucket([]byte(name)); err != nil {
			return err
		}
	}
	calls, dl := top.Bucket([]byte(bucketCalls)), top.Bucket([]byte(bucketDeadlines))
	for _, r := range all {
		rekey(r, d, now)
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := reqs.Put([]byte(r.ID), v); err != nil {
			return err
		}
		if err := calls.Put(callIndexKey(r), nil); err != nil {
			return err
		}
		if isLive(r.State) {
			if err := dl.Put(deadlineKey(r), []byte(r.Requester.Subject+"\x00"+string(r.State))); err != nil {
				return err
			}
		}
	}
	return nil
}

// rekey moves one format 1 request to keyed digests.
func rekey(r *Request, d *policy.Digester, now time.Time) {
	renamed := map[string]string{}
	refused := ""
	if c, err := policy.CanonicalJSON(r.Args); err == nil {
		r.Args = c
		renamed[r.ArgsDigest] = d.Canonical(c)
		r.ArgsDigest = d.Canonical(c)
	} else {
		refused = "its arguments"
		renamed[r.ArgsDigest] = d.Args(r.Args)
		r.ArgsDigest = d.Args(r.Args)
	}
	if r.EditedDigest != "" {
		if c, err := policy.CanonicalJSON(r.EditedArgs); err == nil {
			r.EditedArgs = c
			renamed[r.EditedDigest] = d.Canonical(c)
			r.EditedDigest = d.Canonical(c)
		} else {
			refused = "its edited arguments"
			renamed[r.EditedDigest] = d.Args(r.EditedArgs)
			r.EditedDigest = d.Args(r.EditedArgs)
		}
	}
	for i, rv := range r.Reviews {
		if nd, ok := renamed[rv.ArgsDigest]; ok {
			r.Reviews[i].ArgsDigest = nd
		} else if !policy.IsKeyedDigest(rv.ArgsDigest) {
			r.Reviews[i].ArgsDigest = "unkeyed:" + rv.ArgsDigest
		}
	}
	if refused != "" && isLive(r.State) {
		r.State, r.DecidedAt = StateCancelled, now
		r.CancelReason = fmt.Sprintf("withdrawn on upgrade: %s cannot be read strictly (a duplicate name or invalid UTF-8), so the approval could not bind to what would run; call again", refused)
	}
}
