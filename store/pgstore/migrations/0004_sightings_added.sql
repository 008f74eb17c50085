-- When the index took each sighting (sigindex.Sighting.Added): retention
-- drops the sightings added before its cutoff, as it drops the records
-- received before it. Sightings indexed before the column count from
-- their crash's time.
ALTER TABLE sightings ADD COLUMN added timestamptz;
UPDATE sightings SET added = coalesce((data->>'added')::timestamptz, (data->>'time')::timestamptz);
ALTER TABLE sightings ALTER COLUMN added SET NOT NULL;
CREATE INDEX sightings_added ON sightings (added);
