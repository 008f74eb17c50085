package ship

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// ErrAckMismatch is wrapped by the error Ship returns when the collector
// answered 200 but not with an acknowledgement of the record sent: the body
// is not an Ack, its digest differs from the SHA-256 of the data, or it does
// not say stored. The record must be kept.
var ErrAckMismatch = errors.New("collector did not acknowledge the record")

// ErrIncomplete is wrapped by the error Ship returns for a record whose Data
// does not hold the whole record (see records.Record.Complete). Such a
// record is never sent.
var ErrIncomplete = errors.New("record not read in full")

// StatusError is a non-200 answer of the collector.
type StatusError struct {
	Code int    // HTTP status code, e.g. 507 when the collector's disk is full
	Body string // start of the response body
}

// Error describes the answer.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("collector answered %d", e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// transportError marks a failure to reach the collector or to read its
// answer, which is worth retrying.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// Defaults of the Client's retry policy.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 250 * time.Millisecond
	maxBackoff      = 5 * time.Second
	maxErrorBody    = 512
)

// Client uploads records to a collector. Its zero value is not usable:
// BaseURL and Host are required.
type Client struct {
	// BaseURL is the collector's address, e.g. "http://10.0.2.2:8080".
	BaseURL string
	// Fallback are further collectors (base URLs), tried in order by
	// ShipAll when BaseURL cannot be reached or answers 5xx; the next
	// record starts with the collector that acknowledged the last one.
	Fallback []string
	// Host names this machine; it must pass the protocol's rules (see
	// SanitizeHost).
	Host string
	// BootID is the uploading boot's id (/proc/sys/kernel/random/boot_id);
	// surrounding white space is ignored.
	BootID string
	// KernelRelease is the running kernel's release (uname -r); surrounding
	// white space is ignored.
	KernelRelease string
	// Timeout bounds one upload (connect, send, acknowledgement); zero
	// means 30 s. The caller's context can shorten it.
	Timeout time.Duration
	// TLS is what an https:// BaseURL needs: the pinned collector CA and
	// this host's client certificate. It is unused for http://, which is
	// plain and unauthenticated (for labs and QEMU). A binary built with
	// the lastgasp_notls tag (lab images) cannot speak https:// (see TLSBuilt).
	TLS *TLSConfig
	// Dial opens the connection; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Attempts bounds the tries per record in ShipAll; zero means
	// DefaultAttempts.
	Attempts int
	// Backoff is the first delay between tries in ShipAll, doubling after
	// each; zero means DefaultBackoff.
	Backoff time.Duration

	preferred int // index into BaseURL+Fallback of the collector tried first
}

func (c *Client) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial
	}
	return (&net.Dialer{}).DialContext
}

// Ship uploads r once and returns the collector's acknowledgement. It returns
// an error unless the collector answered 200 with an Ack whose digest is the
// SHA-256 of r.Data; only then may the caller remove r. A non-200 answer is
// a *StatusError; an unusable 200 wraps ErrAckMismatch.
func (c *Client) Ship(ctx context.Context, r records.Record) (Ack, error) {
	return c.shipTo(ctx, c.BaseURL, r)
}

// shipTo is Ship to the collector at base.
func (c *Client) shipTo(ctx context.Context, base string, r records.Record) (Ack, error) {
	if !r.Complete() {
		return Ack{}, fmt.Errorf("ship: %s: %d of %d bytes read: %w", r.Name, len(r.Data), r.Size, ErrIncomplete)
	}
	if err := CheckHost(c.Host); err != nil {
		return Ack{}, fmt.Errorf("ship: %s: host %w", r.Name, err)
	}
	if err := CheckRecordName(r.Name); err != nil {
		return Ack{}, fmt.Errorf("ship: %w", err)
	}
	bootID, release := strings.TrimSpace(c.BootID), strings.TrimSpace(c.KernelRelease)
	if err := CheckBootID(bootID); err != nil {
		return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, err)
	}
	if err := CheckKernelRelease(release); err != nil {
		return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, err)
	}
	digest := Digest(r.Data)
	url := strings.TrimRight(base, "/") + RecordPath(c.Host, digest)
	hdr := [][2]string{{"Content-Type", "application/octet-stream"}, {HeaderRecordName, r.Name}}
	if bootID != "" {
		hdr = append(hdr, [2]string{HeaderBootID, bootID})
	}
	if release != "" {
		hdr = append(hdr, [2]string{HeaderKernelRelease, release})
	}
	if !r.ModTime.IsZero() {
		hdr = append(hdr, [2]string{HeaderRecordTime, r.ModTime.UTC().Format(time.RFC3339)})
	}
	if r.CrashID != "" {
		if _, _, _, err := CrashHeaders(r.CrashID, strconv.Itoa(r.Part), strconv.Itoa(r.Parts)); err != nil {
			return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, err)
		}
		hdr = append(hdr, [2]string{HeaderCrashID, r.CrashID}, [2]string{HeaderPart, strconv.Itoa(r.Part)}, [2]string{HeaderParts, strconv.Itoa(r.Parts)})
	}
	if r.BootID != "" {
		if err := CheckBootID(r.BootID); err != nil {
			return Ack{}, fmt.Errorf("ship: %s: record boot: %w", r.Name, err)
		}
		hdr = append(hdr, [2]string{HeaderRecordBootID, r.BootID})
	}
	if r.Decompressed {
		hdr = append(hdr, [2]string{HeaderDecompressed, "true"})
	}
	if r.Corrupt {
		hdr = append(hdr, [2]string{HeaderCorrupt, "true"})
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, body, err := put(pctx, c.dial(), c.TLS, url, hdr, r.Data, maxAck)
	if code != 0 && code != 200 {
		if len(body) > maxErrorBody {
			body = body[:maxErrorBody]
		}
		return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, &StatusError{Code: code, Body: strings.TrimSpace(string(body))})
	}
	if err != nil {
		return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, err)
	}
	ack, err := ParseAck(body, digest)
	if err != nil {
		return Ack{}, fmt.Errorf("ship: %s: %w", r.Name, err)
	}
	return ack, nil
}

// ParseAck decodes the body of a 200 answer and checks that it acknowledges
// the record with the given digest.
func ParseAck(body []byte, digest string) (Ack, error) {
	if len(body) > maxAck {
		return Ack{}, fmt.Errorf("acknowledgement longer than %d bytes: %w", maxAck, ErrAckMismatch)
	}
	ack, err := decodeAck(body)
	if err != nil {
		return Ack{}, fmt.Errorf("%w: decode acknowledgement: %w", ErrAckMismatch, err)
	}
	if ack.Digest != digest {
		return Ack{}, fmt.Errorf("acknowledgement is for %q, sent %s: %w", ack.Digest, digest, ErrAckMismatch)
	}
	if !ack.Stored {
		return Ack{}, fmt.Errorf("acknowledgement does not say stored: %w", ErrAckMismatch)
	}
	return ack, nil
}

// retryable reports whether another try of a failed Ship may succeed: the
// collector was unreachable or answered 5xx.
func retryable(err error) bool {
	var te *transportError
	var se *StatusError
	return errors.As(err, &te) || errors.As(err, &se) && se.Code >= 500
}

// ShipAll uploads each of recs with c and calls remove on a record only
// after a collector acknowledged it: c.BaseURL, or the first of c.Fallback
// in order that does when the ones before cannot be reached or answer 5xx.
// A record that fails is kept and the others are still tried. Transport errors and 5xx answers are retried with
// exponential backoff, at most c.Attempts times per record and never past
// ctx's deadline; 4xx answers are not retried.
//
// shipped counts acknowledged records and kept the others, which stay in
// place for a later boot; shipped+kept == len(recs). err joins the errors of
// the records that were kept or could not be removed. remove nil means
// records.Remove; logf nil discards the log.
func ShipAll(ctx context.Context, c *Client, recs []records.Record, remove func(records.Record) error, logf func(string, ...any)) (shipped, kept int, err error) {
	if remove == nil {
		remove = records.Remove
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var errs []error
	for i, r := range recs {
		if ctx.Err() != nil {
			n := len(recs) - i
			kept += n
			errs = append(errs, fmt.Errorf("ship: %d records not tried: %w", n, context.Cause(ctx)))
			logf("ship: %d records kept: %v", n, context.Cause(ctx))
			break
		}
		ack, err := c.shipRetry(ctx, r, logf)
		if err != nil {
			kept++
			errs = append(errs, err)
			logf("%v (kept)", err)
			continue
		}
		shipped++
		what := "stored as"
		if ack.Duplicate {
			what = "already stored as"
		}
		if err := remove(r); err != nil {
			errs = append(errs, fmt.Errorf("ship: %s acknowledged but not removed: %w", r.Name, err))
			logf("ship: %s: %s %s, not removed: %v", r.Name, what, ack.Path, err)
			continue
		}
		logf("ship: %s: %d bytes %s %s, removed", r.Name, r.Size, what, ack.Path)
	}
	return shipped, kept, errors.Join(errs...)
}

// collectors returns BaseURL and Fallback, starting with the one that
// acknowledged last.
func (c *Client) collectors() []string {
	all := append([]string{c.BaseURL}, c.Fallback...)
	p := c.preferred % len(all)
	return append(all[p:], all[:p]...)
}

// shipOnce tries each collector in turn (see collectors) until one
// acknowledges r or one refuses it for good (4xx). It returns the errors
// of the collectors tried, joined, and whether another round may succeed
// (the last collector tried could not be reached or answered 5xx).
func (c *Client) shipOnce(ctx context.Context, r records.Record, logf func(string, ...any)) (Ack, error, bool) {
	urls := c.collectors()
	var errs []error
	for i, u := range urls {
		ack, err := c.shipTo(ctx, u, r)
		if err == nil {
			if i > 0 || c.preferred != 0 {
				logf("ship: %s: acknowledged by %s", r.Name, u)
			}
			c.preferred = (c.preferred + i) % len(urls)
			return ack, nil, false
		}
		if len(urls) > 1 {
			err = fmt.Errorf("%w (collector %s)", err, u)
		}
		errs = append(errs, err)
		if !retryable(err) {
			return Ack{}, errors.Join(errs...), false
		}
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(urls) {
			logf("%v; failing over to %s", err, urls[i+1])
		}
	}
	return Ack{}, errors.Join(errs...), true
}

// shipRetry tries the collectors (shipOnce) until one acknowledges r, one
// refuses it for good, the attempts run out or the next would run past
// ctx's deadline.
func (c *Client) shipRetry(ctx context.Context, r records.Record, logf func(string, ...any)) (Ack, error) {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	for try := 1; ; try++ {
		ack, err, again := c.shipOnce(ctx, r, logf)
		if err == nil || !again || try >= attempts || ctx.Err() != nil {
			return ack, err
		}
		// Jitter keeps a fleet rebooting together from retrying in step.
		d := backoff/2 + rand.N(backoff/2+1)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return ack, err
		}
		logf("%v (try %d of %d, retrying in %v)", err, try, attempts, d.Round(time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ack, err
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
