package server

// RemoveRecord removes the stored record whose data file is at path (under
// Root), then its metadata file, and forgets it, so that a later upload of
// the same record stores it again instead of being acknowledged as a
// duplicate (store.Records.RemoveRecord). Files already gone are not an
// error.
func (s *Server) RemoveRecord(path string) error {
	return s.recs().RemoveRecord(path)
}
