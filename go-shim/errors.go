package perfsink

// Code is a perfsink_result: the stable number the C ABI returns. It is also an error, so
// that errors.Is(err, perfsink.CodeQueueFull) tells what went wrong.
type Code uint32

// The perfsink_result values (include/perfsink.h); the numbers never change.
const (
	CodeOK              Code = 0
	CodeNullParameter   Code = 1   // a required pointer was NULL
	CodeInvalidUTF8     Code = 2   // a string was not valid UTF-8
	CodeInvalidArgument Code = 3   // a size or enum value out of range
	CodePanic           Code = 4   // the engine panicked; the panic was caught
	CodeConfig          Code = 100 // unknown configuration key or malformed value
	CodeInvalidInput    Code = 200 // a name, tag or field cannot be written
	CodeInvalidValue    Code = 201 // NaN or ±Inf
	CodeUnknownSeries   Code = 202 // a series id that was never registered
	CodeSeriesLimit     Code = 203 // PERFSINK_MAX_SERIES reached
	CodeQueueFull       Code = 300 // points were dropped (and counted)
	CodeTimeout         Code = 301 // a flush did not settle in time
	CodeClosed          Code = 302 // the sink is closed
	CodeUndelivered     Code = 303 // close: accepted points were not delivered (or are in the spool)
	CodeAuth            Code = 400 // InfluxDB refused the credentials; writing stopped
	CodeIO              Code = 500 // spool directory, thread or runtime start
)

func (c Code) Error() string { return c.String() }

// Error is a failed call: the result code and the engine's message for it (written into a
// buffer of that call, so it is the call's own whatever thread ran it).
type Error struct {
	Code    Code
	Op      string // "open", "submit", ...
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "failed"
	}
	return "perfsink: " + e.Op + ": " + msg + " (" + e.Code.String() + ")"
}

// Is reports whether target is this error's Code: errors.Is(err, perfsink.CodeTimeout).
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

func errClosed(op string) error {
	return &Error{Code: CodeClosed, Op: op, Message: "the sink is closed"}
}
