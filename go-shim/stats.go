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
}
