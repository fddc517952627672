//! The library's diagnostics (a write failure, a relay that cannot serve, a sink that reports
//! nothing), routed to one process-wide logger the host picks. Default: the host's stderr, at
//! `Warn` and above. A JMeter or Python host installs its own logger (over the C ABI:
//! `perfsink_log_set`); `set_logger(None, None)` silences the library. Not a layer of the
//! pipeline: every layer may log. Messages never contain secrets.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

/// How serious a message is; the numbers are those of the C ABI (`PERFSINK_LOG_*`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed that the host must know about (credentials refused).
    Error = 1,
    /// Something failed and perfsink works around it (a write is retried).
    Warn = 2,
    /// Worth knowing once (a sink opened with reporting disabled).
    Info = 3,
    /// Detail for debugging perfsink itself.
    Debug = 4,
}

impl Level {
    /// The level of a C `max_level` number; 0 (and nothing else) is `None`, "off", and
    /// numbers above `Debug` mean everything.
    pub fn from_u32(n: u32) -> Option<Level> {
        match n {
            0 => None,
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            _ => Some(Level::Debug),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Where messages go. Called from whichever perfsink thread has something to say (the
/// writer's, the relay's, the caller's own in `open`), never with a lock of the sink held.
pub trait Logger: Send + Sync {
    fn log(&self, level: Level, message: &str);
}

impl<F: Fn(Level, &str) + Send + Sync> Logger for F {
    fn log(&self, level: Level, message: &str) {
        self(level, message)
    }
}

/// The default: one line on stderr per message, `perfsink: <message>`.
struct Stderr;

impl Logger for Stderr {
    fn log(&self, level: Level, message: &str) {
        match level {
            Level::Warn | Level::Info => eprintln!("perfsink: {message}"),
            Level::Error | Level::Debug => eprintln!("perfsink: {}: {message}", level.name()),
        }
    }
}

/// The most detailed level logged; 0 is off. Read on every call, so a check costs one load.
static MAX_LEVEL: AtomicU32 = AtomicU32::new(Level::Warn as u32);
/// The host's logger; `None`: [`Stderr`]. Held (read) while a message is delivered, so that
/// once `set_logger` returned the previous logger is never called again.
static LOGGER: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);

/// Installs `logger` (`None`: stderr) for the whole process, logging messages up to
/// `max_level` (`None`: nothing). Returns when no call of the previous logger is in progress
/// (so a logger must not call `set_logger` itself).
pub fn set_logger(logger: Option<Arc<dyn Logger>>, max_level: Option<Level>) {
    let mut slot = LOGGER.write().unwrap_or_else(|e| e.into_inner());
    *slot = logger;
    MAX_LEVEL.store(max_level.map_or(0, |l| l as u32), Relaxed);
}

/// Whether a message of `level` would be delivered.
pub fn enabled(level: Level) -> bool {
    level as u32 <= MAX_LEVEL.load(Relaxed)
}

/// Delivers a message (formatted only when its level is enabled).
pub fn log(level: Level, message: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let text = match message.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(message.to_string()),
    };
    let slot = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(logger) => logger.log(level, &text),
        None => Stderr.log(level, &text),
    }
}

pub fn error(message: fmt::Arguments<'_>) {
    log(Level::Error, message)
}

pub fn warn(message: fmt::Arguments<'_>) {
    log(Level::Warn, message)
}

pub fn info(message: fmt::Arguments<'_>) {
    log(Level::Info, message)
}

pub fn debug(message: fmt::Arguments<'_>) {
    log(Level::Debug, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Serializes the tests of the crate that install a logger (it is process-wide).
    pub(crate) static LOGGER_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn messages_reach_the_installed_logger_up_to_its_level_and_none_when_off() {
        let _serial = LOGGER_TESTS.lock();
        let got = Arc::new(Mutex::new(Vec::<(Level, String)>::new()));
        let keep = got.clone();
        let logger = move |level: Level, msg: &str| keep.lock().push((level, msg.to_string()));
        set_logger(Some(Arc::new(logger)), Some(Level::Info));
        warn(format_args!("w {}", 1));
        info(format_args!("i"));
        debug(format_args!("d"));
        assert_eq!(
            *got.lock(),
            [
                (Level::Warn, "w 1".to_string()),
                (Level::Info, "i".to_string())
            ]
        );
        assert!(enabled(Level::Info) && !enabled(Level::Debug));
        set_logger(None, None);
        error(format_args!("nobody hears this"));
        assert!(!enabled(Level::Error));
        assert_eq!(got.lock().len(), 2);
        set_logger(None, Some(Level::Warn));
        assert!(enabled(Level::Warn) && !enabled(Level::Info));
    }

    #[test]
    fn c_levels_map_to_levels() {
        assert_eq!(Level::from_u32(0), None);
        assert_eq!(Level::from_u32(1), Some(Level::Error));
        assert_eq!(Level::from_u32(4), Some(Level::Debug));
        assert_eq!(Level::from_u32(99), Some(Level::Debug));
    }
}
