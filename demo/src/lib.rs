//! A tiny wire-format decoder with a few deliberate bugs, so that `runner all demo` shows a
//! full report. Each analysis stage catches at least one of them.

/// A decoded frame: a length-prefixed payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub payload: &'a [u8],
}

/// Reads the 4-byte length prefix, which is little-endian on the wire.
///
/// Bug (caught on big-endian s390x): it reads the prefix in the machine's byte order, which
/// is right on little-endian hosts only.
pub fn prefix_len(bytes: [u8; 4]) -> u32 {
    u32::from_ne_bytes(bytes)
}

/// Decodes one frame from `input`, or `None` when it is too short.
pub fn decode(input: &[u8]) -> Option<Frame<'_>> {
    let header: [u8; 4] = input.get(..4)?.try_into().ok()?;
    let len = usize::try_from(prefix_len(header)).ok()?;
    let payload = input.get(4..4usize.checked_add(len)?)?;
    Some(Frame { payload })
}

/// The checksum of a payload: the last byte.
///
/// Bug (Miri, every target): reads one byte past the end with an unchecked pointer.
pub fn checksum(payload: &[u8]) -> u8 {
    let ptr = payload.as_ptr();
    // SAFETY: none; this is the deliberate bug.
    unsafe { *ptr.add(payload.len()) }
}

/// Keeps a frame's tag for the program's lifetime.
///
/// Bug (Miri, valgrind, LeakSanitizer): leaks every tag; a cache would have interned them once.
pub fn intern_tag(tag: &str) -> &'static str {
    Box::leak(tag.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_frame() {
        let frame = decode(&[1, 0, 0, 0, 42]).unwrap();
        assert_eq!(frame.payload, &[42]);
    }

    #[test]
    fn short_input_is_none() {
        assert_eq!(decode(&[0, 0]), None);
    }

    #[test]
    fn tags_are_interned() {
        assert_eq!(intern_tag("ping"), "ping");
    }

    #[test]
    fn checksum_of_a_payload() {
        let payload = vec![1u8, 2, 3];
        let _ = checksum(&payload);
    }
}

/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Accepts a frame only within the protocol's payload limit.
///
/// Gap (caught by the coverage stage): this is a critical path (`critical-functions` in
/// Cargo.toml), and no test sends a frame here, so its lines and its `if` are uncovered.
pub fn accept(frame: Frame<'_>) -> Option<Frame<'_>> {
    if frame.payload.len() > MAX_PAYLOAD {
        return None;
    }
    Some(frame)
}

/// Packs frames back to back into `buffer`, followed by an end marker.
///
/// Bug (sanitizers and valgrind only: Miri skips the slow test that reaches it): the end
/// marker is written one byte past the allocation when the frames fill the buffer exactly.
pub fn pack(frames: &[&[u8]]) -> Vec<u8> {
    let total: usize = frames.iter().map(|frame| frame.len()).sum();
    let mut buffer = Vec::with_capacity(total);
    for frame in frames {
        buffer.extend_from_slice(frame);
    }
    let end = buffer.as_mut_ptr().wrapping_add(buffer.len());
    // SAFETY: none; this is the deliberate bug.
    unsafe { end.write(0xFF) };
    buffer
}

#[cfg(test)]
mod packing_tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "packs a megabyte of frames: too slow under Miri")]
    fn packs_a_megabyte_of_frames() {
        let frame = [7u8; 1024];
        let frames: Vec<&[u8]> = (0..1024).map(|_| &frame[..]).collect();
        assert_eq!(pack(&frames).len(), 1 << 20);
    }
}
