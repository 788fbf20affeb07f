package alert

import (
	"context"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Bounds of what an attempt keeps of an answer or an error.
const (
	maxAnswer = 512
	maxError  = 1024
	// claimBatch is how many deliveries a worker claims at once.
	claimBatch = 8
)

// lease is how long a claim keeps other workers off a delivery: longer
// than any send, so a delivery is sent twice only when its gate died
// mid-send.
func (s *Service) lease() time.Duration { return 2*s.cfg.SendTimeout + 15*time.Second }

// runOutbox sends due deliveries until ctx ends.
func (s *Service) runOutbox(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		n, err := s.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming deliveries", "err", err)
		}
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
	}
}

// DeliverDue claims the deliveries due now and makes one attempt at each.
// It returns how many it tried.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	ds, err := s.store.ClaimDeliveries(ctx, s.cfg.WorkerID, s.Now(), s.lease(), claimBatch)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		s.attempt(ctx, d)
	}
	return len(ds), nil
}

// attempt sends one delivery and records the attempt: delivered, pending
// again after a backoff, or failed for good (a permanent error, the last
// attempt, or a channel that no longer exists).
func (s *Service) attempt(ctx context.Context, d buildgate.Delivery) {
	n := d.Attempts + 1
	start := s.Now()
	rec := buildgate.DeliveryAttempt{Attempt: n, At: start}
	res, key, err := s.send(ctx, d)
	rec.DurationMS = s.Now().Sub(start).Milliseconds()
	rec.StatusCode = res.StatusCode
	rec.Answer = truncate(secret.Redact(res.Answer, string(key)), maxAnswer)
	status, next := buildgate.DeliveryDelivered, time.Time{}
	if err == nil {
		rec.OK = true
	} else {
		rec.Error = truncate(secret.Redact(err.Error(), string(key)), maxError)
		switch {
		case ctx.Err() != nil:
			// The gate is stopping: try again at the next start.
			rec.Error = "interrupted by the gate's shutdown: " + rec.Error
			status, next = buildgate.DeliveryPending, s.Now()
		case permanent(err) || n >= s.cfg.MaxAttempts:
			status = buildgate.DeliveryFailed
		default:
			status, next = buildgate.DeliveryPending, s.Now().Add(s.backoff(n))
		}
	}
	log := s.log.With("delivery", d.ID, "channel", d.ChannelID, "event", d.EventType, "attempt", n)
	if err := s.store.RecordAttempt(context.WithoutCancel(ctx), d.ID, rec, status, next); err != nil {
		log.Error("recording a delivery attempt", "err", err)
		return
	}
	switch status {
	case buildgate.DeliveryDelivered:
		log.Info("notification delivered", "status_code", rec.StatusCode)
	case buildgate.DeliveryFailed:
		log.Warn("notification failed for good", "err", rec.Error)
	default:
		log.Info("notification failed; will retry", "err", rec.Error, "next_attempt", next)
	}
}

// failure is an error that is never retried.
type failure string

func (f failure) Error() string   { return string(f) }
func (f failure) Permanent() bool { return true }

// send sends a delivery to its channel. It returns the channel's secret
// too, so that the caller can keep it out of what it records.
func (s *Service) send(ctx context.Context, d buildgate.Delivery) (buildgate.SendResult, secret.Secret, error) {
	ch, err := s.store.Channel(ctx, d.ChannelID)
	if err != nil {
		if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
			return buildgate.SendResult{}, "", failure("the channel was deleted")
		}
		return buildgate.SendResult{}, "", err
	}
	if err := s.openURL(ctx, ch); err != nil {
		return buildgate.SendResult{}, "", err
	}
	key, err := s.channelSecret(ctx, ch.ID)
	if err != nil {
		return buildgate.SendResult{}, "", err
	}
	sender := s.senders[ch.Type]
	if sender == nil {
		return buildgate.SendResult{}, key, failure("no sender for channel type " + ch.Type)
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	msg := d.Message
	msg.DeliveryID = d.ID
	res, err := sender.Send(sctx, *ch, key, msg)
	return res, key, err
}

// channelSecret opens a channel's sealed secret ("" when it has none).
func (s *Service) channelSecret(ctx context.Context, id string) (secret.Secret, error) {
	sealed, err := s.store.ChannelSecret(ctx, id)
	if err != nil || sealed == "" {
		return "", err
	}
	plain, err := s.sealer.Open(sealed, secret.ChannelSecret(id))
	if err != nil {
		return "", failure("opening the channel's secret: " + err.Error())
	}
	return secret.Secret(plain), nil
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
