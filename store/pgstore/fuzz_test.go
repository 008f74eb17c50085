package pgstore

import (
	"fmt"
	"testing"
)

// FuzzMigrationName: parseMigrationName accepts exactly NNNN_name.sql
// with NNNN >= 1, and what it accepts round-trips.
func FuzzMigrationName(f *testing.F) {
	for _, s := range []string{"0001_records.sql", "0002_signatures.sql", "0000_x.sql", "1_x.sql", "0001_.sql", "0001_x", "abcd_x.sql", "0001x.sql", "-001_x.sql", "+001_x.sql"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		m, err := parseMigrationName(name)
		if err != nil {
			return
		}
		if m.Version < 1 || m.Version > 9999 {
			t.Fatalf("%q: version %d", name, m.Version)
		}
		if got := fmt.Sprintf("%04d_%s.sql", m.Version, m.Name[5:]); got != name {
			t.Fatalf("%q parsed as %d %q, which is %q", name, m.Version, m.Name, got)
		}
	})
}

func TestMigrationsOrdered(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 || m.SQL == "" {
			t.Errorf("migration %d: %+v", i, m.Name)
		}
	}
}
