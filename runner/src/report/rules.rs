//! What each kind of finding means and what to do about it: the rule text CI systems show
//! next to a finding (SARIF `rules`).

use super::model::Category;

/// A one-line description of a finding kind.
pub fn summary(category: Category, kind: &str) -> String {
    let known = match kind {
        "out-of-bounds" => "Memory access outside its allocation",
        "use-after-free" | "heap-use-after-free" => "Use of memory after it was freed",
        "dangling-pointer" => "Access through a dangling pointer",
        "invalid-value" => {
            "A value that is invalid for its type (such as a bool that is not 0 or 1)"
        }
        "misaligned" => "Misaligned memory access",
        "uninitialized-read"
        | "uninit-value"
        | "uninit-condition"
        | "use-of-uninitialized-value" => "Use of uninitialised memory",
        "uninit-syscall-param" => "Uninitialised memory passed to a system call",
        "aliasing-violation" => "Aliasing rules broken (Stacked or Tree Borrows)",
        "invalid-deallocation" | "invalid-free" | "double-free" | "mismatched-free" => {
            "Memory freed wrongly (twice, not allocated, or by the wrong allocator)"
        }
        "data-race" => "Data race between threads",
        "memory-leak" | "definite-leak" | "direct-leak" => "Memory leaked",
        "indirect-leak" => "Memory leaked through a leaked block",
        "possible-leak" => "Memory possibly leaked",
        "fd-leak" => "File descriptor left open at exit",
        "thread-leak" => "Thread never joined",
        "invalid-read" => "Read of memory the program does not own",
        "invalid-write" => "Write to memory the program does not own",
        "invalid-jump" => "Jump to an invalid address",
        "overlapping-copy" => "Copy between overlapping buffers",
        "invalid-syscall-param" => "Unaddressable memory passed to a system call",
        "heap-buffer-overflow" => "Heap buffer overflow",
        "stack-buffer-overflow" => "Stack buffer overflow",
        "stack-use-after-return" | "stack-use-after-scope" => "Use of a stack slot after its scope",
        "stack-overflow" => "Stack overflow",
        "deadlock" => "Deadlock",
        "unsupported-operation" => "An operation the tool cannot check",
        "test-failure" => "A test fails under analysis",
        "process-died" => "The test process died",
        "timeout" => "Timed out",
        "out-of-memory" => "Ran out of memory",
        _ => "",
    };
    if known.is_empty() {
        format!("{kind} ({})", category.as_str().replace('-', " "))
    } else {
        known.to_owned()
    }
}

/// What a finding of this category means and how to act on it.
pub fn help(category: Category) -> &'static str {
    match category {
        Category::UndefinedBehavior => {
            "The program did something the Rust language leaves undefined: an access through \
             an invalid pointer, a value that breaks its type's rules, or an aliasing rule \
             broken by unsafe code. The compiler may turn such code into anything, so it can \
             fail far from here or only in release builds. Fix the unsafe code at the \
             location, then run the reproduction command from the message to confirm."
        }
        Category::MemoryError => {
            "The program touched memory it does not own: outside a buffer, after a free, or \
             through a wild pointer. This corrupts data and is often exploitable. Check the \
             bounds and lifetimes in the unsafe code at the location, then run the \
             reproduction command from the message to confirm."
        }
        Category::DataRace => {
            "Two threads access the same memory without synchronisation and at least one \
             writes. Protect the data with a lock or atomics, or give each thread its own copy."
        }
        Category::Leak => {
            "Memory (or a descriptor) was allocated and never released. Look at the \
             allocation site at the location: something forgets, leaks or cycles the value."
        }
        Category::Deadlock => {
            "Threads wait on each other forever. Take locks in one global order, or do not \
             hold a lock while waiting."
        }
        Category::Unsupported => {
            "The tool cannot check this operation (for Miri: a foreign function or system call \
             it does not emulate). This is not a bug in the code: skip the test under Miri \
             with `#[cfg_attr(miri, ignore)]`, or gate the call with `cfg(miri)`."
        }
        Category::TestFailure => {
            "The test fails when run under analysis. A test that passes normally but fails \
             here, or fails on one target only (byte order, pointer width), shows a real \
             portability or memory bug."
        }
        Category::Crash => {
            "The program crashed (a panic found by fuzzing, an abort or a signal). Run the \
             reproduction command from the message to see it again."
        }
        Category::Timeout => {
            "The program took longer than its limit on one input or test: an endless loop or \
             a quadratic path."
        }
        Category::Threshold => {
            "A measured value misses its configured threshold: coverage below the minimum, or \
             a benchmark slower than its baseline beyond the noise."
        }
    }
}
