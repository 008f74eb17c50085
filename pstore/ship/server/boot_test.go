package server

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Errorf("stat: %v", err)
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Errorf("stat: %v", err)
		return false
	}
	return os.SameFile(fa, fb)
}

func TestLinkToCrashedBoot(t *testing.T) {
	digest := ship.Digest(panicData)
	base := "dmesg-ramoops-0." + digest[:16]
	client := netip.MustParseAddr("127.0.0.1") // httptest's clients
	for _, tt := range []struct {
		name      string
		prev      string     // what PrevBoot answers
		from      netip.Addr // and where that boot was announced from
		mkdir     bool       // create the boot directory first
		wantLinks bool
	}{
		{"linked", "box-1/b1", client, true, true},
		{"announced from the same address, mapped", "box-1/b1", netip.MustParseAddr("::ffff:127.0.0.1"), true, true},
		{"announced from another address", "box-1/b1", netip.MustParseAddr("127.0.0.2"), true, false},
		{"announcer unknown", "box-1/b1", netip.Addr{}, true, false},
		{"unknown boot", "", client, true, false},
		{"boot directory gone", "box-1/b1", client, false, false},
		{"outside the store", "../b1", client, true, false},
		{"too deep", "box-1/b1/crash", client, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gotHost, gotBoot string
			s, ts := newServer(t, func(s *Server) {
				s.PrevBoot = func(host, boot string) (string, netip.Addr) {
					gotHost, gotBoot = host, boot
					return tt.prev, tt.from
				}
			})
			bootDir := filepath.Join(s.Root, "box-1", "b1")
			if tt.mkdir {
				os.MkdirAll(bootDir, 0o750)
				os.MkdirAll(filepath.Join(s.Root, "box-1", "b1", "crash"), 0o750)
				os.WriteFile(filepath.Join(bootDir, "kernel.log"), []byte("x\n"), 0o640)
			}
			c := newClient(ts.URL)
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			ack, err := c.Ship(context.Background(), r)
			if err != nil {
				t.Fatalf("Ship = %v", err)
			}
			if gotHost != "box-1" || gotBoot != c.BootID {
				t.Errorf("PrevBoot(%q, %q), want PrevBoot(box-1, %q)", gotHost, gotBoot, c.BootID)
			}
			if ack.Path != "box-1/crash/"+base || ack.Duplicate {
				t.Errorf("ack = %+v, want the canonical path", ack)
			}
			canon := filepath.Join(s.Root, filepath.FromSlash(ack.Path))
			link := filepath.Join(bootDir, "crash", base)
			if want := map[bool]uint64{true: 1}[tt.wantLinks]; s.Stats().Linked != want {
				t.Errorf("Stats.Linked = %d, want %d", s.Stats().Linked, want)
			}
			if !tt.wantLinks {
				if exists(t, link) || exists(t, link+".json") {
					t.Errorf("%s linked, want not", link)
				}
				if !tt.mkdir && exists(t, bootDir) {
					t.Errorf("%s created, want not", bootDir)
				}
				if exists(t, filepath.Join(s.Root, "b1")) {
					t.Errorf("linked outside the host directory")
				}
				return
			}
			if !sameFile(t, canon, link) || !sameFile(t, canon+".json", link+".json") {
				t.Errorf("%s is not a hard link of %s", link, canon)
			}
			// A retry of the upload is a duplicate and changes nothing.
			if ack2, err := c.Ship(context.Background(), r); err != nil || !ack2.Duplicate {
				t.Errorf("second Ship = %+v, %v, want a duplicate", ack2, err)
			}
			want := []string{"box-1/b1/crash/" + base, "box-1/b1/crash/" + base + ".json", "box-1/b1/kernel.log", ack.Path, ack.Path + ".json"}
			if diff := cmp.Diff(want, files(t, s.Root)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRemoveRecord(t *testing.T) {
	s, ts := newServer(t, nil)
	c := newClient(ts.URL)
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
	ack, err := c.Ship(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Root, filepath.FromSlash(ack.Path))
	if err := s.RemoveRecord(p); err != nil {
		t.Fatalf("RemoveRecord = %v", err)
	}
	if exists(t, p) || exists(t, p+".json") {
		t.Errorf("record still stored after RemoveRecord")
	}
	if err := s.RemoveRecord(p); err != nil {
		t.Errorf("RemoveRecord of a removed record = %v, want nil", err)
	}
	// Forgotten: uploading it again stores it again.
	r = record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
	ack, err = c.Ship(context.Background(), r)
	if err != nil || ack.Duplicate || !exists(t, p) {
		t.Errorf("Ship after RemoveRecord = %+v, %v, want stored anew", ack, err)
	}
}
