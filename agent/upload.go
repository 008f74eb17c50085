package agent

import (
	"errors"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// minUploadTimeout is the least time one upload to one collector gets when
// the board's upload.timeout is shared between several collectors.
const minUploadTimeout = time.Second

// uploadClient returns the client for the board's collectors, tried in
// order (failover: a record is removed only once one acknowledged it), and
// the words of the ship line saying where and how it uploads. Each
// collector gets an equal share of upload.timeout per upload, so that a
// hung first collector leaves time for the next. insecure: some collector
// is plain http.
func (a *agent) uploadClient(b *boards.Board, host, bootID, release string) (c *ship.Client, desc string, insecure bool, err error) {
	urls := b.UploadURLs()
	if len(urls) == 0 {
		return nil, "", false, errors.New("no upload URL configured")
	}
	c = &ship.Client{BaseURL: urls[0], Fallback: urls[1:], Host: host, BootID: bootID, KernelRelease: release,
		Timeout: max(b.UploadTimeout/time.Duration(len(urls)), min(b.UploadTimeout, minUploadTimeout))}
	desc = strings.Join(urls, ", then ")
	for _, u := range urls {
		if strings.HasPrefix(u, "https://") {
			if c.TLS == nil {
				tc, tdesc, err := a.uploadTLS(b)
				if err != nil {
					return nil, "", false, err
				}
				c.TLS = tc
				desc += " over TLS: " + tdesc
			}
		} else {
			insecure = true
		}
	}
	return c, desc, insecure, nil
}
