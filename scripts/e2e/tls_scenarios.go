package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// guestHost is the host name the agent derives from QEMU's default MAC.
const guestHost = "52-54-00-12-34-56"

// pki is a throw-away CA with the collector's and two hosts' credentials.
type pki struct {
	caPEM                 []byte
	serverCert, serverKey []byte // for 10.0.2.2 (the guest's view) and 127.0.0.1
	clientCert, clientKey []byte // for guestHost
	otherCert, otherKey   []byte // for another host: the wrong credential
	caCert                *x509.Certificate
	caKey                 *ecdsa.PrivateKey
}

func newPKI() (*pki, error) {
	p := &pki{}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lastgasp e2e CA"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	p.caKey, p.caPEM = key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if p.serverCert, p.serverKey, err = p.issue(2, "lastgaspd", nil, []net.IP{net.IPv4(10, 0, 2, 2), net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.clientCert, p.clientKey, err = p.issue(3, guestHost, []string{guestHost}, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	if p.otherCert, p.otherKey, err = p.issue(4, "52-54-00-ab-cd-ef", []string{"52-54-00-ab-cd-ef"}, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) issue(serial int64, cn string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// credsInitrd writes image followed by a second cpio archive holding
// /etc/lastgasp/{ca.pem,client.pem,client.key}: how a fleet gives one host
// its credential without putting it in the image all hosts boot (QEMU's
// -initrd takes one file; a boot loader takes several and concatenates).
func credsInitrd(image, out string, ca, cert, key []byte) error {
	img, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	// The kernel looks for the next archive at a 4-byte boundary; xz
	// streams are padded to 4 already, zeros in between are skipped.
	for len(img)%4 != 0 {
		img = append(img, 0)
	}
	creds := bytes.NewBuffer(img)
	if err := writeCPIOTo(creds, []cpioFile{
		{Path: "etc/lastgasp/ca.pem", Perm: 0o644, Data: ca},
		{Path: "etc/lastgasp/client.pem", Perm: 0o644, Data: cert},
		{Path: "etc/lastgasp/client.key", Perm: 0o600, Data: key},
	}); err != nil {
		return err
	}
	return os.WriteFile(out, creds.Bytes(), 0o644)
}

// pstoreTLS: the TLS image with a per-host credential in a second initrd
// ships its crash record to a collector that requires client certificates
// (the whole round trip over TLS); then a new VM with another host's
// credential is refused (403) and keeps its record.
func pstoreTLS(e *Env) (string, error) {
	if _, err := os.Stat(e.InitrdTLS); err != nil {
		return "", fmt.Errorf("%w (make image-tls)", err)
	}
	p, err := newPKI()
	if err != nil {
		return "", err
	}
	files := map[string][]byte{"ca.pem": p.caPEM, "collector.pem": p.serverCert, "collector.key": p.serverKey}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(e.Dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	good, wrong := filepath.Join(e.Dir, "initrd-good.cpio"), filepath.Join(e.Dir, "initrd-wrong-credential.cpio")
	if err := credsInitrd(e.InitrdTLS, good, p.caPEM, p.clientCert, p.clientKey); err != nil {
		return "", err
	}
	if err := credsInitrd(e.InitrdTLS, wrong, p.caPEM, p.otherCert, p.otherKey); err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector",
		"-tls-cert", filepath.Join(e.Dir, "collector.pem"), "-tls-key", filepath.Join(e.Dir, "collector.key"),
		"-client-ca", filepath.Join(e.Dir, "ca.pem"))
	if err != nil {
		return "", err
	}
	args := fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d lastgasp.upload=https://10.0.2.2:%d lastgasp.test_panic=1", c.UDPPort, c.HTTPPort)

	// 1. The host's own credential: shipped over TLS, stored, deleted.
	vm, r, err := tlsBoot(e, "vm-good", good, args)
	if err != nil {
		return "", fmt.Errorf("own credential: %w", err)
	}
	out := vm.Serial()
	if !strings.Contains(out, "over TLS: collector CA /etc/lastgasp/ca.pem pinned, client certificate /etc/lastgasp/client.pem") {
		return "", fmt.Errorf("own credential: the agent never said it ships over TLS with the supplied credential")
	}
	if strings.Contains(out, "INSECURE") {
		return "", fmt.Errorf("own credential: the agent fell back to plain http")
	}
	left, _, err := pstoreListing(vm, r.end)
	if err != nil {
		return "", err
	}
	stored, hasPanic, err := checkStored(c)
	if err != nil {
		return "", err
	}
	own, _ := filepath.Glob(filepath.Join(c.Store, guestHost, "crash", "dmesg-ramoops-*[0-9a-f]"))
	if r.produced != 1 || r.shipped != 1 || stored != 1 || len(own) != 1 || !hasPanic || len(left) != 0 {
		return "", fmt.Errorf("own credential: produced=%d shipped=%d stored=%d (under %s: %d) panic-line=%v left=%v", r.produced, r.shipped, stored, guestHost, len(own), hasPanic, left)
	}
	ok := counts(r.produced, stored, r.produced-len(left))
	vm.Kill()

	// 2. A new VM (fresh RAM, new record) with another host's credential,
	// claiming to be guestHost: refused, kept, nothing stored.
	vm, r, err = tlsBoot(e, "vm-wrong", wrong, args)
	if err != nil {
		return "", fmt.Errorf("wrong credential: %w", err)
	}
	if !strings.Contains(vm.Serial(), "collector answered 403") {
		return "", fmt.Errorf("wrong credential: the agent never reported the collector's 403")
	}
	left, _, err = pstoreListing(vm, r.end)
	if err != nil {
		return "", err
	}
	stored2, _, err := checkStored(c)
	if err != nil {
		return "", err
	}
	log, _ := os.ReadFile(c.logPath)
	if r.produced != 1 || r.shipped != 0 || r.kept != 1 || len(left) != 1 || stored2 != stored {
		return "", fmt.Errorf("wrong credential: produced=%d shipped=%d kept=%d left=%v stored=%d (was %d)", r.produced, r.shipped, r.kept, left, stored2, stored)
	}
	if !strings.Contains(string(log), "403 forbidden") || !strings.Contains(string(log), "may not write host "+guestHost) {
		return "", fmt.Errorf("wrong credential: the collector's log lacks the refusal")
	}
	return fmt.Sprintf("own-credential: %s; wrong-credential: %s kept=%d (403)", ok, counts(r.produced, stored2-stored, 0), len(left)), nil
}

// tlsBoot boots the TLS image with a credential archive, panics, and waits
// for the second boot's handoff.
func tlsBoot(e *Env, name, initrd, args string) (*VM, bootResult, error) {
	vm, err := e.Boot(name, BootOpts{Initrd: initrd, Append: args})
	if err != nil {
		return nil, bootResult{}, err
	}
	off, err := vm.WaitSerial(bootTimeout, 0, panicLine)
	if err != nil {
		return nil, bootResult{}, fmt.Errorf("first boot: %w", err)
	}
	if off, err = vm.WaitSerial(bootTimeout, off, "Linux version"); err != nil {
		return nil, bootResult{}, fmt.Errorf("no reset after the panic: %w", err)
	}
	r, err := waitHandoff(vm, off)
	if err != nil {
		return nil, bootResult{}, fmt.Errorf("second boot: %w", err)
	}
	return vm, r, nil
}
