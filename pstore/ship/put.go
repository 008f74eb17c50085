package ship

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// errProtocol marks an answer that is not well-formed HTTP/1.1.
var errProtocol = errors.New("malformed HTTP answer")

// put sends one HTTP/1.1 PUT (Connection: close) and returns the status code
// and up to limit bytes of the answer's body.
//
// The agent does not use net/http: the client side of this protocol is one
// request and one small answer, and net/http with its TLS and HTTP/2 code
// costs about 1.1 MB of the image's 2 MB budget (xz). The collector side
// uses net/http. https:// needs tc and a binary built without the
// lastgasp_notls tag (put_tls.go); crypto/tls alone is about 0.53 MB of xz.
func put(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), tc *TLSConfig, rawURL string, hdr [][2]string, body []byte, limit int) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, err
	}
	port := "80"
	switch u.Scheme {
	case "http":
	case "https":
		// TLS is left out by the lastgasp_notls build tag (lab images,
		// put_notls.go); there this fails before dialling.
		if !TLSBuilt {
			return 0, nil, ErrTLSNotBuilt
		}
		port = "443"
	default:
		return 0, nil, fmt.Errorf("scheme %q not supported by the agent's client (http or https)", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return 0, nil, &transportError{err}
	}
	defer raw.Close()
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn := raw
	if u.Scheme == "https" {
		if conn, err = startTLS(ctx, raw, tc, u.Hostname()); err != nil {
			return 0, nil, err
		}
		defer conn.Close()
	}

	var req strings.Builder
	fmt.Fprintf(&req, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", u.RequestURI(), u.Host, len(body))
	for _, kv := range hdr {
		if strings.ContainsAny(kv[0]+kv[1], "\r\n") {
			return 0, nil, fmt.Errorf("header %s: contains a line break", kv[0])
		}
		fmt.Fprintf(&req, "%s: %s\r\n", kv[0], kv[1])
	}
	req.WriteString("\r\n")
	_, werr := io.WriteString(conn, req.String())
	if werr == nil {
		_, werr = conn.Write(body)
	}
	// A server may answer early and close (e.g. 413 for a record too
	// large) while the body is still being sent: read its answer anyway.
	code, respBody, err := readResponse(bufio.NewReader(conn), limit)
	if werr != nil && code == 0 {
		return 0, nil, &transportError{werr}
	}
	if err != nil && !errors.Is(err, errProtocol) {
		err = &transportError{err}
	}
	return code, respBody, err
}

// readResponse reads an HTTP/1.x answer: status line, headers, and a body
// framed by Content-Length, chunked encoding, or the end of the connection.
// It reads at most limit+1 bytes of body so callers can tell "too long".
func readResponse(br *bufio.Reader, limit int) (int, []byte, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, fmt.Errorf("read status line: %w", err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeStr, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || code < 100 || code > 999 {
		return 0, nil, fmt.Errorf("status line %q: %w", truncate(line, 80), errProtocol)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return code, nil, fmt.Errorf("read headers: %w: %v", errProtocol, err)
	}
	var r io.Reader = br
	switch {
	case strings.EqualFold(h.Get("Transfer-Encoding"), "chunked"):
		r = &chunked{br: br}
	case h.Get("Content-Length") != "":
		n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return code, nil, fmt.Errorf("content-length %q: %w", h.Get("Content-Length"), errProtocol)
		}
		r = io.LimitReader(br, n)
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return code, body, fmt.Errorf("read body: %w", err)
	}
	return code, body, nil
}

// chunked decodes an HTTP/1.1 chunked body (RFC 9112 section 7.1).
type chunked struct {
	br   *bufio.Reader
	left int64
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		sz, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sz, 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("chunk size %q: %w", truncate(line, 20), errProtocol)
		}
		if n == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		// The CRLF after the chunk's data.
		if _, err := c.br.Discard(2); err != nil {
			return n, err
		}
	}
	return n, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
