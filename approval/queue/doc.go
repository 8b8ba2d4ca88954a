// Package queue is bridge's durable approval queue: calls that policy holds
// for a human decision wait here as a [Request] until reviewers approve or
// deny them, the client cancels, or they expire.
//
// The gateway creates a request for a held call ([Queue.Create]), waits for
// it to leave pending ([Queue.Wait]), and on the requester's retry finds it
// again by the call's identity ([Queue.FindForCall]) and takes it for
// execution exactly once ([Queue.Claim]). Reviewers decide through the HTTP
// API ([NewHandler]) that `bridge approvals` talks to; [Queue.Decide]
// enforces separation of duties. Notifications go out in the background
// through a [Dispatcher] to [Webhook] and [Slack] senders, so a slow
// receiver never delays a decision.
//
// Requests live in a [Store]: [BoltStore] (the "approvals" bucket of a
// bbolt file that may be shared with the audit log) or [MemStore] for tests.
//
// A request binds to its arguments in canonical form (policy.CanonicalJSON)
// and to their keyed digest (policy.Digester, under a per-installation key
// the BoltStore keeps); webhooks carry only that digest. A requester has at
// most Options.MaxPendingPerRequester requests pending and arguments of at
// most Options.MaxArgsBytes; the expiry sweep reads the store's deadline
// index, not the requests.
//
// Life of a request:
//
//	pending ──approve×MinApprovals──▶ approved ──Claim──▶ executed
//	   │ └──deny──▶ denied               └──deadline──▶ expired
//	   ├──deadline──▶ expired
//	   └──Cancel──▶ cancelled
package queue
