package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lastgasp/lastgasp/pstore/ship"
)

// The ramoops region of boards/qemu-x86_64.board (memmap=1M$0x5000000).
const (
	ramoopsAddr       = 0x5000000
	ramoopsSize       = 0x100000
	ramoopsRecordSize = 0x10000
	guestRAM          = 512 << 20 // Boot's -m 512
)

// corruptRamoops corrupts, in the guest RAM file, every dmesg record the
// kernel's ramoops wrote: the record is marked compressed ('C' in its
// "====<sec>.<usec>-C\n" header) and the first byte of its data becomes
// 0xff, a deflate block of the reserved type 3, so neither the kernel nor
// the agent can inflate it. It returns the corrupted data of each record
// as the next boot's kernel will present it, and what each one was.
func corruptRamoops(ramFile string) (payloads [][]byte, was []string, err error) {
	f, err := os.OpenFile(ramFile, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	region := make([]byte, ramoopsSize)
	if _, err := f.ReadAt(region, ramoopsAddr); err != nil {
		return nil, nil, fmt.Errorf("read ramoops region: %w", err)
	}
	// Each record: struct persistent_ram_buffer { u32 sig; atomic_t start;
	// atomic_t size; u8 data[]; }, sig "DBGC" (0x43474244). start is the
	// ring's write position: a dmesg record, written once from 0 after a
	// zap, has start == size and its text from data[0].
	for off := 0; off+ramoopsRecordSize <= len(region); off += ramoopsRecordSize {
		rec := region[off : off+ramoopsRecordSize]
		sig := binary.LittleEndian.Uint32(rec)
		start := int(binary.LittleEndian.Uint32(rec[4:]))
		size := int(binary.LittleEndian.Uint32(rec[8:]))
		data := rec[12:]
		if sig != 0x43474244 || size == 0 || (start != 0 && start != size) || size > len(data) || !bytes.HasPrefix(data, []byte("====")) {
			continue
		}
		nl := bytes.IndexByte(data[:size], '\n')
		if nl < 2 || nl+1 >= size || data[nl-2] != '-' {
			return nil, nil, fmt.Errorf("ramoops record at %#x: unexpected header %q", ramoopsAddr+off, data[:min(size, 40)])
		}
		switch data[nl-1] {
		case 'C':
			was = append(was, "compressed")
		case 'D':
			was = append(was, "plain")
		default:
			return nil, nil, fmt.Errorf("ramoops record at %#x: unexpected header %q", ramoopsAddr+off, data[:nl])
		}
		data[nl-1] = 'C'
		data[nl+1] = 0xff
		if _, err := f.WriteAt(rec[:12+size], int64(ramoopsAddr+off)); err != nil {
			return nil, nil, fmt.Errorf("write ramoops record: %w", err)
		}
		payloads = append(payloads, append([]byte(nil), data[nl+1:size]...))
	}
	if err := f.Sync(); err != nil {
		return nil, nil, err
	}
	if len(payloads) == 0 {
		var heads []string
		for off := 0; off+ramoopsRecordSize <= len(region); off += ramoopsRecordSize {
			heads = append(heads, fmt.Sprintf("%x", region[off:off+24]))
		}
		return nil, nil, fmt.Errorf("no ramoops dmesg record in guest RAM at %#x (record heads: %s)", ramoopsAddr, strings.Join(heads, " "))
	}
	return payloads, was, nil
}

// pstoreCorrupt: a real panic record in ramoops is corrupted in guest RAM
// between the panic and the reset; the next boot's kernel cannot decompress
// it (dmesg-ramoops-N.enc.z); the agent says so in one line, ships it raw
// flagged corrupt, and deletes it after the acknowledgement.
//
// Guest RAM is a shared file (memory-backend-file, share=on) so the harness
// writes guest physical memory directly (offset = physical address below
// 4 GiB); panic=0 keeps the guest halted after the panic until the harness
// resets it (a reset keeps RAM).
func pstoreCorrupt(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	ramFile := filepath.Join(e.Dir, "guest-ram")
	e.cleanups = append(e.cleanups, func() { os.Remove(ramFile) })
	cmdline := regexp.MustCompile(`(^|\s)panic=\S+`).ReplaceAllString(e.Cmdline, "") + " panic=0"
	vm, err := e.Boot("vm", BootOpts{
		Cmdline: &cmdline,
		Append:  agentArgs(c) + " lastgasp.test_panic=1",
		QEMU: []string{
			"-object", fmt.Sprintf("memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on", guestRAM, ramFile),
			"-machine", "memory-backend=ram0"},
	})
	if err != nil {
		return "", err
	}
	off, err := vm.WaitSerial(bootTimeout, 0, panicLine)
	if err != nil {
		return "", fmt.Errorf("first boot: %w", err)
	}
	// kmsg_dump (the ramoops write) runs before panic's final line.
	if off, err = vm.WaitSerial(bootTimeout, off, "---[ end Kernel panic"); err != nil {
		return "", fmt.Errorf("first boot: %w", err)
	}
	if err := vm.Monitor("stop"); err != nil {
		return "", err
	}
	payloads, was, err := corruptRamoops(ramFile)
	if err != nil {
		return "", err
	}
	if err := vm.Monitor("system_reset"); err != nil {
		return "", err
	}
	if err := vm.Monitor("cont"); err != nil {
		return "", err
	}
	if off, err = vm.WaitSerial(bootTimeout, off, "Linux version"); err != nil {
		return "", fmt.Errorf("no second boot: %w", err)
	}
	r, err := waitHandoff(vm, off)
	if err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}
	out := vm.Serial()[off:r.end]
	n := len(payloads)
	if strings.Contains(out, "test_panic: no crash record") {
		return "", fmt.Errorf("boot 2 found no crash record and panicked again")
	}
	// The kernel itself failed to inflate it (6.1: "crypto_comp_decompress
	// failed"; newer: "decompression failed").
	if !strings.Contains(out, "pstore: crypto_comp_decompress failed") && !strings.Contains(out, "pstore: decompression failed") {
		return "", fmt.Errorf("boot 2: the kernel never reported a failed decompression")
	}
	reCorrupt := regexp.MustCompile(`lastgasp: pstore: records: dmesg-ramoops-\d+\.enc\.z: .*\(shipping the compressed data raw, flagged corrupt\)`)
	if got := len(reCorrupt.FindAllString(out, -1)); got != n {
		return "", fmt.Errorf("boot 2: %d agent lines about a corrupt record, want %d", got, n)
	}
	if r.produced != n || r.shipped != n || r.kept != 0 {
		return "", fmt.Errorf("boot 2: produced=%d shipped=%d kept=%d, want %d/%d/0", r.produced, r.shipped, r.kept, n, n)
	}
	left, _, err := pstoreListing(vm, r.end)
	if err != nil {
		return "", err
	}
	if len(left) != 0 {
		return "", fmt.Errorf("boot 2: pstore still holds %v", left)
	}
	stored, _, err := checkStored(c)
	if err != nil {
		return "", err
	}
	if stored != n {
		return "", fmt.Errorf("collector stored %d records, want %d", stored, n)
	}
	for p, d := range c.CrashRecords() {
		if strings.HasSuffix(p, ".dmesg.txt") || isRingRecord(p) {
			continue // assembled crash, or lastgasp's own ring record
		}
		raw, err := os.ReadFile(p + ".json")
		if err != nil {
			return "", err
		}
		var m ship.Metadata
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", fmt.Errorf("%s.json: %w", shortPath(p), err)
		}
		if !m.Corrupt || !m.Compressed || m.Decompressed || !strings.HasSuffix(m.RecordName, ".enc.z") {
			return "", fmt.Errorf("%s: metadata name=%s compressed=%v corrupt=%v decompressed=%v, want a .enc.z record compressed and corrupt",
				shortPath(p), m.RecordName, m.Compressed, m.Corrupt, m.Decompressed)
		}
		match := false
		for _, want := range payloads {
			match = match || bytes.Equal(d, want)
		}
		if !match {
			return "", fmt.Errorf("%s: stored %d bytes that are not the record the harness left in guest RAM (raw data altered?)", shortPath(p), len(d))
		}
	}
	return counts(r.produced, stored, r.produced-len(left)) + fmt.Sprintf(" corrupt=%d was=%s", n, strings.Join(was, ",")), nil
}
