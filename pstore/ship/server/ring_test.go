package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

// TestRecordBootFiled: a ring record names the boot it came from
// (Lastgasp-Record-Boot-Id); it is filed beside that boot's log, not the
// boot before the uploading one, and described as the last console lines.
// Without the header (an older agent) it goes where PrevBoot says.
func TestRecordBootFiled(t *testing.T) {
	const hung, between = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		name       string
		recordBoot string
		from       netip.Addr
		wantDir    string // "" = not linked
		wantDesc   string
	}{
		{"console of the hung boot", hung, lo, hung, store.DescConsole},
		{"boot announced elsewhere", hung, netip.MustParseAddr("127.0.0.9"), "", store.DescConsole},
		{"unknown boot", "33333333-3333-3333-3333-333333333333", lo, "", store.DescConsole},
		{"older agent: no header", "", lo, between, store.DescConsole},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var st *store.Store
			s, ts := newServer(t, func(s *Server) {
				st = &store.Store{Root: s.Root}
				s.PrevBoot, s.BootFrom = st.PrevBootFrom, st.BootFrom
			})
			for _, b := range []string{hung, between} {
				if err := st.NoteBootFrom("box-1", b, tt.from); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(s.Root, "box-1", b, store.LogName), []byte("x\n"), 0o640)
			}
			c := newClient(ts.URL)
			r := record(t, t.TempDir(), "console-lastgasp-0", []byte("[    3.100000] lastgasp: handoff: rescue shell\n"))
			r.BootID = tt.recordBoot
			ack, err := c.Ship(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			var m store.RecordMeta
			b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(ack.Path)+".json"))
			if err != nil || json.Unmarshal(b, &m) != nil {
				t.Fatalf("metadata: %v", err)
			}
			if m.RecordBootID != tt.recordBoot || m.BootID != c.BootID || m.Description != tt.wantDesc {
				t.Errorf("metadata record_boot_id=%q boot_id=%q description=%q, want %q %q %q", m.RecordBootID, m.BootID, m.Description, tt.recordBoot, c.BootID, tt.wantDesc)
			}
			base := filepath.Base(ack.Path)
			for _, d := range []string{hung, between} {
				linked := exists(t, filepath.Join(s.Root, "box-1", d, "crash", base))
				if linked != (d == tt.wantDir) {
					t.Errorf("linked into %s: %v, want %v", d, linked, d == tt.wantDir)
				}
			}
		})
	}
}

func TestRecordBootRejected(t *testing.T) {
	_, ts := newServer(t, nil)
	for _, v := range []string{"crash", "boot-unknown", "a/b", strings.Repeat("a", 65)} {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+ship.RecordPath("box-1", ship.Digest([]byte("x"))), strings.NewReader("x"))
		req.Header.Set(ship.HeaderRecordName, "console-lastgasp-0")
		req.Header.Set(ship.HeaderRecordBootID, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %q: %d, want 400", ship.HeaderRecordBootID, v, resp.StatusCode)
		}
	}
}
