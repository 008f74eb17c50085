package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// TestUploadTLS: what the agent reads for an https:// upload, in a build
// with or without the lastgasp_notls tag.
func TestUploadTLS(t *testing.T) {
	dir := t.TempDir()
	a := &agent{Config: config{ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key")}}
	b := &boards.Board{Upload: "https://10.0.2.2:6667", UploadCA: filepath.Join(dir, "ca.pem")}
	_, _, err := a.uploadTLS(b)
	if !ship.TLSBuilt {
		if !errors.Is(err, ship.ErrTLSNotBuilt) {
			t.Errorf("uploadTLS() err = %v, want ErrTLSNotBuilt", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "pinned CA") {
		t.Errorf("uploadTLS() without a CA: err = %v, want a refusal", err)
	}
	// Half a credential is an error; a CA that is not PEM too.
	os.WriteFile(b.UploadCA, []byte("junk"), 0o644)
	os.WriteFile(a.Config.ClientCert, []byte("junk"), 0o644)
	if _, _, err := a.uploadTLS(b); err == nil {
		t.Error("uploadTLS() with a certificate but no key: no error")
	}
	os.Remove(a.Config.ClientCert)
	if _, _, err := a.uploadTLS(b); err == nil {
		t.Error("uploadTLS() with a CA that is not PEM: no error")
	}
}
