//! A short, stable hash of text parts, for names and digests that must be the same on every
//! machine and release (plan digests of slices, corpus file names, crash ids, chart colours).
//! Finding fingerprints are built on it in `fingerprint.rs`; nothing here is for security.

/// 64-bit FNV-1a over the parts, each ended by a zero byte so that part boundaries count
/// (`["ab", "c"]` is not `["a", "bc"]`): tiny, dependency-free and stable across platforms.
pub fn digest(parts: &[&str]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_sensitive_to_every_part() {
        let base = digest(&["out-of-bounds", "src/lib.rs", "read", "tests::a"]);
        assert_eq!(
            base,
            digest(&["out-of-bounds", "src/lib.rs", "read", "tests::a"])
        );
        assert_ne!(
            base,
            digest(&["out-of-bounds", "src/lib.rs", "read", "tests::b"])
        );
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
        assert_eq!(base.len(), 16);
    }
}
