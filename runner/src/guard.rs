//! The panic guard: a bug in runner is one line on stderr and exit 2 (could not evaluate),
//! never exit 101 with a backtrace that breaks the 0/1/2 contract CI scripts rely on.

use std::sync::Mutex;

/// The last panic's message and place, kept by the hook for whoever catches the unwind.
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the default hook (which prints a multi-line report) with one that only records
/// what happened; the code that catches the panic prints it, once, as one line.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let line = format!("{message}{place}").replace('\n', "; ");
        if let Ok(mut last) = LAST.lock() {
            *last = Some(line);
        }
    }));
}

/// `internal error: <message> at <file>:<line>, please report it`.
pub fn internal_error() -> String {
    let what = LAST
        .lock()
        .ok()
        .and_then(|mut last| last.take())
        .unwrap_or_else(|| "a panic".to_owned());
    format!("internal error: {what}, please report it")
}

/// Runs `work`, turning a panic into `Err` with the internal-error text.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|_| internal_error())
}

/// The fault-injection hook of the test suite: `RUNNER_INJECT_PANIC=<place>` panics at that
/// place (`start`, or a stage's name just before it runs), so the guard itself is tested.
///
/// # Panics
/// When asked to, which is its purpose.
pub fn injected_panic(place: &str) {
    let wanted = std::env::var("RUNNER_INJECT_PANIC").is_ok_and(|wanted| wanted == place);
    assert!(!wanted, "injected fault at {place}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error() {
        // The hook is process-wide; installing it here would hide other tests' failures, so
        // the message itself is checked end to end (tests/faults.rs).
        let error = catch(|| panic!("boom")).unwrap_err();
        assert!(error.starts_with("internal error: "), "{error}");
        assert!(error.ends_with(", please report it"), "{error}");
        assert_eq!(catch(|| 7), Ok(7));
    }
}
