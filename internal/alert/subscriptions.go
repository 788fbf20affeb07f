package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Subscriptions are the table the Anchore API keeps (keyed by full tag,
// one per type); the gate's API adds the channels they notify.

// SubscriptionInput is a subscription as a user writes it. A nil Active or
// Channels keeps the stored value on update; on create Active defaults to
// true.
type SubscriptionInput struct {
	Key      string
	Type     string
	Active   *bool
	Channels *[]string
}

// CreateSubscription adds a subscription for a full tag.
func (s *Service) CreateSubscription(ctx context.Context, in SubscriptionInput) (*buildgate.Subscription, error) {
	if strings.TrimSpace(in.Key) == "" || in.Type == "" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "a subscription needs a key (a tag, registry/repository:tag) and a type (%s)", strings.Join(buildgate.SubscriptionTypes(), ", "))
	}
	if !slices.Contains(buildgate.SubscriptionTypes(), in.Type) {
		return nil, buildgate.Errorf(buildgate.EINVALID, "unknown subscription type %q (want one of %s)", in.Type, strings.Join(buildgate.SubscriptionTypes(), ", "))
	}
	key, err := s.registry.NormalizeTag(strings.TrimSpace(in.Key))
	if err != nil {
		return nil, err
	}
	active := in.Active == nil || *in.Active
	sub, err := s.store.AddSubscription(ctx, key, in.Type, active)
	if err != nil {
		return nil, err
	}
	if in.Channels != nil && len(*in.Channels) > 0 {
		if err := s.store.SetSubscriptionChannels(ctx, sub.ID, cleanIDs(*in.Channels)); err != nil {
			if derr := s.store.DeleteSubscription(ctx, sub.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("removing the half-made subscription %s: %w", sub.ID, derr))
			}
			return nil, err
		}
	}
	s.log.Info("subscription created", "subscription", sub.ID, "key", key, "type", in.Type, "active", active)
	if in.Type == buildgate.SubscriptionTagUpdate && active {
		s.PollSoon()
	}
	return s.Subscription(ctx, sub.ID)
}

// UpdateSubscription activates or deactivates a subscription and replaces
// its channels. Its key and type cannot change.
func (s *Service) UpdateSubscription(ctx context.Context, id string, in SubscriptionInput) (*buildgate.Subscription, error) {
	cur, err := s.store.Subscription(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Type != "" && in.Type != cur.Type {
		return nil, buildgate.Errorf(buildgate.EINVALID, "a subscription's type cannot change: delete it and add another")
	}
	if k := strings.TrimSpace(in.Key); k != "" {
		if key, err := s.registry.NormalizeTag(k); err != nil || key != cur.Key {
			return nil, buildgate.Errorf(buildgate.EINVALID, "a subscription's key cannot change: delete it and add another")
		}
	}
	if in.Channels != nil {
		if err := s.store.SetSubscriptionChannels(ctx, id, cleanIDs(*in.Channels)); err != nil {
			return nil, err
		}
	}
	if in.Active != nil && *in.Active != cur.Active {
		if _, err := s.store.SetSubscriptionActive(ctx, id, *in.Active); err != nil {
			return nil, err
		}
		if cur.Type == buildgate.SubscriptionTagUpdate && *in.Active {
			s.PollSoon()
		}
	}
	return s.Subscription(ctx, id)
}

// Subscription returns one subscription with its channels.
func (s *Service) Subscription(ctx context.Context, id string) (*buildgate.Subscription, error) {
	sub, err := s.store.Subscription(ctx, id)
	if err != nil {
		return nil, err
	}
	chans, err := s.store.SubscriptionChannels(ctx)
	if err != nil {
		return nil, err
	}
	sub.Channels = orEmpty(chans[id])
	return sub, nil
}

// Subscriptions lists subscriptions, those with key and type only when
// they are not empty.
func (s *Service) Subscriptions(ctx context.Context, key, typ string) ([]buildgate.Subscription, error) {
	if typ != "" && !slices.Contains(buildgate.SubscriptionTypes(), typ) {
		return nil, buildgate.Errorf(buildgate.EINVALID, "unknown subscription type %q (want one of %s)", typ, strings.Join(buildgate.SubscriptionTypes(), ", "))
	}
	if key != "" {
		k, err := s.registry.NormalizeTag(key)
		if err != nil {
			return nil, err
		}
		key = k
	}
	subs, err := s.store.ListSubscriptions(ctx, key, typ)
	if err != nil {
		return nil, err
	}
	chans, err := s.store.SubscriptionChannels(ctx)
	if err != nil {
		return nil, err
	}
	for i := range subs {
		subs[i].Channels = orEmpty(chans[subs[i].ID])
	}
	return subs, nil
}

// DeleteSubscription deletes a subscription.
func (s *Service) DeleteSubscription(ctx context.Context, id string) error {
	if err := s.store.DeleteSubscription(ctx, id); err != nil {
		return err
	}
	s.log.Info("subscription deleted", "subscription", id)
	return nil
}

// SubscriptionDeliveries returns a subscription's deliveries, newest
// first; limit 0 means 100.
func (s *Service) SubscriptionDeliveries(ctx context.Context, id string, limit int) ([]buildgate.Delivery, error) {
	if _, err := s.store.Subscription(ctx, id); err != nil {
		return nil, err
	}
	return s.store.Deliveries(ctx, buildgate.SourceSubscription, id, deliveryLimit(limit))
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cleanIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// PollSoon asks the tag poller to poll now (a tag_update subscription was
// added or activated).
func (s *Service) PollSoon() {
	select {
	case s.pollNow <- struct{}{}:
	default:
	}
}

// runTagPoller polls tag_update subscriptions at start and every
// TagPollInterval until ctx ends.
func (s *Service) runTagPoller(ctx context.Context) {
	if s.cfg.TagPollInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.TagPollInterval)
	defer t.Stop()
	asked := false
	for {
		// Replicas sharing a store poll in turn: a timed round is polled by
		// the gate that claims it; a poll asked of this gate always runs.
		claimed, err := s.store.ClaimRound(ctx, "tag-poll", s.Now(), s.cfg.TagPollInterval*9/10)
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming a round of tag polling", "err", err)
		}
		if asked || claimed {
			if err := s.PollTags(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("polling subscribed tags", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			asked = false
		case <-s.pollNow:
			asked = true
		}
	}
}

// PollTags resolves the tag of every active tag_update subscription with
// the gate's stored credentials. A tag that points at a digest it did not
// point at before is submitted for analysis (an analysed digest is not
// analysed again), and a change from a known digest is told to the
// subscription's channels.
func (s *Service) PollTags(ctx context.Context) error {
	subs, err := s.store.ListSubscriptions(ctx, "", buildgate.SubscriptionTagUpdate)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if !sub.Active || ctx.Err() != nil {
			continue
		}
		s.pollTag(ctx, sub.Key)
	}
	return ctx.Err()
}

func (s *Service) pollTag(ctx context.Context, tag string) {
	log := s.log.With("tag", tag)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := s.registry.Resolve(rctx, tag)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("polling a subscribed tag", "err", err)
			if serr := s.store.SetTagDigest(ctx, tag, "", truncate(err.Error(), maxError), s.Now()); serr != nil {
				log.Warn("recording a tag poll error", "err", serr)
			}
		}
		return
	}
	prev, err := s.store.TagDigest(ctx, tag)
	if err != nil {
		log.Error("reading the last digest of a tag", "err", err)
		return
	}
	if res.Digest == prev {
		if err := s.store.SetTagDigest(ctx, tag, prev, "", s.Now()); err != nil {
			log.Warn("recording a tag poll", "err", err)
		}
		return
	}
	// Submit by digest, keeping the tag, so the digest analysed is the
	// one just seen.
	if _, err := s.images.Submit(rctx, buildgate.SubmitRequest{Ref: strings.TrimSuffix(tag, "@"+res.Digest) + "@" + res.Digest}); err != nil {
		log.Warn("submitting a tag's new digest", "digest", res.Digest, "err", err)
		return
	}
	if err := s.store.SetTagDigest(ctx, tag, res.Digest, "", s.Now()); err != nil {
		log.Error("recording a tag's digest", "err", err)
	}
	log.Info("subscribed tag points at a new digest; submitted it", "digest", res.Digest, "previous", prev)
	if prev == "" {
		return
	}
	s.dispatch(ctx, event{
		typ: buildgate.SubscriptionTagUpdate, key: "tag_update:" + tag + ":" + res.Digest, subTags: []string{tag},
		p: payload{Type: buildgate.SubscriptionTagUpdate, Image: &imageRef{Digest: res.Digest, Tag: tag},
			TagUpdate: &tagUpdateInfo{Tag: tag, Previous: prev, Digest: res.Digest}},
	})
}
