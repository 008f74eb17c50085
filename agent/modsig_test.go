package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// signed appends a signature block the way sign-file does: signer, key id,
// signature, struct module_signature, marker.
func signed(mod []byte, signer, keyID, sig int) []byte {
	out := append([]byte(nil), mod...)
	out = append(out, bytes.Repeat([]byte{'s'}, signer+keyID+sig)...)
	info := make([]byte, modSigInfoLen)
	info[2] = 2 // PKEY_ID_PKCS7
	info[3], info[4] = byte(signer), byte(keyID)
	binary.BigEndian.PutUint32(info[8:], uint32(sig))
	out = append(out, info...)
	return append(out, "~Module signature appended~\n"...)
}

func TestStripModuleSig(t *testing.T) {
	mod := []byte("\x7fELF module body")
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error // nil: success; errNotSigned; or any error (errAny)
	}{
		{"pkcs7", signed(mod, 0, 0, 665), mod, nil},
		{"signer and key id", signed(mod, 5, 20, 256), mod, nil},
		{"empty module", signed(nil, 0, 0, 10), []byte{}, nil},
		{"unsigned", mod, nil, errNotSigned},
		{"marker only", []byte("~Module signature appended~\n"), nil, errAny},
		{"sig_len past the start", func() []byte {
			b := signed(mod, 0, 0, 4)
			binary.BigEndian.PutUint32(b[len(b)-28-4:], 1<<31)
			return b
		}(), nil, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stripModuleSig(tc.in)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("stripModuleSig: %v", err)
			case tc.wantErr == nil && !bytes.Equal(got, tc.want):
				t.Fatalf("stripModuleSig = %q, want %q", got, tc.want)
			case tc.wantErr == errNotSigned && !errors.Is(err, errNotSigned):
				t.Fatalf("stripModuleSig error %v, want errNotSigned", err)
			case tc.wantErr == errAny && (err == nil || errors.Is(err, errNotSigned)):
				t.Fatalf("stripModuleSig = %q, %v; want a length error", got, err)
			}
		})
	}
}

var errAny = errors.New("any error")

func FuzzStripModuleSig(f *testing.F) {
	f.Add(signed([]byte("mod"), 0, 0, 32))
	f.Add(signed([]byte("mod"), 3, 4, 5))
	f.Add([]byte("~Module signature appended~\n"))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := stripModuleSig(data)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, got) || len(got) > len(data)-len(modSigMarker)-modSigInfoLen {
			t.Fatalf("stripModuleSig(%q) = %q: not a prefix before the signature block", data, got)
		}
	})
}

func TestSkipModuleSig(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"console=ttyS0 panic=1", false},
		{"console=ttyS0 module.sig_enforce=0", true},
		{"module.sig_enforce=n", true},
		{"module.sig_enforce=1", false},
		{"module.sig_enforce=0 module.sig_enforce=1", false},
		{"module.sig_enforce", false},
		{"xmodule.sig_enforce=0", false},
	} {
		if got := skipModuleSig(tc.cmdline); got != tc.want {
			t.Errorf("skipModuleSig(%q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

// TestUnsignedLoader: a signed module goes to init_module without its
// signature; a refusal (lockdown, enforcement) falls back to the signed
// file for it and every later module; what cannot be stripped is loaded
// as a file.
func TestUnsignedLoader(t *testing.T) {
	dir := t.TempDir()
	mod := []byte("\x7fELF body")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	signedKo := write("a.ko", signed(mod, 0, 0, 100))
	signedKo2 := write("b.ko", signed(mod, 0, 0, 100))
	plainKo := write("c.ko", mod)
	xzKo := write("d.ko.xz", signed(mod, 0, 0, 100))

	for _, tc := range []struct {
		name        string
		initErr     error
		files       []string
		wantInit    int // init_module calls
		wantFinit   []string
		wantRefused bool
		wantErr     bool
	}{
		{name: "stripped", files: []string{signedKo, signedKo2}, wantInit: 2},
		{name: "already loaded", initErr: unix.EEXIST, files: []string{signedKo}, wantInit: 1},
		{name: "lockdown", initErr: unix.EPERM, files: []string{signedKo, signedKo2}, wantInit: 1, wantFinit: []string{signedKo, signedKo2}, wantRefused: true},
		{name: "enforced", initErr: unix.EKEYREJECTED, files: []string{signedKo}, wantInit: 1, wantFinit: []string{signedKo}, wantRefused: true},
		{name: "unsigned and compressed files", files: []string{plainKo, xzKo}, wantFinit: []string{plainKo, xzKo}},
		{name: "other error", initErr: unix.ENOEXEC, files: []string{signedKo}, wantInit: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inits int
			var finits []string
			u := &unsignedLoader{
				initModule: func(img []byte, params string) error {
					if !bytes.Equal(img, mod) || params != "p=1" {
						t.Errorf("init_module(%q, %q), want the module without its signature and p=1", img, params)
					}
					inits++
					return tc.initErr
				},
				finit: func(file, params string) error { finits = append(finits, file); return nil },
			}
			var errs []error
			for _, f := range tc.files {
				if err := u.load(f, "p=1"); err != nil {
					errs = append(errs, err)
				}
			}
			if (len(errs) > 0) != tc.wantErr {
				t.Errorf("errors %v, want error: %v", errs, tc.wantErr)
			}
			if inits != tc.wantInit || len(finits) != len(tc.wantFinit) || u.refused.Load() != tc.wantRefused {
				t.Errorf("init_module %d times, finit %v, refused %v; want %d, %v, %v", inits, finits, u.refused.Load(), tc.wantInit, tc.wantFinit, tc.wantRefused)
			}
			for i := range finits {
				if i < len(tc.wantFinit) && finits[i] != tc.wantFinit[i] {
					t.Errorf("finit[%d] = %s, want %s", i, finits[i], tc.wantFinit[i])
				}
			}
		})
	}
}
