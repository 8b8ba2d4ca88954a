package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// Masking replaces sensitive values in everything that flows to the client:
// responses, notifications and the upstream's own requests (sampling,
// elicitation). The profile is the policy rule's `mask:` when the rule that
// allowed the request names one, else the server's `mask:`, else "default".
// Every string that leaves is masked, keys and protocol fields included (see
// mask.Masker.MaskMessage). A message that cannot be checked, or that holds
// sensitive data in a field the protocol needs unchanged (its id or method,
// a progress token), is withheld, never passed through.
func Masking(set *mask.Set, serverProfiles map[string]string, pol *policy.Policy) Middleware {
	return func(next bridge.Filter) bridge.Filter {
		return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
			v, err := next.Filter(ctx, x, m)
			if err != nil || x.Direction != bridge.FromUpstream || v.Forward == nil {
				return v, err
			}
			profile := serverProfiles[x.Session.Server]
			if x.Request != nil && pol != nil {
				if d := decisionOf(pol, x, x.Request); d.Mask != "" {
					profile = d.Mask
				}
			}
			profile = taskProfile(x, m, profile)
			masker, ok := set.Profile(profile)
			if !ok {
				return bridge.Verdict{}, fmt.Errorf("masking profile %q does not exist", profile)
			}
			out, counts, err := masker.MaskMessage(v.Forward.Raw)
			var withheld *mask.WithheldError
			if errors.As(err, &withheld) {
				noteFrom(ctx).Masked = withheld.Counts
				return bridge.Verdict{}, bridge.Errorf(bridge.CodeRefused, "bridge: the gateway withheld a message that holds sensitive data in its "+
					strconv.Quote(withheld.Field)+" field, which cannot be masked without breaking the protocol", err)
			}
			if err != nil {
				return bridge.Verdict{}, bridge.Errorf(bridge.CodeRefused, "bridge: the gateway withheld a message it could not check for sensitive data", err)
			}
			if counts.Total() == 0 {
				return v, nil
			}
			noteFrom(ctx).Masked = counts
			masked, err := bridge.Parse(out)
			if err != nil {
				return bridge.Verdict{}, bridge.Errorf(bridge.CodeRefused, "bridge: the gateway withheld a message it could not check for sensitive data", err)
			}
			v.Forward = masked
			return v, nil
		})
	}
}
