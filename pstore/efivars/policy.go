package efivars

import "fmt"

// Policy is the NVRAM hygiene rule: pstore's records never take more than
// Share percent of the variable store, counting the next crash. So the
// records of earlier boots are trimmed to Limit() - NextCrash, newest kept.
type Policy struct {
	StoreSize int64 // bytes of variable space (kernel or board)
	Share     int   // percent of StoreSize pstore's records may take (1-100)
	NextCrash int64 // room kept within the share for the next crash (see NextCrash)
}

// Limit is the most pstore's records may ever take.
func (p Policy) Limit() int64 { return p.StoreSize * int64(p.Share) / 100 }

// Keep is what the records of earlier boots may take, so that the next
// crash still fits within the limit.
func (p Policy) Keep() int64 { return max(p.Limit()-p.NextCrash, 0) }

// Plan splits crashes (newest first, as Crashes returns them) into those
// kept and those to delete: the newest are kept while their charges fit in
// Keep(); once one does not fit, it and everything older go, so the kept
// records are always the newest ones.
func (p Policy) Plan(crashes []Crash) (keep, drop []Crash) {
	var used int64
	for i, c := range crashes {
		if used+c.Charge() > p.Keep() {
			return crashes[:i], crashes[i:]
		}
		used += c.Charge()
	}
	return crashes, nil
}

// Validate reports a policy that cannot hold even one crash.
func (p Policy) Validate() error {
	if p.StoreSize <= 0 {
		return fmt.Errorf("efivars: variable store size unknown")
	}
	if p.Share < 1 || p.Share > 100 {
		return fmt.Errorf("efivars: share %d%%: want 1-100", p.Share)
	}
	if p.Limit() < p.NextCrash {
		return fmt.Errorf("efivars: share %d%% of %d bytes (%d) is less than one crash (%d bytes)", p.Share, p.StoreSize, p.Limit(), p.NextCrash)
	}
	return nil
}

// Sum is the total charge of vars.
func Sum[T interface{ Charge() int64 }](vars []T) int64 {
	var n int64
	for _, v := range vars {
		n += v.Charge()
	}
	return n
}
