// Package notifier mails the administrators about what drwatch sees — the
// notifications of seed 000 and a few more — at most once per error per
// watchdog.notification.interval, with a recovery mail when the error
// clears. The window lives in a JetStream KV bucket, so it survives restarts
// and is shared by every replica.
package notifier

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/notifier/internal/dedupe"
	"github.com/drwatch/drwatch/services/notifier/internal/mail"
	"github.com/drwatch/drwatch/services/notifier/internal/pipeline"
	"github.com/drwatch/drwatch/services/notifier/internal/rules"
)

// Options configure the notifier.
type Options struct {
	SMTP mail.Config
	From string
	To   []string
	// Interval is watchdog.notification.interval.
	Interval time.Duration
	// Bucket is the KV bucket of the dedupe windows.
	Bucket string
	// Durable is the bus consumer; replicas share it.
	Durable string
	// RetryBackOff is the delay before each retry of an event whose mail
	// failed; the last entry repeats for as long as it takes.
	RetryBackOff []time.Duration
	// AckWait is how long one event may take before the bus hands it to
	// another replica; it must exceed the SMTP timeout.
	AckWait time.Duration
	// ClaimTTL: see dedupe.Policy.
	ClaimTTL time.Duration
	// MaxAckPending bounds events in flight to this replica.
	MaxAckPending int
}

// DefaultOptions are the defaults of everything not in the site config.
func DefaultOptions() Options {
	return Options{
		SMTP:          mail.Config{Port: 25, Security: mail.STARTTLS, Timeout: 30 * time.Second},
		Interval:      time.Hour,
		Bucket:        dedupe.DefaultBucket,
		Durable:       "notifier",
		RetryBackOff:  []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute},
		AckWait:       time.Minute,
		ClaimTTL:      10 * time.Minute,
		MaxAckPending: 256,
	}
}

// OptionsFromConfig reads watchdog.notification.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	o := DefaultOptions()
	n := cfg.Watchdog.Notification
	o.SMTP.Host, o.SMTP.Port, o.SMTP.Security = n.SMTP.Host, n.SMTP.Port, mail.Security(n.SMTP.Security)
	o.SMTP.Username, o.SMTP.Password = n.SMTP.Username, n.SMTP.Password.Value()
	o.SMTP.HelloName = cfg.Site.Node
	if n.SMTP.CA != "" {
		pem, err := os.ReadFile(n.SMTP.CA)
		if err != nil {
			return o, fmt.Errorf("watchdog.notification.smtp.ca: %w", err)
		}
		o.SMTP.RootCAs = x509.NewCertPool()
		if !o.SMTP.RootCAs.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("watchdog.notification.smtp.ca: %s holds no PEM certificate", n.SMTP.CA)
		}
	}
	o.From = n.SMTP.From
	if o.From == "" {
		o.From = "drwatch@" + cfg.Site.Node
	}
	o.To = append([]string(nil), n.Email...)
	o.Interval = n.Interval.D()
	return o, nil
}

func (o Options) validate() error {
	var errs []error
	if err := o.SMTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !strings.Contains(o.From, "@") {
		errs = append(errs, fmt.Errorf("watchdog.notification.smtp.from: %q is not an e-mail address", o.From))
	}
	if len(o.To) == 0 {
		errs = append(errs, errors.New("watchdog.notification.email: no recipient"))
	}
	for i, to := range o.To {
		if !strings.Contains(to, "@") {
			errs = append(errs, fmt.Errorf("watchdog.notification.email[%d]: %q is not an e-mail address", i, to))
		}
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("watchdog.notification.interval: %s must be positive (seed default 3600s)", o.Interval))
	}
	if o.Bucket == "" || o.Durable == "" {
		errs = append(errs, errors.New("notifier: bucket and durable names are required"))
	}
	if len(o.RetryBackOff) == 0 {
		errs = append(errs, errors.New("notifier: retry back-off is empty"))
	}
	if o.AckWait <= o.SMTP.Timeout {
		errs = append(errs, fmt.Errorf("notifier: ack wait %s must exceed the SMTP timeout %s, or a slow send is handed to a second replica", o.AckWait, o.SMTP.Timeout))
	}
	if len(o.RetryBackOff) > 0 && o.ClaimTTL <= o.RetryBackOff[len(o.RetryBackOff)-1]+o.AckWait {
		errs = append(errs, fmt.Errorf("notifier: claim TTL %s must exceed the longest back-off plus the ack wait, or a claim still being retried is taken over", o.ClaimTTL))
	}
	return errors.Join(errs...)
}

// Run is the notifier's service.RunFunc.
func Run(ctx context.Context, deps service.Deps) error {
	opts, err := OptionsFromConfig(deps.Config)
	if err != nil {
		return err
	}
	if len(opts.To) == 0 {
		deps.Log.Warn("watchdog.notification.email is empty: nothing will be mailed")
		<-ctx.Done()
		return nil
	}
	return RunOptions(ctx, deps, opts)
}

// RunOptions runs the notifier with explicit options until ctx ends.
func RunOptions(ctx context.Context, deps service.Deps, opts Options) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	log := deps.Log.With("component", "notifier")
	sender, err := mail.New(opts.SMTP)
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	store, err := dedupe.NewKV(ctx, deps.Bus.JetStream(), opts.Bucket)
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	table := rules.Table()
	p := pipeline.New(pipeline.Config{From: opts.From, To: opts.To, Interval: opts.Interval, ClaimTTL: opts.ClaimTTL, Rules: table},
		store, sender, deps.Bus, now, log)
	log.Info("notifier running", "smtp", fmt.Sprintf("%s:%d", opts.SMTP.Host, opts.SMTP.Port), "security", opts.SMTP.Security, "recipients", opts.To, "interval", opts.Interval)
	err = deps.Bus.Consume(ctx, bus.ConsumerSpec{
		Durable: opts.Durable,
		Filters: rules.Filters(table, deps.Bus.Source().Site),
		Handler: p.Handle,
		BackOff: opts.RetryBackOff,
		// Never park a notification because the SMTP server was down for
		// long: keep retrying at the last back-off.
		MaxDeliver:    1 << 30,
		MaxAckPending: opts.MaxAckPending,
		AckWait:       opts.AckWait,
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("notifier: %w", err)
	}
	return nil
}
