package queue

// Error is a refusal whose message is safe to show the person who asked:
// it names no secret, no argument value and no internal detail. Errors
// that are not an *Error (a store failure, say) are internal and must not
// reach a client.
//
// errors.Is matches an *Error against the sentinels below by Code, so a
// refusal with a more specific message still is ErrExpired, say.
type Error struct {
	// Code is a stable, machine-readable name such as "not_pending".
	Code string
	// Message is for people.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// with returns a refusal of the same kind with a more specific message.
func (e *Error) with(msg string) *Error { return &Error{Code: e.Code, Message: msg} }

// With is with for other packages: a CheckEdit refusal, say. msg is shown
// to the person who asked, so it must name no secret or argument value.
func (e *Error) With(msg string) *Error { return e.with(msg) }

// The refusals. Compare with errors.Is.
var (
	// ErrNotFound: no request has this id (or the caller may not see it).
	ErrNotFound = &Error{Code: "not_found", Message: "no such approval request"}
	// ErrNotPending: the request was already decided, cancelled or executed.
	ErrNotPending = &Error{Code: "not_pending", Message: "the approval request is no longer pending"}
	// ErrExpired: the request's deadline passed.
	ErrExpired = &Error{Code: "expired", Message: "the approval request has expired"}
	// ErrSelfReview: requesters never review their own request.
	ErrSelfReview = &Error{Code: "self_review", Message: "you cannot review your own approval request"}
	// ErrNotApprover: the reviewer holds none of the approver groups.
	ErrNotApprover = &Error{Code: "not_approver", Message: "you are not in an approver group for this request"}
	// ErrAlreadyReviewed: this person already approved these arguments;
	// one person counts once toward MinApprovals.
	ErrAlreadyReviewed = &Error{Code: "already_reviewed", Message: "you already approved this request; another approver must decide"}
	// ErrLimit: the request would exceed a bound (pending requests per
	// requester, argument size).
	ErrLimit = &Error{Code: "limit", Message: "an approval limit was reached"}
	// ErrEditRefused: a reviewer's edited arguments are not what policy
	// sends to this approval (Options.CheckEdit).
	ErrEditRefused = &Error{Code: "edit_refused", Message: "policy would not send the edited call to this approval"}
	// ErrInvalid: the decision or the request is malformed.
	ErrInvalid = &Error{Code: "invalid", Message: "invalid approval input"}
	// ErrNotApproved: Claim on a request that is not approved.
	ErrNotApproved = &Error{Code: "not_approved", Message: "the call has not been approved"}
	// ErrAlreadyExecuted: Claim on a request whose call already ran.
	ErrAlreadyExecuted = &Error{Code: "already_executed", Message: "the approved call has already run; a new call needs a new approval"}
)
