package perfsink

import "time"

// Stats are the engine's counters (perfsink_stats); the README of the repository explains
// each. Every point ends in exactly one of Written, Rejected, Dropped, or is still queued.
type Stats struct {
	Accepted           uint64
	Replayed           uint64
	Written            uint64
	Retried            uint64
	Rejected           uint64
	RejectedInvalid    uint64
	RejectedServer     uint64
	Dropped            uint64
	DroppedQueueFull   uint64
	DroppedUndelivered uint64
	Spooled            uint64
	QueueDepth         uint64
	Deduplicated       uint64
	Series             uint64
	SeriesRejected     uint64
	Requests           uint64
	BytesSent          uint64
	WriteLatencyMean   time.Duration
	WriteLatencyMax    time.Duration
	// DedupUnchecked counts samples too old for the de-duplication window, written with
	// their own timestamp without a check for ties.
	DedupUnchecked uint64
	// Aggregated counts samples folded into per-interval statistics (PERFSINK_MODE=aggregate
	// or both); Accepted and Written then count the aggregated points. AggregatedLate are
	// those whose interval had been written already (counted into the next one), and
	// AggregatedNoPercentiles those whose interval had no histogram (the memory cap).
	Aggregated              uint64
	AggregatedLate          uint64
	AggregatedNoPercentiles uint64
}

// Report is the final account of a closed Sink (perfsink_close_report).
type Report struct {
	Stats
	// KeptInSpool is the number of points left in the disk spool, delivered by the next sink
	// opened on that directory.
	KeptInSpool uint64
	// Delivered is true when every accepted point reached InfluxDB (Close returned nil).
	Delivered bool
	// LastWriteError is the latest write failure ("" when there was none).
	LastWriteError string
}
