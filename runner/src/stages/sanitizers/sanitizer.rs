//! The sanitizers runner drives and the fixed facts about each: rustc flags, whether std
//! must be rebuilt with it, and the runtime's option and symbolizer variables.

use serde::Deserialize;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Sanitizer {
    /// `AddressSanitizer`, with `LeakSanitizer`'s exit-time leak check on.
    Address,
    Thread,
    Memory,
    /// `LeakSanitizer` on its own: leaks only, at a fraction of `ASan`'s cost.
    Leak,
}

impl Sanitizer {
    /// The set `runner all` runs unless config says otherwise (memory only when applicable).
    pub const DEFAULT: [Sanitizer; 3] = [Sanitizer::Address, Sanitizer::Thread, Sanitizer::Memory];

    /// The name rustc's `-Zsanitizer=` and the target spec use.
    pub fn as_str(self) -> &'static str {
        match self {
            Sanitizer::Address => "address",
            Sanitizer::Thread => "thread",
            Sanitizer::Memory => "memory",
            Sanitizer::Leak => "leak",
        }
    }

    /// The name the runtime prints in its reports.
    pub fn runtime_name(self) -> &'static str {
        match self {
            Sanitizer::Address => "AddressSanitizer",
            Sanitizer::Thread => "ThreadSanitizer",
            Sanitizer::Memory => "MemorySanitizer",
            Sanitizer::Leak => "LeakSanitizer",
        }
    }

    /// Thread and memory sanitizers are target modifiers: every crate, std included, must be
    /// built with them, or accesses inside std are invisible (`TSan` false positives, `MSan`
    /// reports on every value std initialised).
    pub fn needs_build_std(self) -> bool {
        matches!(self, Sanitizer::Thread | Sanitizer::Memory)
    }

    /// The opt-level runner builds this sanitizer's tests at unless config says otherwise;
    /// `None` keeps the profile's. Address and thread at 1, as their manuals advise (a loop
    /// of string-interner's ran 4.6 times faster under address, 3.5 under thread). Memory
    /// keeps the profile's, as memcheck does: its subject is uninitialised memory, and
    /// inlining removes the function boundaries where it checks values eagerly (crossbeam's
    /// `issue_748` passes a half-initialised `u64` out of `atomic_load`: reported
    /// unoptimised, not at opt-level 1).
    pub fn default_opt_level(self) -> Option<crate::cargo_config::OptLevel> {
        match self {
            Sanitizer::Address | Sanitizer::Thread | Sanitizer::Leak => {
                Some(crate::cargo_config::OptLevel::INSTRUMENTED)
            }
            Sanitizer::Memory => None,
        }
    }

    /// rustc flags that turn the sanitizer on.
    pub fn rustc_flags(self) -> Vec<String> {
        let mut flags = vec![format!("-Zsanitizer={}", self.as_str())];
        if self == Sanitizer::Memory {
            // Reports then say where the uninitialised value came from (which allocation).
            flags.push("-Zsanitizer-memory-track-origins".to_owned());
        }
        flags
    }

    /// The variable the runtime reads its options from.
    pub fn options_variable(self) -> &'static str {
        match self {
            Sanitizer::Address => "ASAN_OPTIONS",
            Sanitizer::Thread => "TSAN_OPTIONS",
            Sanitizer::Memory => "MSAN_OPTIONS",
            Sanitizer::Leak => "LSAN_OPTIONS",
        }
    }

    /// The variable the runtime reads the symbolizer's path from.
    pub fn symbolizer_variable(self) -> &'static str {
        match self {
            Sanitizer::Address => "ASAN_SYMBOLIZER_PATH",
            Sanitizer::Thread => "TSAN_SYMBOLIZER_PATH",
            Sanitizer::Memory => "MSAN_SYMBOLIZER_PATH",
            Sanitizer::Leak => "LSAN_SYMBOLIZER_PATH",
        }
    }

    /// runner's option defaults; the user's options come after them, so theirs win.
    /// The most this runtime slows a test down against the quickest run of it elsewhere (a
    /// native run under coverage, `AddressSanitizer`). Measured on this machine kind with
    /// string-interner's integer loops, both builds unoptimised: thread 6 to 14x
    /// `AddressSanitizer`; memory with origin tracking 45 to 85x for one process, over 150x
    /// with two at once. Address and thread now build at opt-level 1 and memory does not
    /// (`default_opt_level`): memory unoptimised took 126x address's optimised time on
    /// `encode_var_usize_3_bytes_works`. With room on top; they only stretch default limits.
    pub fn slowdown(self) -> f64 {
        match self {
            Sanitizer::Address | Sanitizer::Leak => 10.0,
            Sanitizer::Thread => 60.0,
            Sanitizer::Memory => 400.0,
        }
    }

    pub fn default_options(self) -> &'static [&'static str] {
        match self {
            // Slow unwinding on malloc puts the allocation site in user code into leak,
            // use-after-free and uninitialised-value reports: std has no frame pointers, so
            // the fast unwinder stops inside the allocator.
            Sanitizer::Address => &[
                "detect_leaks=1",
                "fast_unwind_on_malloc=0",
                "detect_stack_use_after_return=1",
                "symbolize=1",
            ],
            Sanitizer::Leak => &["fast_unwind_on_malloc=0", "symbolize=1"],
            Sanitizer::Thread => &["symbolize=1", "second_deadlock_stack=1"],
            Sanitizer::Memory => &["symbolize=1", "fast_unwind_on_malloc=0"],
        }
    }

    /// A name safe in file and directory names.
    pub fn target_dir_name(self) -> String {
        format!("sanitizers-{}", self.as_str())
    }
}

impl std::fmt::Display for Sanitizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}
