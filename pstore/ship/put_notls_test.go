//go:build lastgasp_notls

package ship

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// TestHTTPSWithoutTLS: an agent built with the lastgasp_notls tag refuses
// an https:// upload with a clear error, before connecting, and the error is
// final (ShipAll does not retry it).
func TestHTTPSWithoutTLS(t *testing.T) {
	dials := 0
	c := &Client{BaseURL: "https://10.0.2.2:6667", Host: "box-1", TLS: &TLSConfig{CA: []byte("x")},
		Dial: func(context.Context, string, string) (net.Conn, error) { dials++; return nil, errors.New("dialled") }}
	data := []byte("Kernel panic - not syncing: test\n")
	r := records.Record{Name: "dmesg-ramoops-0", Data: data, Size: int64(len(data))}
	shipped, kept, err := ShipAll(context.Background(), c, []records.Record{r}, func(records.Record) error { return nil }, t.Logf)
	if shipped != 0 || kept != 1 || !errors.Is(err, ErrTLSNotBuilt) {
		t.Errorf("ShipAll = %d, %d, %v; want 0, 1, ErrTLSNotBuilt", shipped, kept, err)
	}
	if dials != 0 {
		t.Errorf("dialled %d times, want 0", dials)
	}
	if TLSBuilt || !errors.Is((&TLSConfig{}).Check(), ErrTLSNotBuilt) {
		t.Error("TLSBuilt or Check() claims TLS support")
	}
}
