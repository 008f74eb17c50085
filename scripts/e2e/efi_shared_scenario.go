package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
)

// pstoreEFISharedStore: pstore-efi-coldboot on the shared crash store. A
// panic leaves its dmesg in EFI variables (one crash, many parts); the
// cold boot ships them to two collectors on one PostgreSQL, the first
// behind a proxy that cuts every connection after its first, so the agent
// fails over to the second for the rest. The database holds each part
// once and one assembled text with every part and the panic line; the
// index holds one crash of the host, whose record copy is that text; the
// collector that received the fewest parts serves it byte for byte.
func pstoreEFISharedStore(e *Env) (string, error) {
	pg, err := pgtest.New()
	if err != nil {
		return "", err
	}
	defer pg.Close()
	ctx := context.Background()
	url, err := pg.CreateDB(ctx, "efishared")
	if err != nil {
		return "", err
	}
	c1, err := e.StartCollector("collector1", "-crash-store", url)
	if err != nil {
		return "", err
	}
	c2, err := e.StartCollector("collector2", "-crash-store", url)
	if err != nil {
		return "", err
	}
	px, err := e.StartProxy(c1.HTTPPort, func(n int) Fault {
		if n >= 2 {
			return Fault{CutAfter: 1}
		}
		return Fault{}
	})
	if err != nil {
		return "", err
	}
	x, err := newEFI(e)
	if err != nil {
		return "", err
	}
	args := fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d lastgasp.upload=http://10.0.2.2:%d,http://10.0.2.2:%d lastgasp.test_panic=1",
		c1.UDPPort, px.Port, c2.HTTPPort)
	vm, err := x.boot(e, "vm1", true, BootOpts{Append: args})
	if err != nil {
		return "", err
	}
	if _, err := vm.WaitSerial(bootTimeout, 0, panicLine); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	if err := vm.exited(60 * time.Second); err != nil {
		return "", fmt.Errorf("boot 1 after the panic (-no-reboot): %w", err)
	}
	dumps, _, err := x.liveDumps()
	if err != nil {
		return "", err
	}
	if len(dumps) < 2 {
		return "", fmt.Errorf("VARS after the panic: %d pstore variables, want a crash in several parts", len(dumps))
	}
	vm2, err := x.boot(e, "vm2", true, BootOpts{Append: args})
	if err != nil {
		return "", err
	}
	if _, err := waitHandoff(vm2, 0); err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var host, path string
	var parts int
	var text []byte
	if err := waitFor(30*time.Second, func() (bool, string) {
		err := conn.QueryRow(ctx, "SELECT host, path, parts, data FROM assembled").Scan(&host, &path, &parts, &text)
		return err == nil, fmt.Sprintf("no assembled crash in the database (%v)", err)
	}); err != nil {
		return "", err
	}
	per := map[string]int{}
	rows, err := conn.Query(ctx, "SELECT collector, count(*), count(DISTINCT digest) FROM records WHERE crash_id <> '' GROUP BY collector")
	if err != nil {
		return "", err
	}
	total := 0
	for rows.Next() {
		var col string
		var n, distinct int
		if err := rows.Scan(&col, &n, &distinct); err != nil {
			return "", err
		}
		if n != distinct {
			return "", fmt.Errorf("collector %s: %d part rows for %d digests", col, n, distinct)
		}
		per[col], total = n, total+n
	}
	rows.Close()
	if total != len(dumps) || parts != len(dumps) {
		return "", fmt.Errorf("database: %d part rows, assembled from %d parts; want %d (the EFI variables)", total, parts, len(dumps))
	}
	if !strings.Contains(string(text), panicLine) || !strings.HasPrefix(string(text), fmt.Sprintf("Panic#1 Part1..%d\n", parts)) {
		return "", fmt.Errorf("assembled %s (%d bytes) lacks its header or the panic line", path, len(text))
	}
	var crashes, recordCopies int
	var ref string
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM crashes WHERE host = $1", host).Scan(&crashes); err != nil {
		return "", err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(max(s.ref), '') FROM sightings s JOIN crashes c ON c.seq = s.crash_seq
		WHERE c.host = $1 AND s.source = 'record'`, host).Scan(&recordCopies, &ref); err != nil {
		return "", err
	}
	if crashes != 1 || recordCopies != 1 || ref != path {
		return "", fmt.Errorf("index: %d crashes of %s, %d record copies (%q); want 1 crash, its record copy %s", crashes, host, recordCopies, ref, path)
	}
	// The collector with fewer parts serves the text it did not assemble
	// alone.
	c1n, c2n := per[fmt.Sprintf("127.0.0.1:%d", c1.HTTPPort)], per[fmt.Sprintf("127.0.0.1:%d", c2.HTTPPort)]
	served := c1
	if c2n < c1n {
		served = c2
	}
	got, err := httpGet(served, "/ui/file/"+path)
	if err != nil {
		return "", err
	}
	if got != string(text) {
		return "", fmt.Errorf("download of %s: %d bytes, want the row's %d", path, len(got), len(text))
	}
	vm2.Monitor("quit")
	vm2.exited(30 * time.Second)
	return fmt.Sprintf("parts=%d collector1=%d collector2=%d assembled=%dB crashes=1 record-copy=%s proxy-conns=%d",
		len(dumps), c1n, c2n, len(text), path, px.Conns()), nil
}
