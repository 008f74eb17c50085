package pgstore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/ship"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
)

// benchUpload times one upload of a new 32 KiB record (a ramoops dmesg
// record's size) through the upload server, from the PUT to the
// acknowledgement, with up storing it.
func benchUpload(b *testing.B, up *shipserver.Server) {
	hs := httptest.NewServer(up)
	defer hs.Close()
	base := bytes.Repeat([]byte("<6>[    1.000000] a line of the kernel log before the panic\n"), 32<<10/60)
	base = append(base, panicText...)
	b.SetBytes(int64(len(base)))
	b.ResetTimer()
	for i := range b.N {
		data := append(fmt.Appendf(nil, "record %d\n", i), base...)
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		req, _ := http.NewRequest(http.MethodPut, hs.URL+ship.RecordPath(fmt.Sprintf("box-%d", i%100), digest), bytes.NewReader(data))
		req.Header.Set(ship.HeaderRecordName, "dmesg-ramoops-0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("upload: %d", resp.StatusCode)
		}
	}
}

// BenchmarkUploadPostgres: acknowledged once the row's transaction
// committed (fsync on, the cluster's defaults).
func BenchmarkUploadPostgres(b *testing.B) {
	db, _ := newDB(b)
	benchUpload(b, &shipserver.Server{Store: &pgstore.Records{DB: db, HostQuota: -1}})
}

// BenchmarkUploadFile: the local file store (fsync of the record, its
// metadata and the directory), on the same file system as the cluster.
func BenchmarkUploadFile(b *testing.B) {
	dir, err := os.MkdirTemp("", "lastgasp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	benchUpload(b, &shipserver.Server{Records: &store.Records{Root: dir, HostQuota: -1, MinFree: -1}})
}
