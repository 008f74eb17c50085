package main

import "testing"

func TestPackageOf(t *testing.T) {
	for sym, want := range map[string]string{
		"crypto/tls.(*Conn).Read": "crypto/tls",
		"runtime.mallocgc":        "runtime",
		"github.com/insomniacslk/dhcp/dhcpv6.(*Message).ToBytes":                "github.com/insomniacslk/dhcp/dhcpv6",
		"type:*crypto/x509.Certificate":                                         "crypto/x509",
		"type:[]github.com/vishvananda/netlink.Addr":                            "github.com/vishvananda/netlink",
		"go:itab.*os.File,io.Reader":                                            "os",
		"go:func.*":                                                             "go:(runtime tables)",
		"vendor/golang.org/x/crypto/chacha20poly1305.chacha20Poly1305Seal.abi0": "vendor/golang.org/x/crypto/chacha20poly1305",
		"slices.pdqsortCmpFunc[go.shape.string]":                                "slices",
		"noDotSymbol":                                                           "(other)",
	} {
		if got := PackageOf(sym); got != want {
			t.Errorf("PackageOf(%q) = %q, want %q", sym, got, want)
		}
	}
}

func FuzzPackageOf(f *testing.F) {
	f.Add("crypto/tls.(*Conn).Read")
	f.Add("type:map[string]*net/url.URL")
	f.Fuzz(func(t *testing.T, sym string) {
		if PackageOf(sym) == "" {
			t.Fatalf("PackageOf(%q) is empty", sym)
		}
	})
}
