package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// BenchmarkShipAll10x64K ships ten 64 KiB records (ramoops' record size on the
// QEMU board) over loopback to a real Server that fsyncs each before it
// acknowledges, and removes each after its ack: the issue's "boot -> last
// record acknowledged" figure without the boot.
//
//	go test ./pstore/ship/server -run x -bench ShipAll10x64K
func BenchmarkShipAll10x64K(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := &Server{Root: filepath.Join(b.TempDir(), "root")}
		ts := httptest.NewServer(s)
		dir := b.TempDir()
		var recs []records.Record
		for j := 0; j < 10; j++ {
			data := make([]byte, 64<<10)
			for k := range data {
				data[k] = byte(rand.IntN(256))
			}
			recs = append(recs, mkRecord(b, dir, fmt.Sprintf("dmesg-ramoops-%d", j), data))
		}
		c := &ship.Client{BaseURL: ts.URL, Host: "box-1", BootID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", KernelRelease: "6.1.0-56-amd64"}
		b.StartTimer()
		shipped, kept, err := ship.ShipAll(context.Background(), c, recs, nil, nil)
		b.StopTimer()
		if err != nil || shipped != 10 || kept != 0 {
			b.Fatalf("ShipAll = %d shipped, %d kept, %v", shipped, kept, err)
		}
		ts.Close()
	}
}

func mkRecord(tb testing.TB, dir, name string, data []byte) records.Record {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := writeFile(p, data); err != nil {
		tb.Fatal(err)
	}
	return records.Record{Name: name, Path: p, Data: data, Size: int64(len(data))}
}

func writeFile(p string, data []byte) error { return os.WriteFile(p, data, 0o644) }
