package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Module signatures. The kernel verifies a signed module at every load
// (CONFIG_MODULE_SIG): under TCG that is ~10 ms of guest time a module, 126
// of the 152 ms the qemu-x86_64 board's twelve modules take (-icount), and
// 40-80 ms of time-to-armed. A kernel that does not enforce signatures
// accepts the same module without its signature (tainting itself "E",
// unsigned module), so on a command line that says so explicitly,
// module.sig_enforce=0, the agent loads each module from memory without its
// signature. A kernel that refuses it anyway (lockdown under Secure Boot:
// EPERM; enforcement: EKEYREJECTED) gets the signed file, then and for
// every later module: nothing loads that would not load otherwise.

// modSigMarker ends a signed module (the kernel's MODULE_SIG_STRING).
const modSigMarker = "~Module signature appended~\n"

// modSigInfoLen is sizeof(struct module_signature): algo, hash, id_type,
// signer_len, key_id_len, 3 pad bytes, then sig_len as a big-endian u32.
const modSigInfoLen = 12

// errNotSigned is returned by stripModuleSig for data without a signature.
var errNotSigned = errors.New("no appended module signature")

// stripModuleSig returns the module image without its appended signature
// (a prefix of data), or errNotSigned, or an error for a signature whose
// lengths do not fit the data.
func stripModuleSig(data []byte) ([]byte, error) {
	if !bytes.HasSuffix(data, []byte(modSigMarker)) {
		return nil, errNotSigned
	}
	end := len(data) - len(modSigMarker)
	if end < modSigInfoLen {
		return nil, fmt.Errorf("module signature: %d bytes before the marker, want %d", end, modSigInfoLen)
	}
	info := data[end-modSigInfoLen : end]
	n := uint64(info[3]) + uint64(info[4]) + uint64(binary.BigEndian.Uint32(info[8:12]))
	if n > uint64(end-modSigInfoLen) {
		return nil, fmt.Errorf("module signature: %d bytes of signer, key id and signature, only %d before them", n, end-modSigInfoLen)
	}
	return data[:uint64(end-modSigInfoLen)-n], nil
}

// skipModuleSig reports whether cmdline turns signature enforcement off
// explicitly (module.sig_enforce=0, n, N, or false: the kernel's bool).
func skipModuleSig(cmdline string) bool {
	v, ok := "", false
	for _, f := range strings.Fields(cmdline) {
		if k, val, has := strings.Cut(f, "="); has && k == "module.sig_enforce" {
			v, ok = val, true // the last one wins, as in the kernel
		}
	}
	if !ok {
		return false
	}
	switch v {
	case "0", "n", "N", "false":
		return true
	}
	return false
}

// unsignedLoader loads modules without their signatures while the kernel
// accepts that; off for good after its first refusal.
type unsignedLoader struct {
	refused atomic.Bool
	// stripped counts modules loaded without their signature.
	stripped atomic.Int32
	// initModule is init_module(2); finit is the signed path (tests fake
	// both: a test must never load a module into the host's kernel).
	initModule func(image []byte, params string) error
	finit      func(file, params string) error
}

func newUnsignedLoader() *unsignedLoader {
	return &unsignedLoader{initModule: unix.InitModule, finit: finitModule}
}

// load loads file with params: from memory without its signature, or the
// file as it is (compressed, unsigned, unreadable, or refused unsigned).
func (u *unsignedLoader) load(file, params string) error {
	if u.refused.Load() || strings.HasSuffix(file, ".xz") || strings.HasSuffix(file, ".zst") || strings.HasSuffix(file, ".gz") {
		return u.finit(file, params)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return u.finit(file, params)
	}
	img, err := stripModuleSig(data)
	if err != nil {
		return u.finit(file, params)
	}
	err = u.initModule(img, params)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		u.stripped.Add(1)
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EKEYREJECTED):
		u.refused.Store(true)
		return u.finit(file, params)
	}
	return fmt.Errorf("module %s: init_module (signature stripped) params %q: %w", modName(file), params, err)
}
