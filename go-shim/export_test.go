package perfsink

// LeakedClosed is the number of sinks the garbage collector has closed.
func LeakedClosed() int64 { return leakedClosed.Load() }
