package ship

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       string
		code     int
		body     string
		protoErr bool
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", code: 200, body: "hello"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n", code: 200, body: "hello"},
		{name: "until close", in: "HTTP/1.0 507 Insufficient Storage\r\n\r\ndisk full", code: 507, body: "disk full"},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", protoErr: true},
		{name: "bad code", in: "HTTP/1.1 abc OK\r\n\r\n", protoErr: true},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", protoErr: true},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", protoErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)), 100)
			if tt.protoErr {
				if !errors.Is(err, errProtocol) {
					t.Fatalf("readResponse() err = %v, want errProtocol", err)
				}
				return
			}
			if err != nil || code != tt.code || string(body) != tt.body {
				t.Errorf("readResponse() = %d, %q, %v; want %d, %q", code, body, err, tt.code, tt.body)
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		code, body, err := readResponse(bufio.NewReader(strings.NewReader(in)), 64)
		if len(body) > 65 {
			t.Fatalf("body of %d bytes past the limit", len(body))
		}
		if err == nil && (code < 100 || code > 999) {
			t.Fatalf("accepted status %d", code)
		}
	})
}
