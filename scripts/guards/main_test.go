package main

import (
	"strings"
	"testing"
)

func TestCheckImageSize(t *testing.T) {
	if err := CheckImageSize("img", DefaultImageLimit, DefaultImageLimit); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	err := CheckImageSize("img", 2_000_001, DefaultImageLimit)
	if err == nil {
		t.Fatal("2,000,001 bytes passed a 2,000,000 limit")
	}
	for _, want := range []string{"2000001 bytes", "limit of 2000000", "by 1 "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCheckNoDeps(t *testing.T) {
	deps := []string{"fmt", "net", "net/textproto"}
	if err := CheckNoDeps("./cmd/lastgasp", deps, []string{"net/http"}); err != nil {
		t.Fatalf("no net/http: %v", err)
	}
	err := CheckNoDeps("./cmd/lastgasp", append(deps, "net/http", "crypto/tls"), []string{"net/http", " crypto/tls"})
	if err == nil {
		t.Fatal("net/http in the dependencies passed")
	}
	for _, want := range []string{"net/http, crypto/tls", "2 of its 5 dependencies", "allowed: 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestAgentHasNoNetHTTP runs the real check on the agent as the image builds it.
func TestAgentHasNoNetHTTP(t *testing.T) {
	deps, err := listDeps("github.com/lastgasp/lastgasp/cmd/lastgasp", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages", len(deps))
	}
	if err := CheckNoDeps("cmd/lastgasp", deps, []string{"net/http"}); err != nil {
		t.Fatal(err)
	}
	// And the guard sees a package that is there.
	if err := CheckNoDeps("cmd/lastgasp", deps, []string{"net"}); err == nil {
		t.Fatal("the agent links net, and the guard did not see it")
	}
}

func TestCheckDeps(t *testing.T) {
	deps := []string{"fmt", "net", "crypto/tls"}
	if err := CheckDeps("./cmd/lastgasp", deps, []string{"crypto/tls"}); err != nil {
		t.Fatalf("crypto/tls linked: %v", err)
	}
	err := CheckDeps("./cmd/lastgasp", deps[:2], []string{"crypto/tls", " net"})
	if err == nil || !strings.Contains(err.Error(), "does not link crypto/tls ") {
		t.Fatalf("crypto/tls missing: %v, want an error naming it (and not net)", err)
	}
}

// TestAgentHasTLS: the agent as the default image builds it links
// crypto/tls (TLS uploads by default).
func TestAgentHasTLS(t *testing.T) {
	deps, err := listDeps("github.com/lastgasp/lastgasp/cmd/lastgasp", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDeps("cmd/lastgasp", deps, []string{"crypto/tls"}); err != nil {
		t.Fatal(err)
	}
}
